"""Mixtures: every mineral in the spectrum of a rock, with its share of the signal.

The method, for a library identifier's query (preprocessed as the references are):

1. **Each mineral is a cone of spectra**: its :data:`REFERENCES` references most similar to the
   query, each also shifted by :data:`SHIFTS` points. Non-negative weights over them absorb what
   differs between two specimens of one mineral (relative band heights, a band a few cm-1 off,
   a band's width), which a single reference cannot: with one reference per mineral, a wrong
   but similar mineral often fitted the difference between the query's specimen and the
   library's better than the right second mineral did.
2. **The fit is made on compressed, differentiated spectra** (:data:`FIT_SPACE`: intensities
   to the power 1/2, then a Savitzky-Golay first derivative; the identifier's own kind of
   spectral score). Compression raises a minor mineral's bands towards the major one's, and the
   derivative drops the broad residue baseline removal leaves. Raman bands are narrow and
   mostly apart, so a mixture stays close to a sum of its compressed components.
3. **Greedy forward selection with non-negative least squares** (Lawson & Hanson 1974,
   :func:`scipy.optimize.nnls`) from nothing: each step adds the mineral whose cone lowers the
   residual most, with a smooth background (Legendre polynomials, either sign). Candidates
   are the query's :data:`CANDIDATES` best-ranked minerals and, after each step, those of what
   the fit so far leaves, identified again as residual subtraction does (a minor mineral is
   often not among the query's own best). Minerals are added while each lowers the residual's
   norm by more than ``min_gain`` of the query's (the stopping rule; a library identifier's
   folder stores the one chosen on its validation mixtures) and ``max_components`` allows. Where
   one mineral is kept, it is the identifier's own answer, as plain ``predict`` names it.
4. **Shares**: the kept minerals' cones are fitted again to the spectrum itself, and
   ``fraction`` is each mineral's share of the fitted area, on the model's min-max scale: not a
   volume or weight fraction, which would need each mineral's Raman cross-section.
   ``explained`` is the share of the spectrum's energy that fit explains,
   ``1 - |residual|^2 / |spectrum|^2``; below :data:`MIN_EXPLAINED` nothing recognisable was
   found: no component, ``unknown``.

Every constant was chosen on mixtures of an identifier's validation specimens, never on the
benchmark's test mixtures (``benchmarks/RESULTS.md``, "Mixtures, second method").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from numpy.polynomial import legendre
from scipy.optimize import nnls

from ramanid.search import SpectralScore, first_derivative, shifted

#: this method's name in a model folder's ``mixture`` block, beside the stopping rule chosen for it
METHOD = "cones"
#: the default stopping rule, where a model folder stores none: a new mineral must lower the
#: fit's residual norm by this share of the query's norm (identifiers' validation mixtures chose
#: 0.15-0.175)
MIN_GAIN = 0.15
#: where the fit is made: intensities to the power 1/2, then a first derivative over 15 points
FIT_SPACE = SpectralScore(0.5, 15)
#: references of each mineral in its cone, and the shifts (points) of each
REFERENCES, SHIFTS = 3, (-2, 0, 2)
#: ranked minerals considered from the query, and again from what each step leaves
CANDIDATES = 20
#: the candidates fitted at each step: those whose cone's span holds most of what the fit so far
#: leaves (an unconstrained projection, cheap), so that a step costs a few fits, not one per candidate
SCREENED = 8
#: the background's Legendre degree
BACKGROUND_DEGREE = 3
#: a spectrum whose fit explains less than this share of its energy has nothing recognisable
MIN_EXPLAINED = 0.5


@dataclass
class Component:
    """One mineral of a mixture: its share of the fitted signal, the reference that weighs most
    in its fit, and the identifier's score for the mineral.
    """

    mineral: str
    fraction: float
    reference: str
    score: float


@dataclass
class Mixture:
    """The components of one spectrum (largest share first), how much of it they explain, the
    norm of what is left, and whether nothing recognisable was found.
    """

    components: list[Component] = field(default_factory=list)
    explained: float = 0.0
    residual: float = float("nan")
    unknown: bool = False


def cone(references: np.ndarray) -> np.ndarray:
    """``(points, references x shifts)``: a mineral's reference spectra (rows), each at every one
    of :data:`SHIFTS`, as columns; column ``j`` is reference ``j % len(references)``.
    """
    references = np.atleast_2d(np.asarray(references, dtype=np.float64))
    return np.vstack([shifted(references, s) for s in SHIFTS]).T


def in_fit_space(columns: np.ndarray) -> np.ndarray:
    """Spectra as columns (or one spectrum), in :data:`FIT_SPACE`."""
    columns = np.asarray(columns)
    if columns.ndim == 1:
        return FIT_SPACE(columns[None, :])[0].astype(np.float64)
    return FIT_SPACE(columns.T).T.astype(np.float64)


def background_basis(points: int, degree: int = BACKGROUND_DEGREE) -> np.ndarray:
    """``(points, 2 * (degree + 1))``: Legendre polynomials of each degree, with either sign (NNLS
    takes non-negative weights only).
    """
    t = np.linspace(-1, 1, points)
    basis = np.stack([legendre.legval(t, np.eye(degree + 1)[k]) for k in range(degree + 1)], axis=1)
    return np.hstack([basis, -basis])


def forward_path(
    query: np.ndarray,
    cones: dict,
    max_components: int,
    more: Callable[[list], dict] | None = None,
) -> tuple[list, list[float]]:
    """``(minerals, residuals)``: the minerals forward selection adds, in order, and the residual
    norm (in :data:`FIT_SPACE`) before the first and after each. ``cones`` maps each candidate
    mineral to its :func:`cone`; ``more(chosen)``, where given, returns the cones of further
    candidates once ``chosen`` are in (and ``cones`` grows by them).
    """
    target = in_fit_space(query)
    background = first_derivative(background_basis(len(target)).T, FIT_SPACE.window).T
    fitted, bases = {}, {}

    def add(new: dict) -> None:  # one filter over every new cone's columns: a filter per cone cost twice the fit
        new = {m: c for m, c in new.items() if m not in fitted}
        if new:
            spaced = in_fit_space(np.hstack(list(new.values())))
            ends = np.cumsum([c.shape[1] for c in new.values()])
            for (m, c), end in zip(new.items(), ends, strict=True):
                fitted[m] = spaced[:, end - c.shape[1] : end]
                bases[m] = np.linalg.qr(fitted[m])[0]
            cones.update(new)

    add(dict(cones))
    weights, residual = _fit(target, [], background)
    chosen, residuals = [], [residual]
    while len(chosen) < max_components:
        if more is not None and chosen:
            add(more(chosen))
        left = target - np.hstack([*(fitted[m] for m in chosen), background]) @ weights
        open_ = [m for m in fitted if m not in chosen]
        if not open_:
            break
        reach = [np.linalg.norm(bases[m].T @ left) for m in open_]
        trials = [
            (*_fit(target, [fitted[m] for m in (*chosen, open_[i])], background)[::-1], i)
            for i in np.argsort(reach)[::-1][:SCREENED]
        ]
        residual, weights, i = min(trials, key=lambda t: (t[0], t[2]))
        chosen.append(open_[i])
        residuals.append(residual)
    return chosen, residuals


def stop(residuals: list[float], min_gain: float) -> int:
    """How many components the stopping rule keeps: each must lower the residual's norm by more
    than ``min_gain`` of the spectrum's own norm (the first is always kept, so that a spectrum
    has an answer). Measured against the whole spectrum, not what is left, so that fitting the
    last few percent of a spectrum adds no component.
    """
    kept = 1 if len(residuals) > 1 else 0
    while kept + 1 < len(residuals) and residuals[kept] - residuals[kept + 1] > min_gain * residuals[0]:
        kept += 1
    return kept


def named(path: list[int], residuals: list[float], min_gain: float, class_scores: np.ndarray) -> list[int]:
    """The classes a library identifier's mixture names: those of ``path`` the stopping rule
    keeps; where it keeps one, the identifier's own answer (its best class score), so that a
    lone mineral is named as plain ``predict`` names it.
    """
    kept = path[: stop(residuals, min_gain)]
    return [int(np.argmax(class_scores))] if len(kept) == 1 else kept


def shares(query: np.ndarray, cones: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, float, float]:
    """``(fractions, heaviest, explained, residual)``: ``cones`` fitted to the spectrum itself
    with a background; each cone's share of the fitted area, the column that contributes most
    to each, the share of the spectrum's energy explained and the residual norm.
    """
    query = np.asarray(query, dtype=np.float64)
    weights, residual = _fitted(query, cones)
    parts = [w * c.sum(axis=0) for w, c in zip(weights, cones, strict=True)]
    areas = np.clip(np.array([p.sum() for p in parts]), 0, None)
    heaviest = [int(np.argmax(p)) for p in parts]
    total = areas.sum()
    fractions = areas / total if total > 0 else np.full(len(areas), 1 / max(len(areas), 1))
    return fractions, np.array(heaviest, dtype=int), explained_share(query, residual), float(residual)


def unmix(
    query: np.ndarray, cones: dict, max_components: int = 3, min_gain: float = MIN_GAIN, more=None
) -> tuple[list[tuple[object, float]], float, float]:
    """``([(mineral, fraction)], explained, residual norm)`` of one query against candidate
    minerals' cones: :func:`forward_path`, :func:`stop`, then :func:`shares`; no mineral when the
    fit explains less than :data:`MIN_EXPLAINED` of the query.
    """
    path, residuals = forward_path(query, cones, max_components, more)
    kept = path[: stop(residuals, min_gain)]
    fractions, _, explained, residual = shares(query, [cones[m] for m in kept])
    if explained < MIN_EXPLAINED:
        return [], explained, residual
    return list(zip(kept, fractions.tolist(), strict=True)), explained, residual


def explained_share(query: np.ndarray, residual: float) -> float:
    """``1 - |residual|^2 / |query|^2``: the share of the query's energy a fit explains."""
    energy = float(query @ query)
    return 1 - residual**2 / energy if energy > 0 else 0.0


