"""Training and inference throughput of the networks, on CPU with 2 threads.

    python benchmarks/bench_models.py

Training: RamanNet with batched window blocks against the loop-of-layers version, same loss
(cross-entropy + semi-hard triplet, 0.5/0.5), batch 256, on the RamanNet protocol's real set
(1,061 raw RRUFF spectra on 1024 points), in the same run. Inference: every model, batch 1024,
float32 and bfloat16 weights.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from _common import RRUFF_ZIP, cpu_flags, machine  # noqa: E402

from ramanid.datasets.rruff import build_rruff  # noqa: E402
from ramanid.models import MODELS, build_model, count_parameters  # noqa: E402
from ramanid.training.losses import semi_hard_triplet_loss
from ramanid.training.trainer import native_bfloat16  # noqa: E402

THREADS = 2


def train_rate(name: str, X: torch.Tensor, y: torch.Tensor, epochs: int = 3, bf16: bool = False) -> float:
    torch.manual_seed(0)
    model = build_model(name, X.shape[1], int(y.max()) + 1).train()
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    seen, start = 0, None
    for epoch in range(epochs + 1):  # the first epoch warms up and is not timed
        if epoch == 1:
            start, seen = time.perf_counter(), 0
        order = torch.randperm(len(X))
        for i in range(0, len(X) - 1, 256):
            idx = order[i : i + 256]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits, emb = model(X[idx], return_embedding=True)
                loss = 0.5 * F.cross_entropy(logits, y[idx]) + 0.5 * semi_hard_triplet_loss(emb, y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            seen += len(idx)
    return seen / (time.perf_counter() - start)


@torch.inference_mode()
def inference_rate(model, x: torch.Tensor, seconds: float = 2.0) -> float:
    model(x)
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or reps < 2:
        model(x)
        reps += 1
    return reps * len(x) / (time.perf_counter() - start)


def main():
    torch.set_num_threads(THREADS)
    spectra = build_rruff(RRUFF_ZIP, wavelengths=None, kind="raw", min_per_mineral=10).spectra
    X = torch.as_tensor(spectra.intensities)
    y = torch.as_tensor(np.unique(spectra.meta["mineral"], return_inverse=True)[1])
    print(f"machine: {machine()}, torch {torch.__version__}, {THREADS} threads")
    print(f"cpu: {cpu_flags()}")
    bf16_native = native_bfloat16(torch.device("cpu"))
    print(f"native bfloat16: {bf16_native} (bfloat16 rows are measured only where it is native)")
    print(f"data: {len(X)} spectra x {X.shape[1]} points, {int(y.max()) + 1} minerals")
    loop = train_rate("ramannet_loop", X, y)
    batched = train_rate("ramannet", X, y)
    print(f"training, loop of layers:  {loop:8.0f} spectra/s")
    print(f"training, batched blocks:  {batched:8.0f} spectra/s  ({batched / loop:.2f}x the loop)")
    if bf16_native:
        loop_bf16 = train_rate("ramannet_loop", X, y, bf16=True)
        batched_bf16 = train_rate("ramannet", X, y, bf16=True)
        print(
            f"training, bfloat16 autocast (precision='bfloat16'): loop {loop_bf16:8.0f}, batched {batched_bf16:8.0f} "
            f"spectra/s ({batched_bf16 / loop_bf16:.2f}x the bf16 loop, {batched_bf16 / loop:.2f}x the float32 loop)"
        )
    batch = X[:1024].contiguous()
    print("inference, batch 1024 (spectra/s):   float32    bfloat16  parameters")
    rates = {}
    for name in MODELS:
        model = build_model(name, X.shape[1], int(y.max()) + 1).eval()
        rates[name] = fp32 = inference_rate(model, batch)
        bf16_text = "         -"
        if bf16_native:
            with torch.inference_mode():
                reference = model(batch).argmax(1)
            model = model.to(torch.bfloat16)
            bf16 = inference_rate(model, batch.to(torch.bfloat16))
            with torch.inference_mode():
                agree = (model(batch.to(torch.bfloat16)).argmax(1) == reference).float().mean().item()
            bf16_text = f"{bf16:10.0f}   (bf16 top-1 agrees with fp32 on {agree:.1%})"
        print(f"  {name:18s} {fp32:10.0f} {bf16_text}   {count_parameters(model):>10,} parameters")
    print(
        f"RamanNet float32 inference: {rates['ramannet']:.0f} spectra/s = "
        f"{rates['ramannet'] / rates['ramannet_loop']:.2f}x the loop of layers in the same run"
    )


if __name__ == "__main__":
    main()
