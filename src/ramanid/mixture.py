"""Mixtures: every mineral in the spectrum of a rock, with its share of the signal.

The method, for a library identifier's query (preprocessed as the references are):

1. **The first component** is the identifier's best mineral, with the reference of it that fits
   best: its ranking names a lone mineral more often than a least-squares fit does.
2. **Greedy forward selection with non-negative least squares** (Lawson & Hanson 1974,
   :func:`scipy.optimize.nnls`): each step adds the candidate reference that lowers the
   residual most, as long as it lowers the residual's norm by more than ``min_gain`` of the
   spectrum's norm (the stopping rule; a library identifier's folder stores the one chosen on its
   validation mixtures) and ``max_components`` is not reached. Candidates are the
   ``CANDIDATES`` best-ranked minerals, ``REFERENCES`` spectra each, of the query and of what the
   fit so far leaves (identified again, as residual subtraction does: a minor mineral is often
   not among the query's own best). A smooth background (Legendre polynomials, either sign) is
   fitted with the components, for what baseline removal left. The fit is made on the spectra
   or on their first derivatives (chosen on the validation mixtures too).
3. A mineral is one component: of a mineral's references only the one that fits best is kept,
   and a mineral similar to one already in (of its series, say) is added only when the fit needs
   it, since it lowers the residual by little once the other is there.
4. A fit that explains less than ``MIN_EXPLAINED`` of the spectrum has nothing recognisable:
   no component, ``unknown``.

``fraction`` is each component's share of the fitted signal (the area of its scaled reference,
on the model's min-max scale): not a volume or weight fraction, which would need each mineral's
Raman cross-section. ``explained`` is the share of the spectrum's energy the fit explains,
``1 - |residual|^2 / |spectrum|^2``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.polynomial import legendre
from scipy.optimize import nnls
from scipy.signal import savgol_filter

#: the default stopping rule, where a model folder stores none: a new component must lower the
#: residual's norm by this share of the spectrum's norm
MIN_GAIN = 0.05
#: ranked minerals considered, and references of each
CANDIDATES, REFERENCES = 20, 2
#: the background's Legendre degree
BACKGROUND_DEGREE = 3
#: a spectrum whose fit explains less than this share of its energy has nothing recognisable
MIN_EXPLAINED = 0.5
#: the spaces a mixture may be fitted in: the spectra, or their Savitzky-Golay first derivatives
#: (a linear map, so a mixture's derivative is the mixture of its components' derivatives, and
#: one that weighs band positions over the broad shapes baseline removal leaves)
REPRESENTATIONS = ("intensity", "derivative")
#: the derivative's window (points)
DERIVATIVE_WINDOW = 15


@dataclass
class Component:
    """One mineral of a mixture: its share of the fitted signal, the reference that fitted, and
    the identifier's score for the mineral.
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


def represent(Y: np.ndarray, representation: str) -> np.ndarray:
    """Rows of ``Y`` in ``representation`` (one of :data:`REPRESENTATIONS`)."""
    if representation == "intensity":
        return np.asarray(Y, dtype=np.float64)
    if representation == "derivative":
        return savgol_filter(np.asarray(Y, dtype=np.float64), DERIVATIVE_WINDOW, 2, deriv=1, axis=-1)
    raise ValueError(f"representation {representation!r}: expected one of {REPRESENTATIONS}")


def background_basis(points: int, degree: int = BACKGROUND_DEGREE) -> np.ndarray:
    """``(points, 2 * (degree + 1))``: Legendre polynomials of each degree, with either sign (NNLS
    takes non-negative weights only).
    """
    t = np.linspace(-1, 1, points)
    basis = np.stack([legendre.legval(t, np.eye(degree + 1)[k]) for k in range(degree + 1)], axis=1)
    return np.hstack([basis, -basis])


def represented_background(points: int, representation: str) -> np.ndarray:
    """:func:`background_basis` in ``representation``, as columns."""
    return represent(background_basis(points).T, representation).T


