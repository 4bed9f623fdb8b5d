"""A plain multilayer perceptron baseline."""
from __future__ import annotations

from torch import nn


class MLP(nn.Module):
    def __init__(self, n_points: int, n_classes: int, hidden=(256, 128), dropout: float = 0.3):
        super().__init__()
        layers, width = [], n_points
        for units in hidden:
            layers += [nn.Linear(width, units), nn.BatchNorm1d(units), nn.ReLU(), nn.Dropout(dropout)]
            width = units
        self.net = nn.Sequential(*layers, nn.Linear(width, n_classes))

    def forward(self, x):
        return self.net(x)


def mlp(n_points: int = 1024, n_classes: int = 2, **kwargs) -> MLP:
    """Two hidden layers (256, 128) with BatchNorm, ReLU and dropout 0.3."""
    return MLP(n_points, n_classes, **kwargs)
