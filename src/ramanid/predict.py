"""Predictions on a user's own spectra from a saved model: ranked answers, elements, nearest
references and an out-of-distribution flag.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ramanid import confidence as conf
from ramanid.bundle import Bundle
from ramanid.chemistry import parse_elements
from ramanid.classical import LibrarySearch
from ramanid.errors import ChemistryError, RamanIdError, SpectrumFormatError
from ramanid.io.rruff import Skipped
from ramanid.preprocessing import make_pipeline
from ramanid.preprocessing.resample import coverage, resample_spectrum
from ramanid.spectra import Spectrum

#: a spectrum must cover at least this share of the model's shift range, with this many points
MIN_COVERAGE = 0.5
MIN_POINTS = 20
#: larger intensities overflow float32 once preprocessed
MAX_INTENSITY = 1e30


@dataclass
class Prediction:
    """The answer for one spectrum.

    ``top`` holds (class, probability) pairs: temperature-scaled probabilities where the model has
    a calibration (scores, for a library identifier without one). ``answer_set`` is the conformal
    set at ``confidence``: with spectra like the validation ones, the true class is in it at
    least that often. ``unknown`` is True when the unknown score (named in the model folder) is
    above the threshold that accepted 95% of the known validation spectra.
    """

    file: str
    top: list[tuple[str, float]] = field(default_factory=list)
    elements: dict[str, dict] = field(default_factory=dict)
    nearest: list[dict] = field(default_factory=list)
    similarity: float = float("nan")
    unknown: bool = False
    unknown_score: float = float("nan")
    answer_set: list[str] = field(default_factory=list)
    confidence: float | None = None


def prepare(bundle: Bundle, spectra: list[Spectrum]) -> tuple[np.ndarray, list[Spectrum], list[Skipped]]:
    """Resample and preprocess spectra exactly as the training data were.

    A spectrum that does not cover the model's range, has too few points, holds values that are
    not finite or beyond float32, or that preprocessing cannot handle, is reported with its file
    and skipped; the others are answered.
    """
    grid, kept, rows, skipped = bundle.shifts, [], [], []
    pipeline = make_pipeline(bundle.info["preprocess"], grid) if bundle.info.get("preprocess") else None
    for s in spectra:
        problem = _unanswerable(s, grid)
        if problem is None:
            row = resample_spectrum(s.shifts, s.intensities, grid, bundle.info.get("method", "linear"))[None, :]
            try:
                row = pipeline.fit_transform(row.astype(np.float32)) if pipeline is not None else row
            except RamanIdError as exc:
                problem = f"preprocessing failed ({exc})"
            else:
                problem = None if np.isfinite(row).all() else "preprocessing gave values that are not finite"
        if problem is not None:
            skipped.append(Skipped(s.source, str(SpectrumFormatError(s.source, problem))))
            continue
        rows.append(row[0])
        kept.append(s)
    return np.asarray(rows, dtype=np.float32).reshape(len(rows), len(grid)), kept, skipped


def _unanswerable(s: Spectrum, grid: np.ndarray) -> str | None:
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


def library_search(bundle: Bundle) -> LibrarySearch:
    labels = bundle.library_meta.get("label", bundle.library_meta.get("mineral"))
    labels = labels if labels is not None else pd.Series(["?"] * len(bundle.library))
    return LibrarySearch("cosine").fit(bundle.library, labels.to_numpy(), meta=bundle.library_meta)


def predict_spectra(bundle: Bundle, spectra: list[Spectrum], top: int = 5, nearest: int = 3, confidence: float = 0.95):
    """Predictions for spectra read from files, and the spectra that could not be answered.

    ``confidence`` is the coverage of the conformal answer sets.
    """
    X, kept, skipped = prepare(bundle, spectra)
    if not len(X):
        return [], skipped
    if bundle.identifier is not None:
        return identify(bundle, X, kept, top, nearest, confidence), skipped
    hits = library_search(bundle).search(X, k=max(nearest, 1))
    best = np.array([hit["similarity"].iloc[0] for hit in hits])  # hits are ranked, best first
    estimator = bundle.estimator
    elements = bundle.info["task"]["kind"] == "elements"
    if elements:
        proba, logits = _scored(estimator, X), None
        unknown = conf.unknown_candidates(np.zeros((len(X), 1)), best)[bundle.info["ood"]["score"]]
    else:
        logits = _scored(estimator, X, logits=True)
        embeddings = estimator.transform(X) if bundle.library_embeddings is not None else None
        candidates = conf.unknown_candidates(logits, best, embeddings, bundle.library_embeddings, bundle.labels)
        unknown = candidates[bundle.info["ood"]["score"]]
        proba, sets = _calibrated_answers(bundle, logits, confidence)
    results = []
    for i, s in enumerate(kept):
        p = Prediction(
            s.source,
            similarity=float(best[i]),
            unknown_score=float(unknown[i]),
            unknown=bool(unknown[i] > bundle.info["ood"]["threshold"]),
        )
        if elements:
            p.elements = {
                e: {"probability": float(proba[i, j]), "present": bool(proba[i, j] >= estimator.thresholds_[j])}
                for j, e in enumerate(estimator.elements_)
            }
        else:
            order = np.argsort(-proba[i])[:top]
            p.top = [(str(estimator.classes_[j]), float(proba[i, j])) for j in order]
            if sets is not None:
                p.answer_set, p.confidence = [str(estimator.classes_[j]) for j in sets[i]], confidence
        p.nearest = hits[i].head(nearest).drop(columns=["library_index"]).to_dict("records")
        results.append(p)
    return results, skipped


def _scored(estimator, X: np.ndarray, logits: bool = False) -> np.ndarray:
    """Probabilities (or logits); a transductive model scores each spectrum on its own, as a user
    meets it, with a warning.
    """
    score = estimator.logits if logits else estimator.predict_proba
    if not estimator.spec_.transductive:
        return score(X)
    warnings.warn(
        f"{estimator.model} is transductive: each spectrum is scored on its own, which is less "
        "accurate than the batch figures of its cross-validation",
        UserWarning,
        stacklevel=3,
    )
    return np.vstack([score(X[i : i + 1]) for i in range(len(X))])


def _calibrated_answers(bundle: Bundle, logits: np.ndarray, confidence: float):
    """Temperature-scaled probabilities and conformal answer sets (None without a calibration)."""
    calibration = bundle.info.get("calibration")
    if not calibration:
        return conf.calibrated(logits, 1.0), None
    proba = conf.calibrated(logits, calibration["temperature"])
    threshold = conf.conformal_quantile(calibration["conformal_scores"], confidence)
    return proba, conf.answer_sets(proba, threshold)


def identify(
    bundle: Bundle, X: np.ndarray, kept: list[Spectrum], top: int, nearest: int, confidence: float
) -> list[Prediction]:
    """Answers of a library identifier: minerals ranked by their best reference's score, with
    probabilities from the temperature-scaled scores, the conformal answer set, the nearest
    references, and the elements of the top minerals' formulas, each weighted by the
    probabilities of the top minerals that contain it.
    """
    identifier = bundle.identifier
    similarity = identifier.similarity(X)
    scores = identifier._best_per_class(similarity, identifier.reference_class_)
    proba, sets = _calibrated_answers(bundle, scores, confidence)
    results = []
    for i, s in enumerate(kept):
        order = np.argsort(-scores[i])[:top]
        best = float(scores[i, order[0]])
        p = Prediction(
            s.source, similarity=best, unknown_score=1 - best, unknown=bool(1 - best > bundle.info["ood"]["threshold"])
        )
        p.top = [(str(identifier.classes_[j]), float(proba[i, j])) for j in order]
        if sets is not None:
            p.answer_set, p.confidence = [str(identifier.classes_[j]) for j in sets[i]], confidence
        p.elements = _elements_of(p.top, bundle.formulas)
        nearest_refs = np.argsort(-similarity[i], kind="stable")[:nearest]
        p.nearest = [
            {
                "label": str(identifier.labels_[j]),
                "similarity": float(similarity[i, j]),
                **{k: v for k, v in bundle.library_meta.iloc[j].items() if k in ("mineral", "rruff_id", "file")},
            }
            for j in nearest_refs
        ]
        results.append(p)
    return results


def _elements_of(top: list[tuple[str, float]], formulas: dict[str, str]) -> dict[str, dict]:
    """Each element of the listed minerals' formulas with the share of their scores that contain it."""
    total = sum(max(score, 0.0) for _, score in top) or 1.0
    weight: dict[str, float] = {}
    for name, score in top:
        try:
            elements = parse_elements(formulas.get(name, ""))
        except ChemistryError:
            continue
        for element in elements:
            weight[element] = weight.get(element, 0.0) + max(score, 0.0) / total
    return {
        e: {"probability": round(w, 4), "present": w >= 0.5} for e, w in sorted(weight.items(), key=lambda x: -x[1])
    }


def as_table(predictions: list[Prediction]) -> pd.DataFrame:
    """One row per spectrum, for the table and CSV outputs."""
    rows = []
    for p in predictions:
        row = {"file": p.file, "unknown": p.unknown, "similarity": round(p.similarity, 4)}
        for k, (name, prob) in enumerate(p.top, 1):
            row[f"top{k}"] = name
            row[f"p{k}"] = round(prob, 4)
        if p.confidence is not None:
            shown = p.answer_set if len(p.answer_set) <= 5 else [*p.answer_set[:5], f"... ({len(p.answer_set)})"]
            row[f"set{p.confidence:.0%}"] = "{" + ", ".join(shown) + "}"
        for element, d in p.elements.items():
            row[element] = round(d["probability"], 4)
            row[f"{element}_present"] = d["present"]
        for k, hit in enumerate(p.nearest, 1):
            row[f"nearest{k}"] = f"{hit.get('mineral', hit.get('label'))} {hit.get('rruff_id', '')}".strip()
        rows.append(row)
    return pd.DataFrame(rows)
