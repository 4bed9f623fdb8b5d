"""Cosmic-ray removal.

Whitaker D A, Hayes K (2018), *A simple algorithm for despiking Raman spectra*,
Chemometrics and Intelligent Laboratory Systems 179:82-84.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import convolve1d

from ramanid.preprocessing.base import SpectrumTransformer, check_setting

#: half-width, in points, of the neighbourhood that sets the local step size and level
LOCAL_HALF_WIDTH = 5


def modified_z_scores(X: np.ndarray) -> np.ndarray:
    """Modified z-scores (Iglewicz & Hoaglin) of each row's first differences, shape ``(n, p - 1)``."""
    delta = np.diff(X, axis=1)
    median = np.median(delta, axis=1, keepdims=True)
    mad = np.median(np.abs(delta - median), axis=1, keepdims=True)
    return np.divide(0.6745 * (delta - median), mad, out=np.zeros_like(delta), where=mad > 0)


def local_median(A: np.ndarray, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """The median of each ``A[row, column - h : column + h + 1]`` (``h``: :data:`LOCAL_HALF_WIDTH`),
    edges repeated: ``scipy.ndimage.median_filter(A, (1, 2h + 1), mode="nearest")`` at those
    points only (a spectrum has few candidate spike steps; filtering it whole took most of a map's
    preprocessing).
    """
    offsets = np.arange(-LOCAL_HALF_WIDTH, LOCAL_HALF_WIDTH + 1)
    window = np.clip(columns[:, None] + offsets, 0, A.shape[1] - 1)
    return np.median(A[rows[:, None], window], axis=1)


class Despike(SpectrumTransformer):
    """Whitaker-Hayes despiking, made safe for smooth spectra.

    A step between neighbouring points counts as part of a spike when its modified z-score
    (over the whole spectrum's first differences) exceeds ``threshold``, as in the paper, and
    it is also ``ratio`` times larger than the median step around it. The second test keeps
    the steep flanks of real peaks in smooth, processed spectra, where the global scale of the
    steps is tiny. Of the two points of a spike step, the one farther from the local median
    level is flagged, and each flagged point is replaced by the mean of the unflagged points
    within ``window``.

    Parameters
    ----------
    threshold : float
        Modified z-score above which a step may be a spike (the paper uses 3.5 to 7).
    ratio : float
        How many times the local median step a spike step must exceed. At 8, no band of
        400 real processed RRUFF spectra moves, and planted spikes of 1-3x the spectrum's
        maximum are all removed (tests/preprocessing/test_real.py).
    window : int
        Half-width, in points, of the neighbourhood used to fill a spike (the paper's m = 3).
    """

    def __init__(self, threshold: float = 6.0, ratio: float = 8.0, window: int = 3):
        self.threshold = threshold
        self.ratio = ratio
        self.window = window

    def _check_params(self) -> None:
        check_setting("despike", "threshold", self.threshold, 1e-6, 1e6)
        check_setting("despike", "ratio", self.ratio, 1e-6, 1e6)
        check_setting("despike", "window", self.window, 1, 65_536, whole=True)

    def spike_mask(self, X) -> np.ndarray:
        """Boolean ``(n, p)`` mask of the points that belong to spikes."""
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        mask = np.zeros(X.shape, dtype=bool)
        rows, steps = np.nonzero(np.abs(modified_z_scores(X)) > self.threshold)  # only these can be spike steps
        delta = np.abs(np.diff(X, axis=1))
        spiky = delta[rows, steps] > self.ratio * local_median(delta, rows, steps)
        rows, steps = rows[spiky], steps[spiky]
        before = np.abs(X[rows, steps] - local_median(X, rows, steps))
        after = np.abs(X[rows, steps + 1] - local_median(X, rows, steps + 1))
        right = after >= before  # of a step's two points, the one farther from the local level is flagged
        mask[rows[right], steps[right] + 1] = True
        mask[rows[~right], steps[~right]] = True
        return mask

    def _transform_rows(self, X):
        mask = self.spike_mask(X)
        if not mask.any():
            return X
        kernel = np.ones(2 * min(self.window, X.shape[1]) + 1)  # wider would fill from the same points
        keep = (~mask).astype(np.float64)
        total = convolve1d(X * keep, kernel, axis=1, mode="nearest")
        count = convolve1d(keep, kernel, axis=1, mode="nearest")
        filled = np.divide(total, count, out=X.copy(), where=count > 0)
        return np.where(mask, filled, X)
