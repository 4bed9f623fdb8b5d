"""A user's spectra as a saved model's inputs: resampled onto its grid, then preprocessed as its
training data were, by its fitted pipeline (built once when the folder is loaded).
"""

from __future__ import annotations

import numpy as np
from sklearn.pipeline import Pipeline

from ramanid.errors import RamanIdError, SpectrumFormatError
from ramanid.io.rruff import Skipped
from ramanid.preprocessing import pipeline_from_spec
from ramanid.preprocessing.resample import coverage, resample_spectrum
from ramanid.spectra import Spectrum

#: a spectrum must cover at least this share of the model's shift range, with this many points
MIN_COVERAGE = 0.5
MIN_POINTS = 20
#: larger intensities overflow float32 once preprocessed
MAX_INTENSITY = 1e30


def fitted_pipeline(steps: list, grid: np.ndarray) -> Pipeline | None:
    """The preprocessing ``steps`` on ``grid``, fitted (its steps learn nothing, so fitting
    checks them against the number of points); None for no steps.
    """
    if not steps:
        return None
    pipeline = pipeline_from_spec(steps, grid)
    points = np.linspace(-1, 1, len(grid))
    probe = (1 + points + np.exp(-((points / 0.05) ** 2)))[None, :].astype(np.float32)  # a band on a slope
    pipeline.fit(probe).transform(probe)  # a step that cannot run on this grid fails here, once
    return pipeline


def prepare(
    spectra: list[Spectrum], grid: np.ndarray, resampling: str, pipeline: Pipeline | None
) -> tuple[np.ndarray, list[Spectrum], list[Skipped]]:
    """``(X, kept, skipped)``: the spectra that can be answered, resampled onto ``grid`` and
    preprocessed in one batch, and the others, each reported with its file and the reason: a
    spectrum that does not cover the grid, has too few points, holds values that are not finite
    or beyond float32, or that the preprocessing cannot handle.
    """
    rows, kept, skipped = [], [], []
    for s in spectra:
        problem = unanswerable(s, grid)
        if problem is None:
            rows.append(resample_spectrum(s.shifts, s.intensities, grid, resampling))
            kept.append(s)
        else:
            skipped.append(_skip(s, problem))
    X = np.asarray(rows, dtype=np.float32).reshape(len(rows), len(grid))
    if pipeline is not None and len(X):
        X, kept, failed = _transformed(pipeline, X, kept)
        skipped += failed
    finite = np.isfinite(X).all(axis=1)
    skipped += [_skip(kept[i], "preprocessing gave values that are not finite") for i in np.flatnonzero(~finite)]
    return X[finite], [kept[i] for i in np.flatnonzero(finite)], skipped


def _transformed(pipeline: Pipeline, X: np.ndarray, kept: list[Spectrum]):
    """The batch through ``pipeline``; where it fails, spectrum by spectrum, to name the ones that fail."""
    try:
        return pipeline.transform(X), kept, []
    except RamanIdError:
        pass
    rows, good, failed = [], [], []
    for row, s in zip(X, kept, strict=True):
        try:
            rows.append(pipeline.transform(row[None, :])[0])
            good.append(s)
        except RamanIdError as exc:
            failed.append(_skip(s, f"preprocessing failed ({exc})"))
    return np.asarray(rows, dtype=np.float32).reshape(len(rows), X.shape[1]), good, failed


def unanswerable(s: Spectrum, grid: np.ndarray) -> str | None:
    """Why a spectrum cannot be answered on ``grid``, or None."""
    values = np.asarray(s.intensities, dtype=np.float64)
    if not np.isfinite(values).all() or np.abs(values).max(initial=0) > MAX_INTENSITY:
        return f"intensities must be finite numbers below {MAX_INTENSITY:.0e} in size"
    share = coverage(s.shifts, grid)
    inside = int(np.sum((s.shifts >= grid[0]) & (s.shifts <= grid[-1])))
    if share < MIN_COVERAGE or inside < MIN_POINTS:
        return (
            f"covers {share:.0%} of the model's range {grid[0]:.0f}-{grid[-1]:.0f} cm-1 with {inside} points; "
            f"at least {MIN_COVERAGE:.0%} and {MIN_POINTS} points are needed for an answer"
        )
    return None


def _skip(s: Spectrum, problem: str) -> Skipped:
    return Skipped(s.source, str(SpectrumFormatError(s.source, problem)))
