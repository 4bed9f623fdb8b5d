"""Attention models for element identification.

``attention_resnet``: ramanid's element network. The spectrum is cut into overlapping windows
that are embedded by one strided convolution; a learned position embedding is added (the same
band at another Raman shift means another bond); residual pre-norm self-attention blocks
(Vaswani et al. 2017; pre-norm as in Xiong et al. 2020) mix the windows of ONE spectrum; mean
and max pooling, beside a dense path over the whole spectrum; one logit per element, trained
jointly with binary cross-entropy.

``seed_attention``: the element-identification reference's model, reproduced for comparison:
Linear(1024 -> 64), self-attention computed ACROSS THE SAMPLES OF THE BATCH with a residual,
Linear(64 -> 1), MSE on 0/1 labels, full-batch Adam (lr 0.01, weight decay 1e-5, 100 epochs).
It is transductive: a test spectrum's score depends on the other spectra scored with it.
"""

from __future__ import annotations

import torch
from torch import nn

from ramanid.models.ramannet import n_windows
from ramanid.models.registry import register_model


class AttentionResNet(nn.Module):
    def __init__(
        self,
        n_points: int,
        n_outputs: int,
        window: int = 32,
        step: int = 16,
        hidden: int = 64,
        heads: int = 4,
        blocks: int = 3,
        dropout: float = 0.1,
        whole: bool = True,
    ):
        super().__init__()
        count = n_windows(n_points, window, step)
        self.embed_windows = nn.Conv1d(1, hidden, window, step)
        self.position = nn.Parameter(torch.zeros(1, count, hidden))
        nn.init.trunc_normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(
            hidden, heads, 2 * hidden, dropout, batch_first=True, norm_first=True, activation="gelu"
        )
        self.blocks = nn.TransformerEncoder(layer, blocks, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden)
        # a residual path that sees the whole spectrum at once, beside the windows' attention
        self.whole = nn.Sequential(nn.Linear(n_points, hidden), nn.GELU(), nn.Dropout(dropout)) if whole else None
        self.head = nn.Linear((3 if whole else 2) * hidden, n_outputs)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed_windows(x.unsqueeze(1)).transpose(1, 2) + self.position
        tokens = self.norm(self.blocks(tokens))
        pooled = [tokens.mean(dim=1), tokens.amax(dim=1)]
        return torch.cat(pooled + ([self.whole(x)] if self.whole is not None else []), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


class SeedAttention(nn.Module):
    """The reference's batch-attention network (transductive; see the module docstring)."""

    def __init__(self, n_points: int, n_outputs: int = 1, hidden: int = 64):
        super().__init__()
        self.encode = nn.Linear(n_points, hidden)
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encode(x)
        scores = self.query(h) @ self.key(h).T / h.shape[1] ** 0.5  # (batch, batch): samples attend to samples
        return self.out(h + torch.softmax(scores, dim=1) @ self.value(h))


@register_model(
    "window embedding + positions, residual self-attention over one spectrum, whole-spectrum path (ramanid)",
    defaults={"patience": 40, "augment": {"shift": 2, "scale": 0.1, "noise": 0.01}},
    width="hidden",
)
def attention_resnet(n_points: int = 1024, n_outputs: int = 6, **kwargs) -> AttentionResNet:
    """Windows 32/16 embedded to 64, 3 residual attention blocks of 4 heads, mean+max pooling."""
    return AttentionResNet(n_points, n_outputs, **kwargs)


@register_model(
    "the element reference: Linear(1024->64), attention across the batch, MSE (transductive)",
    defaults={"lr": 0.01, "weight_decay": 1e-5, "batch_size": None, "patience": None, "scheduler": None},
    width="hidden",
    transductive=True,
    per_element=True,
    element_loss="mse",
)
def seed_attention(n_points: int = 1024, n_outputs: int = 1, **kwargs) -> SeedAttention:
    """The reference: Linear(1024->64), batch self-attention with residual, Linear(64->1)."""
    return SeedAttention(n_points, n_outputs, **kwargs)
