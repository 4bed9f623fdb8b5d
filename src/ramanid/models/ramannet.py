"""RamanNet (Ibtehaz, Chowdhury, Khandakar, et al. 2022).

Ibtehaz N, Chowdhury M E H, Khandakar A, Kiranyaz S, Rahman M S, Zughaier S M (2022),
*RamanNet: a generalized neural network architecture for Raman spectrum analysis*,
arXiv:2201.09737 / Neural Computing and Applications 35:18719-18735.

Hyper-parameters of the paper: windows of 50 points with step 25; per window its own dense
block of 25 units, BatchNorm and LeakyReLU (Keras' default slope 0.3); concatenation, dropout
0.5; dense 512, BatchNorm, LeakyReLU, dropout 0.4; dense 256, the embedding, whose L2-normalised
output feeds a semi-hard triplet loss; BatchNorm, LeakyReLU, dropout 0.25 and a linear
classifier. Trained with Adam, batch 256, cross-entropy + triplet loss weighted 0.5/0.5 and
reduce-on-plateau (factor 0.9, patience 10).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ramanid.errors import ModelError
from ramanid.models.registry import register_model

LEAKY_SLOPE = 0.3  # Keras' LeakyReLU default, as in the published code


def n_windows(n_points: int, window: int, step: int) -> int:
    if n_points < window:
        raise ModelError(f"ramannet: spectra of {n_points} points are shorter than one window of {window}")
    return (n_points - window) // step + 1


class WindowDense(nn.Module):
    """A separate dense layer for every window, computed as one batched matrix product."""

    def __init__(self, n_points: int, window: int, step: int, units: int):
        super().__init__()
        self.window, self.step = window, step
        count = n_windows(n_points, window, step)
        self.weight = nn.Parameter(torch.empty(count, window, units))
        self.bias = nn.Parameter(torch.empty(count, units))
        bound = 1 / window**0.5  # nn.Linear's default initialisation, window by window
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor, weight: torch.Tensor | None = None, bias: torch.Tensor | None = None):
        """``(batch, points)`` -> ``(batch, windows * units)``, contiguous, window by window.

        ``weight`` and ``bias`` replace the layer's own (inference with BatchNorm folded in).
        """
        weight = self.weight if weight is None else weight
        bias = self.bias if bias is None else bias
        windows = x.unfold(1, self.window, self.step).transpose(0, 1)  # (windows, batch, window), a view
        out = torch.baddbmm(bias[:, None, :], windows, weight)  # (windows, batch, units)
        return out.transpose(0, 1).reshape(len(x), -1)  # one copy into batch-major order for BatchNorm


def _folded(norm: nn.BatchNorm1d) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scale, shift)`` such that ``norm(z) == z * scale + shift`` in eval mode."""
    scale = norm.weight * torch.rsqrt(norm.running_var + norm.eps)
    return scale, norm.bias - norm.running_mean * scale


