"""Savitzky-Golay smoothing and derivatives.

Savitzky A, Golay M J E (1964), *Smoothing and differentiation of data by simplified least
squares procedures*, Analytical Chemistry 36:1627-1639. Computed by :func:`scipy.signal.savgol_filter`.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import savgol_filter

from ramanid.errors import PreprocessingError
from ramanid.preprocessing.base import SpectrumTransformer


class SavitzkyGolay(SpectrumTransformer):
    """Savitzky-Golay filter along each spectrum.

    Parameters
    ----------
    window_length : int
        Odd number of points in the fitting window.
    polyorder : int
        Order of the local polynomial.
    deriv : int
        0 smooths; 1 and 2 give the first and second derivative (per point, not per cm⁻¹).
    """

    def __init__(self, window_length: int = 11, polyorder: int = 3, deriv: int = 0):
        self.window_length = window_length
        self.polyorder = polyorder
        self.deriv = deriv

    def _check_params(self) -> None:
        check_savgol(self.window_length, self.polyorder, self.deriv)

    def _transform_rows(self, X):
        if self.window_length > X.shape[1]:  # checked before scipy sizes its filter by the window
            raise PreprocessingError(
                f"Savitzky-Golay window_length={self.window_length} is longer than the spectra ({X.shape[1]} points)"
            )
        return savgol_filter(X, self.window_length, self.polyorder, deriv=self.deriv, axis=1, mode="interp")


class Derivative(SpectrumTransformer):
    """First (``order=1``) or second (``order=2``) Savitzky-Golay derivative."""

    def __init__(self, order: int = 1, window_length: int = 11, polyorder: int = 3):
        self.order = order
        self.window_length = window_length
        self.polyorder = polyorder

    def _check_params(self) -> None:
        if self.order not in (1, 2):
            raise PreprocessingError(f"derivative order {self.order!r}: expected 1 or 2")
        check_savgol(self.window_length, self.polyorder, self.order)

    def _transform_rows(self, X):
        return SavitzkyGolay(self.window_length, self.polyorder, self.order)._transform_rows(X)


def check_savgol(window_length, polyorder, deriv) -> None:
    """Savitzky-Golay needs an odd window longer than the polynomial order, and deriv <= polyorder."""
    ok = all(isinstance(v, (int, np.integer)) for v in (window_length, polyorder, deriv))
    if not ok or window_length < 1 or not 0 <= deriv <= polyorder < window_length:
        raise PreprocessingError(
            f"Savitzky-Golay window_length={window_length!r}, polyorder={polyorder!r}, "
            f"deriv={deriv!r}: expected whole numbers with 0 <= deriv <= polyorder < window_length"
        )


def smoothed_in_range(X: np.ndarray, window: int) -> np.ndarray:
    """Each row smoothed by a quadratic Savitzky-Golay filter over ``window`` points (0: as it
    is), then mapped back onto its own minimum and maximum, so that a min-max scaled input
    stays one: the denoising a noisy input gets before a model trained on clean ones.
    """
    X = np.asarray(X, dtype=np.float32)
    if not window:
        return X
    smooth = SavitzkyGolay(window, 2)._transform_rows(X)
    low, high = smooth.min(axis=1, keepdims=True), smooth.max(axis=1, keepdims=True)
    span = np.where(high > low, high - low, 1.0)
    scaled = (smooth - low) / span * (X.max(axis=1, keepdims=True) - X.min(axis=1, keepdims=True))
    return (scaled + X.min(axis=1, keepdims=True)).astype(np.float32)


def is_smoothing_window(value, points: int) -> bool:
    """Whether ``value`` is a window :func:`smoothed_in_range` takes on ``points``-point inputs:
    0 (none), or an odd whole number of points from 3, shorter than the inputs.
    """
    whole = isinstance(value, int) and not isinstance(value, bool)
    return whole and (value == 0 or (3 <= value < points and value % 2 == 1))
