"""A modern 1-D residual CNN for biological spectra, of the DeepCNN / ReZeroNet family.

Residual blocks whose branch is scaled by a learnable gate that starts at zero, so every block is
the identity at initialisation and a deep stack trains stably without warm-up (ReZero:
Bachlechner, Majumder, Mao, Cottrell & McAuley 2021, *ReZero is all you need*, UAI); each block is
two convolutions of width 5 with GroupNorm (Wu & He 2018) and GELU; stride-2 stages halve the
length and double the channels; global average and max pooling, dropout, a linear classifier.
Each spectrum is standardised on its own first (SNV), so unscaled intensities do not matter.
Trained with the spectral augmentation of :class:`~ramanid.training.augment.Augment` (shifts,
scaling, noise, baseline drift), as such networks are in the RamanBench comparisons.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ramanid.models.registry import register_model


class ReZeroBlock(nn.Module):
    def __init__(self, channels: int, kernel: int = 5, dropout: float = 0.1):
        super().__init__()
        self.branch = nn.Sequential(
            nn.Conv1d(channels, channels, kernel, padding=kernel // 2),
            nn.GroupNorm(8, channels),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Conv1d(channels, channels, kernel, padding=kernel // 2),
            nn.GroupNorm(8, channels),
        )
        self.gate = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x + self.gate * self.branch(x))


class ReZeroCNN(nn.Module):
    def __init__(
        self, n_points: int, n_outputs: int, hidden: int = 32, stages: int = 4, blocks: int = 2, dropout: float = 0.2
    ):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv1d(1, hidden, 7, stride=2, padding=3), nn.GroupNorm(8, hidden), nn.GELU())
        layers, channels = [], hidden
        for stage in range(stages):
            if stage:
                layers += [nn.Conv1d(channels, 2 * channels, 3, stride=2, padding=1), nn.GroupNorm(8, 2 * channels)]
                channels *= 2
            layers += [ReZeroBlock(channels) for _ in range(blocks)]
        self.layers = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * channels, n_outputs))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - x.mean(dim=1, keepdim=True)) / x.std(dim=1, keepdim=True).clamp_min(1e-6)
        h = self.layers(self.stem(x.unsqueeze(1)))
        return torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


@register_model(
    "residual CNN with ReZero gates, GroupNorm and spectral augmentation, for biological spectra "
    "(DeepCNN/ReZeroNet family; Bachlechner et al. 2021)",
    defaults={
        "lr": 1e-3,
        "batch_size": 32,
        "patience": 30,
        "weight_decay": 1e-4,
        "augment": {"shift": 3, "scale": 0.1, "noise": 0.01, "baseline": 0.05},
    },
    width="hidden",
)
def rezero_cnn(n_points: int = 1024, n_outputs: int = 2, **kwargs) -> ReZeroCNN:
    """Stem 16@7/2, 4 stages of 2 ReZero blocks (16, 32, 64, 128 channels), avg+max pooling."""
    return ReZeroCNN(n_points, n_outputs, **kwargs)
