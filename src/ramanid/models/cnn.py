"""The 1-D CNN of Liu et al. (2017).

Liu J, Osadchy M, Ashton L, Foster M, Solomon C J, Gibson S J (2017), *Deep convolutional
neural networks for Raman spectrum recognition: a unified solution*, Analyst 142:4067-4074.

Three convolutions, 16 filters of 21, 32 of 11 and 64 of 5 ('valid' padding), each followed by
BatchNorm, LeakyReLU and max-pooling by 2; flatten, dropout 0.5, dense 2048 (LeakyReLU),
dropout 0.5, linear classifier.
"""

from __future__ import annotations

import torch
from torch import nn

from ramanid.errors import ModelError
from ramanid.models.registry import register_model


def _conv_block(c_in: int, c_out: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(c_in, c_out, kernel), nn.BatchNorm1d(c_out), nn.LeakyReLU(), nn.MaxPool1d(2))


class Liu2017CNN(nn.Module):
    def __init__(
        self,
        n_points: int,
        n_outputs: int,
        filters=(16, 32, 64),
        kernels=(21, 11, 5),
        dense: int = 2048,
        dropout: float = 0.5,
    ):
        super().__init__()
        channels = (1, *filters)
        self.features = nn.Sequential(*(_conv_block(channels[i], channels[i + 1], k) for i, k in enumerate(kernels)))
        length = n_points
        for k in kernels:
            length = (length - k + 1) // 2
        if length < 1:
            raise ModelError(f"liu2017_cnn: spectra of {n_points} points are too short for kernels {kernels}")
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(filters[-1] * length, dense),
            nn.LeakyReLU(),
            nn.Dropout(dropout),
            nn.Linear(dense, n_outputs),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x.unsqueeze(1)))


@register_model("convolutions 16@21, 32@11, 64@5, dense 2048 (Liu et al. 2017)", width="dense")
def liu2017_cnn(n_points: int = 1024, n_outputs: int = 2, **kwargs) -> Liu2017CNN:
    """Liu et al. (2017): convolutions 16@21, 32@11, 64@5, dense 2048."""
    return Liu2017CNN(n_points, n_outputs, **kwargs)
