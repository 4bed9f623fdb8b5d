"""The training loop: mini-batches, validation, early stopping, schedules, seeds, devices.

``fit`` means: initialise (seed, device), then train. It follows skorch's habits in spirit.
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ramanid.errors import ModelError
from ramanid.training.augment import Augment

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class TrainConfig:
    """How to train.

    ``batch_size=None`` trains full-batch. ``patience=None`` turns early stopping off (the
    final weights are kept); otherwise training stops after ``patience`` epochs without a
    better validation loss, but not before ``min_steps`` optimizer steps (on a small set one
    epoch is one step, and BatchNorm's running statistics need many steps before the validation
    loss means anything), and the best weights are restored. ``scheduler`` is ``"plateau"``
    (reduce-on-plateau on the validation loss), ``"cosine"``, ``"warmup_cosine"`` (the rate
    rising linearly over ``warmup`` epochs, then cosine annealing, as RamanBench trains) or
    ``None``. ``precision="auto"`` trains with float16 mixed precision on CUDA and float32
    elsewhere; ``"bfloat16"`` autocasts to bfloat16 where the device has it natively (about 2.4x
    faster for the convolutional models on CPUs with AVX-512 BF16) and warns and trains in
    float32 elsewhere; ``"float32"`` never autocasts.
    """

    epochs: int = 100
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int | None = 256
    patience: int | None = 20
    scheduler: str | None = "plateau"
    plateau_factor: float = 0.9
    plateau_patience: int = 10
    clip_grad: float | None = None
    warmup: int = 10
    min_steps: int = 150
    device: str | None = None
    precision: str = "auto"
    seed: int | None = 0
    progress: bool = False
    augment: Augment = field(default_factory=Augment)


def resolve_device(device: str | None = None) -> torch.device:
    """``None`` or ``"auto"``: CUDA, then Apple MPS, then CPU; otherwise ``device``, which must
    be one this machine has (a :class:`~ramanid.errors.ModelError` says which it has).
    """
    if device not in (None, "auto"):
        return check_device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def check_device(device: str) -> torch.device:
    """``device`` (``cpu``, ``cuda``, ``cuda:N`` or ``mps``) as a torch device, if this machine has it."""
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    have = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())] + (["mps"] if mps else [])
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        chosen = None
    name = chosen and (f"cuda:{chosen.index or 0}" if chosen.type == "cuda" else chosen.type)
    if name not in have:
        raise ModelError(f"device {device!r}: this machine has {', '.join(have)}")
    return chosen


PRECISIONS = ("auto", "float32", "bfloat16")
SCHEDULERS = ("plateau", "cosine", "warmup_cosine", None)


def check_precision(precision: str) -> None:
    """A :class:`ModelError` unless ``precision`` is one of :data:`PRECISIONS`."""
    if precision not in PRECISIONS:
        raise ModelError(f"unknown precision {precision!r}: expected one of {PRECISIONS}")


def native_bfloat16(device: torch.device) -> bool:
    """True where bfloat16 arithmetic runs natively: CPUs with AVX-512 BF16 or AMX whose AVX-512
    kernels torch uses, CUDA GPUs that support it. Elsewhere it is emulated and several times
    slower than float32 (measured: 9x for RamanNet inference with torch's AVX2 kernels).
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        has_units = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
        return has_units and torch.backends.cpu.get_cpu_capability().startswith("AVX512")
    return False


def use_bfloat16(precision: str, device: torch.device) -> bool:
    """Whether to run in bfloat16: asked for, and native on ``device``; asked for on a device
    without it, a warning and float32.
    """
    check_precision(precision)
    if precision != "bfloat16":
        return False
    if not native_bfloat16(device):
        warnings.warn(
            f"bfloat16 is not native on this {device.type} (no AVX-512 BF16 or AMX): using float32, "
            "which is several times faster here",
            RuntimeWarning,
            stacklevel=3,
        )
        return False
    return True


def _autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The dtype to autocast to while training, or None for plain float32."""
    if use_bfloat16(precision, device):
        return torch.bfloat16
    return torch.float16 if precision == "auto" and device.type == "cuda" else None


def seed_everything(seed: int | None) -> None:
    if seed is not None:
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)  # noqa: NPY002 - seeds the legacy generator that other code may use


def train(
    model: nn.Module,
    loss_fn: LossFn,
    X: np.ndarray,
    y: np.ndarray,
    config: TrainConfig,
    X_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    metric_fn: Callable[[torch.Tensor, torch.Tensor], float] | None = None,
) -> list[dict]:
    """Train ``model`` in place and return the history, one dict per epoch.

    ``loss_fn(model, x, y)`` returns the batch loss; validation uses the same function in eval
    mode. ``metric_fn(outputs, y)``, if given, is recorded on the validation data each epoch.
    """
    device = resolve_device(config.device)
    model.to(device)
    generator = torch.Generator().manual_seed(config.seed if config.seed is not None else 0)
    X_t, y_t = _tensor(X, device), _tensor(y, device)
    has_val = X_val is not None and len(X_val) > 0
    if has_val:
        Xv_t, yv_t = _tensor(X_val, device), _tensor(y_val, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = _scheduler(optimizer, config)
    autocast = _autocast_dtype(config.precision, device)
    scaler = torch.amp.GradScaler("cuda", enabled=autocast == torch.float16)
    batch = len(X_t) if config.batch_size is None else min(config.batch_size, len(X_t))
    best, best_loss, waited, steps, history = None, math.inf, 0, 0, []
    bar = tqdm(range(config.epochs), disable=not config.progress, unit="epoch", leave=False)
    for epoch in bar:
        model.train()
        order = torch.randperm(len(X_t), generator=generator).to(device)
        total, seen = 0.0, 0
        for start in range(0, len(X_t), batch):
            index = order[start : start + batch]
            if len(index) < 2 and len(X_t) > 1:  # BatchNorm cannot train on one sample
                continue
            xb, yb = X_t[index], y_t[index]
            if config.augment.active:
                xb = config.augment(xb, generator if device.type == "cpu" else None)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
                loss = loss_fn(model, xb, yb)
            scaler.scale(loss).backward()
            if config.clip_grad:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad)
            scaler.step(optimizer)
            scaler.update()
            steps += 1
            total += loss.item() * len(index)
            seen += len(index)
        record = {"epoch": epoch + 1, "loss": total / max(seen, 1), "lr": optimizer.param_groups[0]["lr"]}
        if has_val:
            record["val_loss"] = evaluate_loss(model, loss_fn, Xv_t, yv_t)
            if metric_fn is not None:
                with torch.no_grad():
                    record["val_metric"] = float(metric_fn(model(Xv_t), yv_t))
        monitored = record.get("val_loss", record["loss"])
        history.append(record)
        bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k != "epoch"})
        if scheduler is not None:
            scheduler.step(monitored) if config.scheduler == "plateau" else scheduler.step()
        if monitored < best_loss - 1e-7:
            best_loss, waited = monitored, 0
            if config.patience is not None:
                best = copy.deepcopy(model.state_dict())
        else:
            waited += 1
            if config.patience is not None and waited >= config.patience and steps >= config.min_steps:
                break
    if best is not None:
        model.load_state_dict(best)
    model.eval()
    return history


@torch.no_grad()
def evaluate_loss(model: nn.Module, loss_fn: LossFn, X: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    return float(loss_fn(model, X, y))


@torch.inference_mode()
def predict_logits(
    model: nn.Module, X: np.ndarray, batch_size: int | None = 1024, device=None, precision: str = "float32"
) -> np.ndarray:
    """Model outputs for ``X`` in eval mode; ``batch_size=None`` scores all rows in one batch.

    ``precision="bfloat16"`` runs a bfloat16 copy of the model: about 1.5x faster on CPUs with
    AVX-512 BF16, at the cost of about 3 significant digits in the outputs; on a device without
    native bfloat16 it warns and runs float32.
    """
    device = next(model.parameters()).device if device is None else resolve_device(device)
    model.eval()
    dtype = torch.bfloat16 if use_bfloat16(precision, device) else torch.float32
    if dtype != torch.float32:
        model = copy.deepcopy(model).to(dtype)
    X_t = _tensor(X, device).to(dtype)
    step = len(X_t) if batch_size is None else batch_size
    outputs = [model(X_t[i : i + step]).float().cpu() for i in range(0, len(X_t), max(step, 1))]
    return torch.cat(outputs).numpy()


def _tensor(a: np.ndarray, device) -> torch.Tensor:
    a = np.asarray(a)
    dtype = torch.long if a.dtype.kind in "iu" else torch.float32
    return torch.as_tensor(a, dtype=dtype, device=device)


def _scheduler(optimizer, config: TrainConfig):
    if config.scheduler is None:
        return None
    if config.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=config.plateau_factor, patience=config.plateau_patience
        )
    if config.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(config.epochs, 1))
    if config.scheduler == "warmup_cosine":
        warmup, rest = max(config.warmup, 1), max(config.epochs - config.warmup, 1)

        def factor(epoch: int) -> float:
            if epoch < warmup:
                return (epoch + 1) / warmup
            return 0.5 * (1 + math.cos(math.pi * min(epoch - warmup, rest) / rest))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    raise ModelError(f"unknown scheduler {config.scheduler!r}: expected one of {SCHEDULERS}")
