"""Baseline removal on pybaselines (Erb D, *pybaselines*, doi:10.5281/zenodo.5608581).

Algorithms: asls (Eilers & Boelens 2005), arpls (Baek et al. 2015), airpls (Zhang et al. 2010),
modpoly (Lieber & Mahadevan-Jansen 2003), imodpoly (Zhao et al. 2007), snip (Ryan et al. 1988)
and rubberband (convex hull). arPLS, the default, runs a whole chunk of spectra at once
(:func:`arpls_rows`: pybaselines' iteration, every spectrum's system solved in one pentapy call).
:class:`OpeningBaseline` (``opening``) is a morphological baseline computed for a whole batch at
once, with no iteration: the fast baseline of maps.
"""

from __future__ import annotations

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from scipy.ndimage import maximum_filter1d, minimum_filter1d, uniform_filter1d
from scipy.spatial import QhullError
from scipy.special import expit

from ramanid.errors import PreprocessingError
from ramanid.preprocessing.base import SpectrumTransformer, check_setting, check_window

#: the key parameters each algorithm takes
PARAMETERS = {
    "asls": ("lam", "p", "max_iter"),
    "arpls": ("lam", "max_iter"),
    "airpls": ("lam", "max_iter"),
    "modpoly": ("poly_order", "max_iter"),
    "imodpoly": ("poly_order", "max_iter"),
    "snip": ("max_half_window",),
    "rubberband": ("segments",),
}
#: the range each parameter may take (whole numbers for the counts)
RANGES = {
    "lam": (1e-10, 1e15, False),
    "p": (1e-10, 1 - 1e-10, False),
    "max_iter": (1, 10_000, True),
    "poly_order": (0, 20, True),
    "max_half_window": (1, 65_536, True),
    "segments": (1, 65_536, True),
}
#: spectra per worker task: large enough that process start-up does not dominate
CHUNK = 256
#: the noise floor arPLS fits against, as a share of each spectrum's range (:func:`fitted_input`)
ARPLS_NOISE_FLOOR = 1e-3
#: pybaselines' arPLS defaults, which :func:`arpls_rows` keeps (second differences)
ARPLS_DEFAULTS = {"lam": 1e5, "max_iter": 50, "tol": 1e-3}
#: the fewest spectra :func:`arpls_rows` fits at once; fewer go to pybaselines one by one (it
#: took 0.7-0.85 times the batch's time for 1-2 spectra, about twice it from 8 on)
ARPLS_BATCH_FROM = 4


class BaselineCorrection(SpectrumTransformer):
    """Subtract a baseline estimated by a pybaselines algorithm.

    Parameters
    ----------
    method : {"asls", "arpls", "airpls", "modpoly", "imodpoly", "snip", "rubberband"}
    lam : float, optional
        Smoothness of the Whittaker baselines (asls, arpls, airpls).
    p : float, optional
        Asymmetry of asls.
    poly_order : int, optional
        Polynomial order of modpoly and imodpoly.
    max_half_window : int, optional
        SNIP's largest half window, in points.
    segments : int, optional
        Rubberband's number of convex-hull segments.
    max_iter : int, optional
        Iteration cap of the iterative methods.
    shifts : array-like, optional
        The x axis for polynomial and hull fits (default: point index).
    n_jobs : int, optional
        Worker processes (joblib); ``-1`` uses every core. Spectra go in chunks of 256: arPLS
        fits a chunk at once (:func:`arpls_rows`), the other methods reuse one pybaselines fitter
        per chunk, so its setup is paid once per chunk.

    Notes
    -----
    A parameter left as ``None`` takes pybaselines' default. Passing one the method does not
    take is an error.
    """

    def __init__(
        self,
        method: str = "arpls",
        lam=None,
        p=None,
        poly_order=None,
        max_half_window=None,
        segments=None,
        max_iter=None,
        shifts=None,
        n_jobs=None,
    ):
        self.method = method
        self.lam = lam
        self.p = p
        self.poly_order = poly_order
        self.max_half_window = max_half_window
        self.segments = segments
        self.max_iter = max_iter
        self.shifts = shifts
        self.n_jobs = n_jobs

    def _options(self) -> dict:
        if self.method not in PARAMETERS:
            raise PreprocessingError(f"unknown baseline method {self.method!r}: expected one of {sorted(PARAMETERS)}")
        given = {
            k: getattr(self, k)
            for k in ("lam", "p", "poly_order", "max_half_window", "segments", "max_iter")
            if getattr(self, k) is not None
        }
        extra = sorted(set(given) - set(PARAMETERS[self.method]))
        if extra:
            raise PreprocessingError(f"baseline {self.method!r} takes {PARAMETERS[self.method]}, not {extra}")
        for name, value in given.items():
            check_setting(f"baseline {self.method!r}", name, value, *RANGES[name])
        return given

    def _check_params(self) -> None:
        self._options()

    def baselines(self, X) -> np.ndarray:
        """The estimated baselines, shape ``(n, p)``."""
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        options = self._options()
        x = None if self.shifts is None else np.asarray(self.shifts, dtype=np.float64)
        chunks = [X[i : i + CHUNK] for i in range(0, len(X), CHUNK)]
        jobs = min(effective_n_jobs(self.n_jobs), len(chunks))
        if jobs == 1:
            parts = [_fit_chunk(c, x, self.method, options) for c in chunks]
        else:
            parts = Parallel(n_jobs=jobs)(delayed(_fit_chunk)(c, x, self.method, options) for c in chunks)
        return np.concatenate(parts)

    def _transform_rows(self, X):
        for name in ("max_half_window", "segments"):
            if getattr(self, name) is not None:
                check_window(f"baseline {self.method!r}", name, getattr(self, name), X.shape[1])
        return X - self.baselines(X)