def _fitted(query: np.ndarray, cones: list[np.ndarray]) -> tuple[list[np.ndarray], float]:
    """Each cone's column weights, fitted to the spectrum itself with a background, and the residual norm."""
    weights, residual = _fit(query, cones, background_basis(len(query)))
    ends = np.cumsum([c.shape[1] for c in cones])
    return [weights[end - c.shape[1] : end] for c, end in zip(cones, ends, strict=True)], residual


def _fit(query: np.ndarray, components: list[np.ndarray], background: np.ndarray) -> tuple[np.ndarray, float]:
    """NNLS weights of ``[components, background]`` for ``query``, and the residual norm."""
    design = np.hstack([*components, background])
    weights, residual = nnls(design, query, maxiter=50 * design.shape[1])
    return weights, float(residual)


def min_max(y: np.ndarray) -> np.ndarray:
    """``y`` shifted to a minimum of 0 and scaled to a maximum of 1 (the references' scale)."""
    y = y - y.min()
    return y / max(float(y.max()), 1e-12)


def library_path(
    identifier,
    x: np.ndarray,
    class_scores: np.ndarray,
    similarity: np.ndarray,
    max_components: int,
    excluded: np.ndarray | None = None,
) -> tuple[list[int], list[float], dict[int, np.ndarray]]:
    """``(classes, residuals, rows)``: the forward path of one query of a library identifier
    (``x`` preprocessed as its references): the class of each mineral added, the residuals, and
    the library rows of each candidate's cone. ``excluded`` library rows are never taken.
    """
    library, x = identifier.reference_spectra_, np.asarray(x, dtype=np.float64)
    rows: dict[int, np.ndarray] = {}

    def cones_of(scores: np.ndarray, scored: np.ndarray) -> dict:
        found = {}
        for k in np.argsort(-scores)[:CANDIDATES]:
            own = np.flatnonzero((identifier.reference_class_ == k) & np.isfinite(scored))
            if len(own) and int(k) not in rows:
                rows[int(k)] = own[np.argsort(-scored[own])[:REFERENCES]]
                found[int(k)] = cone(library[rows[int(k)]])
        return found

    def more(chosen: list[int]) -> dict:
        fitted = [cones[k] for k in chosen]
        weights, _ = _fitted(np.asarray(x, dtype=np.float64), fitted)
        left = min_max(x - sum(c @ w for c, w in zip(fitted, weights, strict=True)))
        left_similarity = identifier.similarity(left[None, :].astype(np.float32))[0]
        if excluded is not None:
            left_similarity = np.where(excluded, -np.inf, left_similarity)
        return cones_of(identifier.class_scores(left[None, :], left_similarity[None, :])[0], left_similarity)

    cones = cones_of(class_scores, similarity)
    path, residuals = forward_path(x, cones, max_components, more)
    return path, residuals, rows