def forward_path(
    query: np.ndarray, references: np.ndarray, groups: np.ndarray, max_components: int, background: np.ndarray
) -> tuple[list[int], list[float]]:
    """``(rows, residuals)``: the reference rows forward selection adds, in order, and the
    residual norm before the first and after each (one row of a group at most).
    """
    chosen: list[int] = []
    residuals = [_fit(query, references[[]].T, background)[1]]
    while len(chosen) < max_components:
        best = _best_addition(query, references, groups, chosen, background)
        if best is None:
            break
        chosen.append(best[0])
        residuals.append(best[1])
    return chosen, residuals


def library_path(
    identifier,
    x: np.ndarray,
    class_scores: np.ndarray,
    similarity: np.ndarray,
    max_components: int,
    representation: str = "intensity",
    excluded: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, list[int], list[float]]:
    """``(library rows, their spectra in representation, path, residuals)``: the forward path of
    one query of a library identifier (``x`` preprocessed as its references; ``path`` indexes
    ``library rows``).

    The identifier's best mineral comes first, with the reference of it that fits best: its
    ranking names a lone mineral more often than a least-squares fit does. Each later step adds
    the candidate that lowers the residual most, the candidates being the best-ranked minerals of
    the query and of what the fit so far leaves, identified again as residual subtraction does
    (a minor mineral is often not among the query's own best). ``excluded`` library rows are never
    taken.
    """
    library, labels = identifier.reference_spectra_, identifier.labels_
    background = represented_background(len(x), representation)
    query = represent(np.asarray(x, dtype=np.float64), representation)
    rows = candidate_rows(identifier, class_scores, similarity)
    references = represent(library[rows], representation)
    residuals = [_fit(query, references[[]].T, background)[1]]
    top = identifier.classes_[int(np.argmax(class_scores))]
    first = _best_addition(query, references, np.where(labels[rows] == top, 0, -1), [], background, group=0)
    if first is None:
        return rows, references, [], residuals
    chosen = [first[0]]
    residuals.append(first[1])
    while len(chosen) < max_components:
        weights, _ = _fit(query, references[chosen].T, background)
        left = min_max(np.asarray(x, dtype=np.float64) - weights[: len(chosen)] @ library[rows[chosen]])
        left_similarity = identifier.similarity(left[None, :].astype(np.float32))[0]
        if excluded is not None:
            left_similarity = np.where(excluded, -np.inf, left_similarity)
        left_scores = identifier.class_scores(left[None, :], left_similarity[None, :])[0]
        more = np.setdiff1d(candidate_rows(identifier, left_scores, left_similarity), rows)
        if more.size:
            rows = np.concatenate([rows, more])
            references = np.vstack([references, represent(library[more], representation)])
        best = _best_addition(query, references, labels[rows], chosen, background)
        if best is None:
            break
        chosen.append(best[0])
        residuals.append(best[1])
    return rows, references, chosen, residuals


def min_max(y: np.ndarray) -> np.ndarray:
    """``y`` shifted to a minimum of 0 and scaled to a maximum of 1 (the references' scale)."""
    y = y - y.min()
    return y / max(float(y.max()), 1e-12)


def _best_addition(query, references, groups, chosen, background, group=None) -> tuple[int, float] | None:
    """``(row, residual)`` of the row whose addition to ``chosen`` lowers the residual most: a
    row of a group not yet in, or of ``group`` alone where one is given.
    """
    taken = {groups[c] for c in chosen}
    best = None
    for j in range(len(references)):
        if j in chosen or groups[j] in taken or (group is not None and groups[j] != group):
            continue
        left = _fit(query, references[[*chosen, j]].T, background)[1]
        if best is None or left < best[1]:
            best = (j, left)
    return best


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


def unmix(
    query: np.ndarray,
    references: np.ndarray,
    groups: np.ndarray,
    max_components: int = 3,
    min_gain: float = MIN_GAIN,
    background: np.ndarray | None = None,
) -> tuple[list[tuple[int, float]], float, float]:
    """``([(reference row, weight)], explained, residual norm)`` of one query against candidate
    spectra (``references``, rows; ``groups`` the mineral of each): :func:`forward_path`, then
    :func:`settle`.
    """
    query = np.asarray(query, dtype=np.float64)
    background = background_basis(len(query)) if background is None else background
    path, residuals = forward_path(query, references, groups, max_components, background)
    return settle(query, references, path, residuals, min_gain, background)


