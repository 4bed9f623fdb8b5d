"""Per-spectrum intensity normalisation: min-max, max, area, vector (L2) and SNV."""

from __future__ import annotations

import numpy as np

from ramanid.errors import PreprocessingError
from ramanid.preprocessing.base import SpectrumTransformer

METHODS = ("minmax", "max", "area", "vector", "snv")


class Normalize(SpectrumTransformer):
    """Scale each spectrum on its own.

    Parameters
    ----------
    method : {"minmax", "max", "area", "vector", "snv"}
        ``minmax`` maps each spectrum to [0, 1]; ``max`` divides by the largest absolute value;
        ``area`` by the sum of absolute values; ``vector`` by the L2 norm; ``snv`` (standard
        normal variate; Barnes, Dhanoa & Lister 1989) subtracts the mean and divides by the
        standard deviation. A flat spectrum maps to zeros instead of dividing by zero.
    """

    def __init__(self, method: str = "minmax"):
        self.method = method

    def _check_params(self) -> None:
        if self.method not in METHODS:
            raise PreprocessingError(f"unknown normalisation {self.method!r}: expected one of {METHODS}")

    def _transform_rows(self, X):
        if self.method == "minmax":
            X = X - X.min(axis=1, keepdims=True)
            scale = X.max(axis=1, keepdims=True)
        elif self.method == "snv":
            X = X - X.mean(axis=1, keepdims=True)
            scale = X.std(axis=1, keepdims=True)
        else:
            order = {"max": np.inf, "area": 1, "vector": 2}[self.method]
            scale = np.linalg.norm(X, ord=order, axis=1, keepdims=True)
        return np.divide(X, scale, out=np.zeros_like(X), where=scale > 0)