def _fit_chunk(X: np.ndarray, x, method: str, options: dict) -> np.ndarray:
    if method == "arpls" and len(X) >= ARPLS_BATCH_FROM:
        return arpls_rows(fitted_inputs(X), **options)
    from pybaselines import Baseline  # imported when used: it loads numba, which the fast baseline does not need

    x = x if x is not None else np.arange(X.shape[1], dtype=np.float64)
    fit = getattr(Baseline(x_data=x), method)
    return np.stack([_fit_row(fit, fitted_input(method, row), x, options) for row in X])


def arpls_rows(Y: np.ndarray, lam: float | None = None, max_iter: int | None = None, tol: float | None = None):
    """The arPLS baselines (Baek et al. 2015) of every row of ``Y``, as pybaselines' ``arpls`` fits
    them one at a time (its weighting, stopping rule and second-difference penalty; equal to
    within rounding, ``tests/preprocessing``), but each iteration solves every unfinished row's
    system at once: one pentadiagonal matrix with the rows' systems as its blocks, for pentapy
    (the solver pybaselines itself uses). A row stops when its weights change by less than
    ``tol`` (relative) or its residual has fewer than two negative points, as there.
    """
    import pentapy  # imported when used, as pybaselines is

    lam = ARPLS_DEFAULTS["lam"] if lam is None else lam
    max_iter = ARPLS_DEFAULTS["max_iter"] if max_iter is None else max_iter
    tol = ARPLS_DEFAULTS["tol"] if tol is None else tol
    Y = np.asarray(Y, dtype=np.float64)
    n, p = Y.shape
    if p < 3:
        raise PreprocessingError(f"arPLS needs spectra of at least 3 points, not {p}")
    # lam * D'D of second differences (D's rows are 1, -2, 1) as five bands in pentapy's row-wise
    # layout, one row's block after another, with zeros where a band would reach into the next block
    rows, step = np.ones(p - 2), np.array([1.0, -2.0, 1.0])
    block = np.zeros((5, p))
    block[2] = lam * np.convolve(rows, step * step)
    block[1, :-1] = block[3, 1:] = lam * np.convolve(rows, step[:-1] * step[1:])
    block[0, :-2] = block[4, 2:] = lam * np.convolve(rows, step[:-2] * step[2:])
    system = np.tile(block, n)
    weights, baselines, active = np.ones((n, p)), np.empty((n, p)), np.arange(n)
    tiny = np.finfo(np.float64).eps
    for _ in range(max_iter + 1):
        w, y = weights[active], Y[active]
        system[2] = np.tile(block[2], len(active)) + w.ravel()
        z = pentapy.solve(system, (w * y).ravel(), is_flat=True, index_row_wise=True, solver=2).reshape(y.shape)
        baselines[active] = z
        residual = y - z
        negative = residual < 0
        count = negative.sum(axis=1)
        mean = np.where(negative, residual, 0).sum(axis=1) / np.maximum(count, 1)
        spread = np.where(negative, residual - mean[:, None], 0)
        std = np.sqrt((spread**2).sum(axis=1) / np.maximum(count - 1, 1))
        std = np.where(std == 0, tiny, std)
        new = expit(-(2 / std[:, None]) * (residual - (2 * std - mean)[:, None]))
        change = np.linalg.norm(new - w, axis=1) / np.maximum(np.linalg.norm(w, axis=1), tiny)
        going = (count >= 2) & (change >= tol)
        if not going.any():
            break
        weights[active[going]] = new[going]
        active = active[going]
        system = system[:, : len(active) * p]  # every block is alike: keep as many as rows go on
    return baselines