def settle(
    query: np.ndarray, references: np.ndarray, path: list[int], residuals: list[float], min_gain: float, background
) -> tuple[list[tuple[int, float]], float, float]:
    """``([(reference row, weight)], explained, residual norm)``: the rows of ``path`` that
    :func:`stop` keeps, fitted; none when they explain less than :data:`MIN_EXPLAINED` of the
    query (nothing recognisable).
    """
    chosen = path[: stop(residuals, min_gain)]
    weights, residual = _fit(query, references[chosen].T, background)
    explained = explained_share(query, residual)
    if explained < MIN_EXPLAINED:
        chosen = []
    return list(zip(chosen, weights[: len(chosen)].tolist(), strict=True)), explained, float(residual)


def explained_share(query: np.ndarray, residual: float) -> float:
    """``1 - |residual|^2 / |query|^2``: the share of the query's energy a fit explains."""
    energy = float(query @ query)
    return 1 - residual**2 / energy if energy > 0 else 0.0


def _fit(query: np.ndarray, components: np.ndarray, background: np.ndarray) -> tuple[np.ndarray, float]:
    """NNLS weights of ``[components, background]`` for ``query``, and the residual norm."""
    design = np.hstack([components, background]) if components.size else background
    weights, residual = nnls(design, query, maxiter=50 * design.shape[1])
    return weights, float(residual)


def mixtures(
    identifier,
    X: np.ndarray,
    class_scores: np.ndarray,
    similarity: np.ndarray,
    meta,
    max_components: int = 3,
    min_gain: float = MIN_GAIN,
    representation: str = "intensity",
) -> list[Mixture]:
    """The mixture of each query of a library identifier (``X`` preprocessed as its references),
    from its class scores and reference similarities (:meth:`scores_and_similarity`);
    ``meta`` is the library's metadata (each component's reference id). The fit is made in
    ``representation``; the shares are of the spectra themselves.
    """
    labels, library = identifier.labels_, identifier.reference_spectra_
    background = represented_background(X.shape[1], representation)
    answers = []
    for i, x in enumerate(X):
        rows, candidates, path, residuals = library_path(
            identifier, x, class_scores[i], similarity[i], max_components, representation
        )
        query = represent(np.asarray(x, dtype=np.float64), representation)
        fit, explained, residual = settle(query, candidates, path, residuals, min_gain, background)
        if not fit:
            answers.append(Mixture(explained=explained, residual=residual, unknown=True))
            continue
        areas = np.array([w * library[rows[j]].sum() for j, w in fit])
        total = areas.sum() if areas.sum() > 0 else 1.0
        score = dict(zip(identifier.classes_, class_scores[i], strict=True))
        components = [
            Component(
                mineral=str(labels[rows[j]]),
                fraction=float(area / total),
                reference=str(meta.iloc[rows[j]].get("rruff_id", "") or meta.iloc[rows[j]].get("file", "")),
                score=float(score[labels[rows[j]]]),
            )
            for (j, _), area in zip(fit, areas, strict=True)
        ]
        components.sort(key=lambda c: -c.fraction)
        answers.append(Mixture(components, explained, residual))
    return answers


def candidate_rows(identifier, class_scores: np.ndarray, similarity: np.ndarray) -> np.ndarray:
    """The library rows one query's mixture is fitted from: the :data:`REFERENCES` most similar
    references of each of its :data:`CANDIDATES` best-scoring minerals (rows whose similarity is
    -inf, left out by the caller, are never taken).
    """
    rows = []
    for k in np.argsort(-class_scores)[:CANDIDATES]:
        own = np.flatnonzero((identifier.reference_class_ == k) & np.isfinite(similarity))
        rows += own[np.argsort(-similarity[own])[:REFERENCES]].tolist()
    return np.array(rows, dtype=int) if rows else np.zeros(0, dtype=int)
