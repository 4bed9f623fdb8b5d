"""Predictions on a user's own spectra from a saved model: ranked answers, elements, nearest
references and an out-of-distribution flag."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ramanid.bundle import Bundle
from ramanid.classical import LibrarySearch
from ramanid.errors import SpectrumFormatError
from ramanid.io.rruff import Skipped
from ramanid.preprocessing import make_pipeline
from ramanid.preprocessing.resample import coverage, resample_spectrum
from ramanid.spectra import Spectrum

#: a spectrum must cover at least this share of the model's shift range, with this many points
MIN_COVERAGE = 0.5
MIN_POINTS = 20


@dataclass
class Prediction:
    """The answer for one spectrum."""

    file: str
    top: list[tuple[str, float]] = field(default_factory=list)
    elements: dict[str, dict] = field(default_factory=dict)
    nearest: list[dict] = field(default_factory=list)
    similarity: float = float("nan")
    unknown: bool = False


def prepare(bundle: Bundle, spectra: list[Spectrum]) -> tuple[np.ndarray, list[Spectrum], list[Skipped]]:
    """Resample and preprocess spectra exactly as the training data were; refuse those that do not
    cover the model's range or have too few points."""
    grid, kept, rows, skipped = bundle.shifts, [], [], []
    for s in spectra:
        share = coverage(s.shifts, grid)
        inside = int(np.sum((s.shifts >= grid[0]) & (s.shifts <= grid[-1])))
        if share < MIN_COVERAGE or inside < MIN_POINTS:
            skipped.append(Skipped(s.source, str(SpectrumFormatError(
                s.source, f"covers {share:.0%} of the model's range {grid[0]:.0f}-{grid[-1]:.0f} cm-1 with {inside} "
                f"points; at least {MIN_COVERAGE:.0%} and {MIN_POINTS} points are needed for an answer"))))
            continue
        rows.append(resample_spectrum(s.shifts, s.intensities, grid, bundle.info.get("method", "linear")))
        kept.append(s)
    if not rows:
        return np.zeros((0, len(grid)), np.float32), kept, skipped
    X = np.asarray(rows, dtype=np.float32)
    spec = bundle.info.get("preprocess")
    if spec:
        X = make_pipeline(spec, grid).fit_transform(X)
    return X.astype(np.float32), kept, skipped


def library_search(bundle: Bundle) -> LibrarySearch:
    labels = bundle.library_meta.get("label", bundle.library_meta.get("mineral"))
    labels = labels if labels is not None else pd.Series(["?"] * len(bundle.library))
    return LibrarySearch("cosine").fit(bundle.library, labels.to_numpy(), meta=bundle.library_meta)


def predict_spectra(bundle: Bundle, spectra: list[Spectrum], top: int = 5, nearest: int = 3):
    """Predictions for spectra read from files, and the spectra that could not be answered."""
    X, kept, skipped = prepare(bundle, spectra)
    if not len(X):
        return [], skipped
    hits = library_search(bundle).search(X, k=max(nearest, 1))
    best = np.array([hit["similarity"].iloc[0] for hit in hits])  # hits are ranked, best first
    threshold = bundle.info["ood"]["threshold"]
    estimator = bundle.estimator
    proba = estimator.predict_proba(X)
    confidence = bundle.info["ood"].get("confidence")
    results = []
    for i, s in enumerate(kept):
        unlike = best[i] < threshold
        unsure = confidence is not None and proba[i].max() < confidence
        p = Prediction(s.source, similarity=float(best[i]), unknown=bool(unlike or unsure))
        if bundle.info["task"]["kind"] == "elements":
            p.elements = {e: {"probability": float(proba[i, j]), "present": bool(proba[i, j] >= estimator.thresholds_[j])}
                          for j, e in enumerate(estimator.elements_)}
        else:
            order = np.argsort(-proba[i])[:top]
            p.top = [(str(estimator.classes_[j]), float(proba[i, j])) for j in order]
        p.nearest = hits[i].head(nearest).drop(columns=["library_index"]).to_dict("records")
        results.append(p)
    return results, skipped


def as_table(predictions: list[Prediction]) -> pd.DataFrame:
    """One row per spectrum, for the table and CSV outputs."""
    rows = []
    for p in predictions:
        row = {"file": p.file, "unknown": p.unknown, "similarity": round(p.similarity, 4)}
        for k, (name, prob) in enumerate(p.top, 1):
            row[f"top{k}"] = name
            row[f"p{k}"] = round(prob, 4)
        for element, d in p.elements.items():
            row[element] = round(d["probability"], 4)
            row[f"{element}_present"] = d["present"]
        for k, hit in enumerate(p.nearest, 1):
            row[f"nearest{k}"] = f"{hit.get('mineral', hit.get('label'))} {hit.get('rruff_id', '')}".strip()
        rows.append(row)
    return pd.DataFrame(rows)
