"""Resampling onto a shift grid, and cropping to a range."""

from __future__ import annotations

import numpy as np
from scipy.interpolate import CubicSpline, PchipInterpolator

from ramanid.errors import PreprocessingError, SpectrumFormatError
from ramanid.preprocessing.base import SpectrumTransformer
from ramanid.preprocessing.grid import parse_grid
from ramanid.spectra import check_shifts

METHODS = ("linear", "cubic", "pchip")


def resample_spectrum(shifts, intensities, grid, method: str = "linear", outside: str = "edge"):
    """Interpolate one spectrum (or rows sharing ``shifts``) onto ``grid``.

    Parameters
    ----------
    shifts : array of shape (m,)
        Strictly increasing shifts of the input.
    intensities : array of shape (m,) or (n, m)
    grid : array of shape (p,)
    method : {"linear", "cubic", "pchip"}
        Linear interpolation, a not-a-knot cubic spline, or a shape-preserving PCHIP.
    outside : {"edge", "nan"}
        Grid points beyond the measured range take the nearest measured value (as
        ``numpy.interp`` does), or NaN.

    Returns
    -------
    array of shape (p,) or (n, p), float64
    """
    shifts = np.asarray(shifts, dtype=np.float64)
    values = np.asarray(intensities, dtype=np.float64)
    grid = np.asarray(grid, dtype=np.float64)
    if method not in METHODS:
        raise PreprocessingError(f"unknown resampling method {method!r}: expected one of {METHODS}")
    if outside not in ("edge", "nan"):
        raise PreprocessingError(f"unknown outside policy {outside!r}: expected 'edge' or 'nan'")
    inside = np.clip(grid, shifts[0], shifts[-1])
    if method == "linear":
        if values.ndim == 1:
            out = np.interp(inside, shifts, values)
        else:  # rows on one axis: the interpolation weights once, for every row at once
            right = np.clip(np.searchsorted(shifts, inside, side="right"), 1, len(shifts) - 1)
            t = (inside - shifts[right - 1]) / (shifts[right] - shifts[right - 1])
            out = values[..., right - 1] * (1 - t) + values[..., right] * t
    else:
        make = CubicSpline if method == "cubic" else PchipInterpolator
        out = make(shifts, values, axis=-1)(inside)
    if outside == "nan":
        out[..., (grid < shifts[0]) | (grid > shifts[-1])] = np.nan
    return out


def coverage(shifts, grid) -> float:
    """Share of ``grid`` points that lie inside the measured range of ``shifts``."""
    grid = np.asarray(grid)
    return float(np.mean((grid >= shifts[0]) & (grid <= shifts[-1])))


class Resample(SpectrumTransformer):
    """Interpolate spectra from the axis ``shifts`` onto ``grid``.

    Parameters
    ----------
    shifts : array-like or None
        The input axis. ``None`` means the grid a :class:`~ramanid.spectra.SpectraSet` gives
        when the pipeline is made with :func:`ramanid.preprocessing.pipeline_from_spec`.
    grid : str or array-like
        ``"START:STOP:POINTS"`` or the target shifts.
    method : {"linear", "cubic", "pchip"}
    """

    def __init__(self, shifts=None, grid="100:1400:1024", method: str = "linear"):
        self.shifts = shifts
        self.grid = grid
        self.method = method

    def _check_params(self) -> None:
        if self.method not in METHODS:
            raise PreprocessingError(f"unknown resampling method {self.method!r}: expected one of {METHODS}")

    def output_shifts(self, shifts=None) -> np.ndarray:
        if isinstance(self.grid, str):
            return parse_grid(self.grid).axis
        return np.asarray(self.grid, dtype=np.float64)

    def _transform_rows(self, X):
        source = check_shifts(self.shifts if self.shifts is not None else np.arange(X.shape[1]), "Resample.shifts")
        if len(source) != X.shape[1]:
            raise SpectrumFormatError("Resample", f"{len(source)} shifts for spectra of {X.shape[1]} points")
        return resample_spectrum(source, X, self.output_shifts(), self.method)


class Crop(SpectrumTransformer):
    """Keep the points with ``start <= shift <= stop``."""

    def __init__(self, shifts=None, start: float = 100.0, stop: float = 1400.0):
        self.shifts = shifts
        self.start = start
        self.stop = stop

    def _mask(self, n_points: int) -> np.ndarray:
        shifts = np.arange(n_points) if self.shifts is None else np.asarray(self.shifts, dtype=np.float64)
        mask = (shifts >= self.start) & (shifts <= self.stop)
        if mask.sum() < 2:
            raise SpectrumFormatError("Crop", f"fewer than 2 points between {self.start} and {self.stop} cm-1")
        return mask

    def output_shifts(self, shifts) -> np.ndarray:
        shifts = np.asarray(shifts)
        return shifts[self._mask(len(shifts))]

    def _transform_rows(self, X):
        return X[:, self._mask(X.shape[1])]