def fitted_inputs(X: np.ndarray) -> np.ndarray:
    """What arPLS fits the baselines of the rows of ``X`` to (:func:`fitted_input`), at once."""
    noise = np.random.default_rng(0).normal(0.0, 1.0, X.shape[1])
    return X + ARPLS_NOISE_FLOOR * np.ptp(X, axis=1, keepdims=True) * noise


def fitted_input(method: str, row: np.ndarray) -> np.ndarray:
    """What ``method`` fits its baseline to: the spectrum ``row``, and for arPLS the spectrum plus
    a fixed, seeded noise of :data:`ARPLS_NOISE_FLOOR` of its range.

    arPLS (Baek et al. 2015) weighs each point by how far it lies above the spread of the negative
    residuals, which it takes for the noise. A spectrum with no noise (smoothed by its software,
    a processed library file) gives it none: its weights collapse onto a few points and a strong
    background stays in place (in a fifth of RRUFF's processed spectra under a background 5 times
    their strongest band; ``benchmarks/bench_baselines.py``). A measured spectrum's own noise
    exceeds the floor. The baseline is subtracted from the spectrum itself.
    """
    return fitted_inputs(row[None, :])[0] if method == "arpls" else row


def _fit_row(fit, row: np.ndarray, x: np.ndarray, options: dict) -> np.ndarray:
    try:
        return fit(row, **options)[0]
    except QhullError:
        # a convex hull of points on one straight line is that line
        return np.interp(x, x[[0, -1]], row[[0, -1]])


def opening_envelope(Y: np.ndarray, points: int) -> np.ndarray:
    """A smooth lower envelope of each row of ``Y``: its morphological opening over ``points``
    (a rolling minimum, then a rolling maximum; the top-hat baseline of Sternberg 1986),
    averaged over half that, after the line through the lowest points of each end is taken out.
    Where the average falls below the opening (the shoulder of a filter's cut under a background,
    which the opening follows), the opening is kept. Vectorised over the rows.
    """
    Y = np.atleast_2d(np.asarray(Y, dtype=np.float64))
    size = max(3, int(points) | 1)
    # the line through the lowest points of each end is taken out first and put back after, so
    # that a sloped background is followed to the edges (a window there sees one side only)
    end = max(2, min(size, Y.shape[-1] // 4))
    left, right = Y[..., :end].min(axis=-1, keepdims=True), Y[..., -end:].min(axis=-1, keepdims=True)
    line = left + (right - left) * np.linspace(0, 1, Y.shape[-1])
    opened = maximum_filter1d(minimum_filter1d(Y - line, size, axis=-1, mode="nearest"), size, axis=-1, mode="nearest")
    smoothed = uniform_filter1d(opened, max(3, size // 2 | 1), axis=-1, mode="nearest")
    return np.maximum(smoothed, opened) + line


class OpeningBaseline(SpectrumTransformer):
    """Subtract a morphological baseline (:func:`opening_envelope`) of ``width`` cm-1: wider than
    any band, narrower than a fluorescence background's curvature. One pass of two rolling
    filters for a whole batch, so it runs at map speed where the iterative Whittaker baselines
    (arPLS) take milliseconds a spectrum; its cost in accuracy is measured in benchmarks/RESULTS.md.
    """

    def __init__(self, width: float = 150.0, shifts=None):
        self.width = width
        self.shifts = shifts

    def _check_params(self) -> None:
        check_setting("opening", "width (cm-1)", self.width, 1e-6, 1e6)

    def _transform_rows(self, X):
        step = float(np.median(np.diff(self.shifts))) if self.shifts is not None and len(self.shifts) > 1 else 1.0
        points = min(self.width / max(step, 1e-9), 2 * X.shape[1] + 1)  # wider would see the same points
        return X - opening_envelope(X, points)
