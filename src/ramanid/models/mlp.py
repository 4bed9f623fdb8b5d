"""A plain multilayer perceptron baseline."""

from __future__ import annotations

from torch import nn

from ramanid.models.registry import register_model


class MLP(nn.Module):
    def __init__(self, n_points: int, n_outputs: int, hidden=(256, 128), dropout: float = 0.3):
        super().__init__()
        layers, width = [], n_points
        for units in hidden:
            layers += [nn.Linear(width, units), nn.BatchNorm1d(units), nn.ReLU(), nn.Dropout(dropout)]
            width = units
        self.net = nn.Sequential(*layers, nn.Linear(width, n_outputs))

    def forward(self, x):
        return self.net(x)


@register_model("two hidden layers (256, 128) with BatchNorm, ReLU and dropout")
def mlp(n_points: int = 1024, n_outputs: int = 2, **kwargs) -> MLP:
    """Two hidden layers (256, 128) with BatchNorm, ReLU and dropout 0.3."""
    return MLP(n_points, n_outputs, **kwargs)