def mixtures(
    identifier,
    X: np.ndarray,
    class_scores: np.ndarray,
    similarity: np.ndarray,
    meta,
    max_components: int = 3,
    min_gain: float = MIN_GAIN,
) -> list[Mixture]:
    """The mixture of each query of a library identifier (``X`` preprocessed as its references),
    from its class scores and reference similarities (:meth:`~ramanid.training.saved.SavedModel.scored`);
    ``meta`` is the library's metadata (each component's reference id).
    """
    library = identifier.reference_spectra_
    answers = []
    for i, x in enumerate(X):
        path, residuals, rows = library_path(identifier, x, class_scores[i], similarity[i], max_components)
        kept = named(path, residuals, min_gain, class_scores[i])
        fractions, heaviest, explained, residual = shares(x, [cone(library[rows[k]]) for k in kept])
        if not kept or explained < MIN_EXPLAINED:
            answers.append(Mixture(explained=explained, residual=residual, unknown=True))
            continue
        components = []
        for k, fraction, column in zip(kept, fractions, heaviest, strict=True):
            row = rows[k][column % len(rows[k])]
            components.append(
                Component(
                    mineral=str(identifier.classes_[k]),
                    fraction=float(fraction),
                    reference=str(meta.iloc[row].get("rruff_id", "") or meta.iloc[row].get("file", "")),
                    score=float(class_scores[i][k]),
                )
            )
        components.sort(key=lambda c: -c.fraction)
        answers.append(Mixture(components, explained, residual))
    return answers
