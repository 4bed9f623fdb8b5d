"""The 1-D ResNet of Ho et al. (2019).

Ho C-S, Jean N, Hogan C A, et al. (2019), *Rapid identification of pathogenic bacteria using
Raman spectroscopy and deep learning*, Nature Communications 10:4927.

A stem convolution (64 filters of 5, BatchNorm, ReLU), then 6 residual stages of 2 blocks each
with 100 hidden channels; each block has two convolutions of 5 with BatchNorm and a shortcut
that is a 1x1 convolution with BatchNorm where the shape changes (identity otherwise, as in
the published code); stride 2 from the second stage on; flatten and a linear classifier.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ramanid.models.registry import register_model


class ResidualBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int = 1, kernel: int = 5):
        super().__init__()
        pad = kernel // 2
        self.conv1 = nn.Conv1d(c_in, c_out, kernel, stride, pad, bias=False)
        self.bn1 = nn.BatchNorm1d(c_out)
        self.conv2 = nn.Conv1d(c_out, c_out, kernel, 1, pad, bias=False)
        self.bn2 = nn.BatchNorm1d(c_out)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv1d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm1d(c_out))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class Ho2019ResNet(nn.Module):
    def __init__(
        self,
        n_points: int,
        n_outputs: int,
        stem: int = 64,
        hidden: int = 100,
        stages: int = 6,
        blocks: int = 2,
        kernel: int = 5,
    ):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv1d(1, stem, kernel, 1, kernel // 2, bias=False), nn.BatchNorm1d(stem), nn.ReLU()
        )
        layers, c_in, length = [], stem, n_points
        for stage in range(stages):
            stride = 1 if stage == 0 else 2
            for b in range(blocks):
                layers.append(ResidualBlock(c_in, hidden, stride if b == 0 else 1, kernel))
                c_in = hidden
            length = length if stride == 1 else (length - 1) // 2 + 1
        self.layers = nn.Sequential(*layers)
        self.classifier = nn.Linear(hidden * length, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.layers(self.stem(x.unsqueeze(1))).flatten(1))


@register_model("stem 64@5, 6 stages x 2 residual blocks, width 100 (Ho et al. 2019)", width="hidden")
def ho2019_resnet(n_points: int = 1024, n_outputs: int = 2, **kwargs) -> Ho2019ResNet:
    """Ho et al. (2019): stem 64@5, 6 stages x 2 residual blocks of width 100."""
    return Ho2019ResNet(n_points, n_outputs, **kwargs)
