"""A user's spectra as a saved model's inputs: resampled onto its grid, then preprocessed as its
training data were, by its fitted pipeline (built once when the folder is loaded).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from sklearn.pipeline import Pipeline

from ramanid.errors import RamanIdError, SpectrumFormatError
from ramanid.io.rruff import Skipped
from ramanid.preprocessing import pipeline_from_spec
from ramanid.preprocessing.edge import filter_edges
from ramanid.preprocessing.resample import coverage, resample_spectrum
from ramanid.quality import Quality, estimate, without_signal
from ramanid.spectra import Spectrum

#: a spectrum must cover at least this share of the model's shift range, with this many points
MIN_COVERAGE = 0.5
MIN_POINTS = 20
#: larger intensities overflow float32 once preprocessed
MAX_INTENSITY = 1e30
NO_SIGNAL = "holds no signal (zero, constant or a straight line within the model's range): nothing to identify"
NOT_MEASURED = "intensities are not finite (not measured?)"


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


class Inputs(NamedTuple):
    """A batch as a model's inputs: ``X`` (one row per kept spectrum), the spectra ``kept``,
    those ``skipped`` with the reason, and each kept spectrum's :class:`~ramanid.quality.Quality`.
    """

    X: np.ndarray
    kept: list[Spectrum]
    skipped: list[Skipped]
    quality: list[Quality]


def prepare(
    spectra: list[Spectrum], grid: np.ndarray, resampling: str, pipeline: Pipeline | None, filter_edge: bool = False
) -> Inputs:
    """The spectra that can be answered, each read from past an edge filter's cut where it shows
    one under a background and ``filter_edge`` asks (:func:`past_filter_edge`), resampled onto
    ``grid`` and preprocessed in one batch, with their quality measured on the spectrum as read
    (within the grid's range); and the
    others, each reported with its file and the reason: a spectrum that does not cover the grid,
    has too few points, holds values that are not finite or beyond float32, or that the
    preprocessing cannot handle.
    """
    rows, kept, skipped, quality = [], [], [], []
    for s in spectra:
        problem = unanswerable(s, grid)
        if problem is None:
            shifts, intensities, edge = s.shifts, s.intensities, None
            if filter_edge:
                shifts, intensities, edge = past_filter_edge(shifts, intensities)
                problem = uncovered(shifts, grid)
            if problem is not None and edge is not None:
                problem += f" (read from {edge:.0f} cm-1, past an edge filter's cut under a background)"
        if problem is None:
            rows.append(resample_spectrum(shifts, intensities, grid, resampling))
            kept.append(s)
            inside = (shifts >= grid[0]) & (shifts <= grid[-1])
            quality += estimate(shifts[inside], intensities[inside], coverage(shifts, grid), edge)
        else:
            skipped.append(_skip(s, problem))
    X = np.asarray(rows, dtype=np.float32).reshape(len(rows), len(grid))
    good = np.ones(len(X), dtype=bool)
    if pipeline is not None and len(X):
        X, good, failed = _transformed(pipeline, X)
        skipped += [_skip(kept[i], f"preprocessing failed ({reason})") for i, reason in failed]
    finite = np.isfinite(X).all(axis=1)
    skipped += [_skip(kept[i], "preprocessing gave values that are not finite") for i in np.flatnonzero(good & ~finite)]
    keep = np.flatnonzero(good & finite)
    return Inputs(X[keep], [kept[i] for i in keep], skipped, [quality[i] for i in keep])


#: above this background share (the quality estimate's) a map's one-pass ``opening`` baseline no
#: longer follows the background (from about 5 times the strongest band), and the model's own
#: baseline is used: the highest share at which the opening stays within 0.01 of arPLS on the
#: spectra it keeps (``benchmarks/bench_baselines.py``, on reference spectra of the protocol's split)
FAST_BASELINE_MAX_BACKGROUND = 0.98


#: the rows of a block whose filter edges are looked for (spread over it; a map's pixels share one filter)
EDGE_SAMPLE = 64


class RowInputs(NamedTuple):
    """Rows of one block (a map, a series) as a model's inputs: ``X`` for the ``rows`` kept (their
    positions in the block), each kept row's quality, and the reason for each row left out.
    """

    X: np.ndarray
    rows: np.ndarray
    quality: list[Quality]
    problems: dict[int, str]


def prepare_rows(
    shifts: np.ndarray,
    Y: np.ndarray,
    grid: np.ndarray,
    resampling: str,
    pipeline,
    strong_pipeline=None,
    filter_edge: bool = False,
) -> RowInputs:
    """:func:`prepare` for the rows of a block, which share one axis: resampled, measured and
    preprocessed as one batch (a map's chunk at a time), with no object per row. With
    ``strong_pipeline``, the rows whose background is stronger than
    :data:`FAST_BASELINE_MAX_BACKGROUND` go through it instead of ``pipeline``.
    """
    shifts, Y = np.asarray(shifts, dtype=np.float64), np.asarray(Y, dtype=np.float64)
    problems = {}
    axis = uncovered(shifts, grid)
    edge = None
    if axis is None and filter_edge:
        shifts, Y, edge = past_filter_edge(shifts, Y)
        axis = uncovered(shifts, grid)
    if axis is not None:
        return RowInputs(np.zeros((0, len(grid)), np.float32), np.zeros(0, int), [], dict.fromkeys(range(len(Y)), axis))
    bad = ~np.isfinite(Y).all(axis=1) | (np.abs(Y).max(axis=1, initial=0) > MAX_INTENSITY)
    problems.update(dict.fromkeys(np.flatnonzero(bad).tolist(), NOT_MEASURED))
    inside = (shifts >= grid[0]) & (shifts <= grid[-1])
    flat = ~bad & without_signal(np.where(bad[:, None], 0.0, Y)[:, inside])
    problems.update(dict.fromkeys(np.flatnonzero(flat).tolist(), NO_SIGNAL))
    rows = np.flatnonzero(~bad & ~flat)
    quality = estimate(shifts[inside], Y[rows][:, inside], coverage(shifts, grid), edge)
    X = resample_spectrum(shifts, Y[rows], grid, resampling).astype(np.float32).reshape(len(rows), len(grid))
    good = np.ones(len(X), dtype=bool)
    if pipeline is not None and len(X):
        strong = np.array([q.background_share > FAST_BASELINE_MAX_BACKGROUND for q in quality], dtype=bool)
        strong &= strong_pipeline is not None
        resampled, X, failed = X, X.copy(), []
        for part, steps in ((~strong, pipeline), (strong, strong_pipeline)):
            where = np.flatnonzero(part)
            if len(where):
                X[where], good[where], failed_here = _transformed(steps, resampled[where])
                failed += [(where[i], reason) for i, reason in failed_here]
        problems.update({int(rows[i]): f"preprocessing failed ({reason})" for i, reason in failed})
    finite = np.isfinite(X).all(axis=1)
    problems.update(dict.fromkeys(rows[good & ~finite].tolist(), "preprocessing gave values that are not finite"))
    keep = np.flatnonzero(good & finite)
    return RowInputs(X[keep], rows[keep], [quality[i] for i in keep], problems)


def _transformed(pipeline: Pipeline, X: np.ndarray):
    """``(X, good, failed)``: the batch through ``pipeline``; where it fails, row by row, to find the
    rows that fail (``failed``: their positions and reasons; their rows are left as they were).
    """
    try:
        return pipeline.transform(X), np.ones(len(X), dtype=bool), []
    except RamanIdError:
        pass
    X, good, failed = X.copy(), np.ones(len(X), dtype=bool), []
    for i in range(len(X)):
        try:
            X[i] = pipeline.transform(X[i : i + 1])[0]
        except RamanIdError as exc:
            good[i] = False
            failed.append((i, str(exc)))
    return X, good, failed


def past_filter_edge(shifts: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float | None]:
    """``(shifts, Y, edge)``: the spectrum from ``edge`` (cm-1) on, past an edge filter's cut
    (:func:`ramanid.preprocessing.edge.filter_edges`), or as it is and None where none is found;
    rows of a block share one axis, and are read from the median of the edges of up to
    :data:`EDGE_SAMPLE` of them spread over the block, where most show one (one instrument, one filter).
    """
    rows = np.atleast_2d(Y)
    rows = rows[np.isfinite(rows).all(axis=1)]
    rows = rows[np.unique(np.linspace(0, len(rows) - 1, min(len(rows), EDGE_SAMPLE)).astype(int))]
    edges = filter_edges(shifts, rows)
    if not len(edges) or np.isfinite(edges).mean() <= 0.5:
        return shifts, Y, None
    edge = float(np.nanmedian(edges))
    keep = shifts >= edge
    return shifts[keep], Y[..., keep], edge


def unanswerable(s: Spectrum, grid: np.ndarray) -> str | None:
    """Why a spectrum cannot be answered on ``grid``, or None."""
    values = np.asarray(s.intensities, dtype=np.float64)
    if not np.isfinite(values).all() or np.abs(values).max(initial=0) > MAX_INTENSITY:
        return f"intensities must be finite numbers below {MAX_INTENSITY:.0e} in size"
    inside = (s.shifts >= grid[0]) & (s.shifts <= grid[-1])
    return uncovered(s.shifts, grid) or (NO_SIGNAL if without_signal(values[inside])[0] else None)


def uncovered(shifts: np.ndarray, grid: np.ndarray) -> str | None:
    """Why an axis covers too little of ``grid`` for an answer, or None."""
    share = coverage(shifts, grid)
    inside = (shifts >= grid[0]) & (shifts <= grid[-1])
    if share < MIN_COVERAGE or inside.sum() < MIN_POINTS:
        return (
            f"covers {share:.0%} of the model's range {grid[0]:.0f}-{grid[-1]:.0f} cm-1 with {inside.sum()} points "
            f"(its Raman shifts run {shifts.min():.0f} to {shifts.max():.0f} cm-1); "
            f"at least {MIN_COVERAGE:.0%} and {MIN_POINTS} points are needed for an answer"
        )
    return None


def _skip(s: Spectrum, problem: str) -> Skipped:
    return Skipped(s.source, str(SpectrumFormatError(s.source, problem)))