class RamanNet(nn.Module):
    """RamanNet with batched per-window blocks. ``forward`` returns logits; ``embed`` the
    L2-normalised embedding; ``forward(x, return_embedding=True)`` both.
    """

    def __init__(
        self,
        n_points: int,
        n_outputs: int,
        window: int = 50,
        step: int = 25,
        block_units: int = 25,
        hidden: int = 512,
        embedding: int = 256,
        dropouts=(0.5, 0.4, 0.25),
    ):
        super().__init__()
        self.blocks = WindowDense(n_points, window, step, block_units)
        count = n_windows(n_points, window, step)
        self.block_norm = nn.BatchNorm1d(count * block_units)
        self.dropout_in = nn.Dropout(dropouts[0])
        self.dense = nn.Linear(count * block_units, hidden)
        self.dense_norm = nn.BatchNorm1d(hidden)
        self.dropout_hidden = nn.Dropout(dropouts[1])
        self.embedding = nn.Linear(hidden, embedding)
        self.embedding_norm = nn.BatchNorm1d(embedding)
        self.dropout_out = nn.Dropout(dropouts[2])
        self.classifier = nn.Linear(embedding, n_outputs)

    def window_features(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.block_norm(self.blocks(x)), LEAKY_SLOPE)

    def forward(self, x: torch.Tensor, return_embedding: bool = False):
        if not self.training and type(self) is RamanNet:
            return self._inference(x, return_embedding)
        h = self.dropout_in(self.window_features(x))
        h = self.dropout_hidden(F.leaky_relu(self.dense_norm(self.dense(h)), LEAKY_SLOPE))
        e = self.embedding(h)
        logits = self.classifier(self.dropout_out(F.leaky_relu(self.embedding_norm(e), LEAKY_SLOPE)))
        return (logits, F.normalize(e, dim=1)) if return_embedding else logits

    def _inference(self, x: torch.Tensor, return_embedding: bool):
        """Eval-mode forward with each BatchNorm folded into the layer before it (dropout is the
        identity): the same outputs as the layered form, with three fewer passes over the data.
        """
        blocks_weight, blocks_bias, dense_weight, dense_bias, scale, shift = self._folded_layers()
        h = F.leaky_relu(self.blocks(x, blocks_weight, blocks_bias), LEAKY_SLOPE)
        h = F.leaky_relu(F.linear(h, dense_weight, dense_bias), LEAKY_SLOPE)
        e = self.embedding(h)
        logits = self.classifier(F.leaky_relu(torch.addcmul(shift, e, scale), LEAKY_SLOPE))
        return (logits, F.normalize(e, dim=1)) if return_embedding else logits

    def _folded_layers(self) -> tuple[torch.Tensor, ...]:
        """The folded weights, kept until a parameter or statistic changes (their storage or
        version): folding cost a single spectrum's forward four times the forward itself. They
        are constants, without gradients, so attributions to the input still flow through them.
        """
        tensors = [*self.parameters(), *self.buffers()]
        try:
            key = tuple((t.data_ptr(), t._version, t.dtype, t.device) for t in tensors)
        except RuntimeError:  # inference tensors have no version: fold every time
            key = None
        cached = self.__dict__.get("_folded_cache")
        if key is not None and cached is not None and cached[0] == key:
            return cached[1]
        with torch.inference_mode(False), torch.no_grad():
            scale, shift = _folded(self.block_norm)
            units = self.blocks.weight.shape[2]
            scale, shift = scale.view(-1, units), shift.view(-1, units)
            blocks = (self.blocks.weight * scale[:, None, :], self.blocks.bias * scale + shift)
            scale, shift = _folded(self.dense_norm)
            dense = (self.dense.weight * scale[:, None], self.dense.bias * scale + shift)
            folded = (*blocks, *dense, *_folded(self.embedding_norm))
        if key is not None:
            self.__dict__["_folded_cache"] = (key, folded)
        return folded

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x, return_embedding=True)[1]


class RamanNetLoop(RamanNet):
    """The same network with one ``nn.Sequential`` per window, run in a Python loop.

    Kept as the reference that the batched blocks are tested and benchmarked against.
    """

    def __init__(
        self, n_points: int, n_outputs: int, window: int = 50, step: int = 25, block_units: int = 25, **kwargs
    ):
        super().__init__(n_points, n_outputs, window, step, block_units, **kwargs)
        count = n_windows(n_points, window, step)
        self.window, self.step = window, step
        del self.blocks, self.block_norm
        self.loop_blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(window, block_units), nn.BatchNorm1d(block_units), nn.LeakyReLU(LEAKY_SLOPE))
            for _ in range(count)
        )

    def window_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [block(x[:, i * self.step : i * self.step + self.window]) for i, block in enumerate(self.loop_blocks)],
            dim=1,
        )

    def load_batched(self, batched: RamanNet) -> "RamanNetLoop":
        """Copy the weights of a batched :class:`RamanNet` into this loop version."""
        shared = {k: v for k, v in batched.state_dict().items() if not k.startswith(("blocks.", "block_norm."))}
        self.load_state_dict(shared, strict=False)
        units = batched.blocks.weight.shape[2]
        with torch.no_grad():
            for i, (linear, norm, _) in enumerate(self.loop_blocks):
                linear.weight.copy_(batched.blocks.weight[i].T)
                linear.bias.copy_(batched.blocks.bias[i])
                part = slice(i * units, (i + 1) * units)
                for name in ("weight", "bias", "running_mean", "running_var"):
                    getattr(norm, name).copy_(getattr(batched.block_norm, name)[part])
        return self


@register_model(
    "windows 50/25, per-window dense blocks, dense 512, embedding 256 + semi-hard triplet loss (Ibtehaz et al. 2022)",
    defaults={"lr": 1e-3, "batch_size": 256, "triplet_weight": 0.5},
    width="hidden",
)
def ramannet(n_points: int = 1024, n_outputs: int = 2, **kwargs) -> RamanNet:
    """RamanNet as published: windows 50/25, blocks of 25, dense 512, embedding 256."""
    return RamanNet(n_points, n_outputs, **kwargs)


@register_model(
    "RamanNet with one layer per window in a Python loop (tests and benchmarks)",
    defaults={"lr": 1e-3, "batch_size": 256, "triplet_weight": 0.5},
    width="hidden",
    benchmark_only=True,
)
def ramannet_loop(n_points: int = 1024, n_outputs: int = 2, **kwargs) -> RamanNetLoop:
    """The loop-of-layers RamanNet, for tests and benchmarks."""
    return RamanNetLoop(n_points, n_outputs, **kwargs)
