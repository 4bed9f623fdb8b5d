"""ReZeroNet: a 1-D residual CNN whose blocks start as the identity, as RamanBench trains it.

ReZero (Bachlechner, Majumder, Mao, Cottrell & McAuley 2021, *ReZero is all you need: fast
convergence at large depth*, UAI) scales each residual branch by a learnable gate that starts at
zero, so every block is the identity at initialisation and a deep stack trains without
warm-up troubles. ReZeroNet, the Raman network of the RamanBench comparison (Lange et al.,
``raman-bench`` 1.4, MIT), builds on it:

- a stem convolution of 64 filters of 7 points with stride 2, BatchNorm and ELU;
- six ReZero blocks, each two depthwise-separable convolutions of 3 points (depthwise, then a
  1 x 1 pointwise mixing; Chollet 2017) with BatchNorm, ELU between them, the branch scaled by
  its zero-initialised gate and added to the block's input (a strided 1 x 1 projection where the
  block halves the length), then ELU; the third and fifth blocks have stride 2;
- the feature map flattened, dropout 0.2, a dense layer of half the channels with ELU, dropout
  0.2, and the classifier.

Its training recipe (:func:`rezero_cnn`'s registry defaults): Adam at 1e-3 with weight decay
1e-4, batches of 128, a linear warm-up over 10 epochs then cosine annealing, gradients clipped at
norm 1, early stopping after 15 epochs without a better validation loss, Gaussian noise of 0.01
(of each spectrum's range) on the training spectra.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ramanid.errors import ModelError
from ramanid.models.registry import register_model


def separable(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """A depthwise convolution of ``kernel`` points (one filter per channel), then a 1 x 1 one."""
    return nn.Sequential(
        nn.Conv1d(c_in, c_in, kernel, stride=stride, padding=kernel // 2, groups=c_in),
        nn.Conv1d(c_in, c_out, 1),
    )


class ReZeroBlock(nn.Module):
    """``ELU(shortcut(x) + gate * branch(x))`` with ``gate`` starting at 0."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, stride: int = 1):
        super().__init__()
        self.branch = nn.Sequential(
            separable(c_in, c_out, kernel, stride),
            nn.BatchNorm1d(c_out),
            nn.ELU(),
            separable(c_out, c_out, kernel),
            nn.BatchNorm1d(c_out),
        )
        reshaped = c_in != c_out or stride != 1
        self.shortcut = nn.Conv1d(c_in, c_out, 1, stride=stride) if reshaped else nn.Identity()
        self.gate = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.elu(self.shortcut(x) + self.gate * self.branch(x))


class ReZeroNet(nn.Module):
    def __init__(
        self,
        n_points: int,
        n_outputs: int,
        channels: int = 64,
        blocks: int = 6,
        kernel: int = 3,
        channel_factor: float = 1.0,
        dropout: float = 0.2,
    ):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv1d(1, channels, 7, stride=2), nn.BatchNorm1d(channels), nn.ELU())
        length = (n_points - 7) // 2 + 1
        if length < 1:
            raise ModelError(f"rezero_cnn: spectra of {n_points} points are shorter than its stem (7 points)")
        layers, width = [], channels
        for i in range(blocks):
            stride = 2 if i > 0 and i % 2 == 0 else 1
            wider = int(width * channel_factor)
            layers.append(ReZeroBlock(width, wider, kernel, stride))
            length = (length + 2 * (kernel // 2) - kernel) // stride + 1
            width = wider
        self.blocks = nn.Sequential(*layers)
        self.hidden = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(width * length, width // 2), nn.ELU(), nn.Dropout(dropout)
        )
        self.classifier = nn.Linear(width // 2, n_outputs)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The dense layer's output, before the classifier."""
        return self.hidden(self.blocks(self.stem(x.unsqueeze(1))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


@register_model(
    "ReZeroNet: residual 1-D CNN with zero-initialised gates (Bachlechner et al. 2021; RamanBench's ReZeroNet)",
    defaults={
        "lr": 1e-3,
        "weight_decay": 1e-4,
        "batch_size": 128,
        "patience": 15,
        "scheduler": "warmup_cosine",
        "clip_grad": 1.0,
        "augment": {"noise": 0.01},
    },
    width="channels",
)
def rezero_cnn(n_points: int = 1024, n_outputs: int = 2, **kwargs) -> ReZeroNet:
    """ReZeroNet: stem 64@7/2, six ReZero blocks of separable 64@3 (stride 2 at the 3rd and
    5th), flatten, dense 32, classifier.
    """
    return ReZeroNet(n_points, n_outputs, **kwargs)
