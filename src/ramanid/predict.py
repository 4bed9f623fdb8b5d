"""Predictions on a user's own spectra from a saved model: ranked answers, elements, nearest
references, the conformal answer set and the unknown flag, asked the same way of every kind of
model (:mod:`ramanid.training.saved`).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from ramanid import confidence as conf
from ramanid.bundle import Bundle
from ramanid.chemistry import parse_elements
from ramanid.errors import ChemistryError
from ramanid.jsonable import json_ready
from ramanid.spectra import Spectrum

#: the library columns a nearest reference carries besides its label and similarity
REFERENCE_COLUMNS = ("mineral", "rruff_id", "file", "chemistry")


@dataclass
class Prediction:
    """The answer for one spectrum.

    ``top`` holds (class, probability) pairs: the model's class scores, temperature-scaled on
    held-out spectra (Guo et al. 2017). ``elements`` holds each element's probability and
    whether it is present: an element model's own, or, for a class model whose library has
    formulas, the share of the top classes' probabilities whose formula contains it.
    ``answer_set`` is the conformal set at ``confidence``: with spectra like the validation ones,
    the true class is in it at least that often. ``unknown`` is True when the unknown score
    (named in the model folder) is above the threshold that accepted 95% of the known
    validation spectra. ``nearest`` lists the most similar references of the library.
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

    def as_json(self) -> dict:
        """The prediction as strict JSON values (NaN as null): what ``--format json`` and the API give."""
        return json_ready(asdict(self))


def predict_spectra(bundle: Bundle, spectra: list[Spectrum], top: int = 5, nearest: int = 3, confidence: float = 0.95):
    """Predictions for spectra read from files, and the spectra that could not be answered.

    ``confidence`` is the coverage of the conformal answer sets.
    """
    X, kept, skipped = bundle.prepare(spectra)
    return predict_prepared(bundle, X, [s.source for s in kept], top, nearest, confidence), skipped


def predict_prepared(
    bundle: Bundle, X: np.ndarray, sources: list[str], top: int = 5, nearest: int = 3, confidence: float = 0.95
) -> list[Prediction]:
    """Predictions for spectra already prepared as the model's inputs (:meth:`Bundle.prepare`)."""
    if not len(X):
        return []
    model, info = bundle.estimator, bundle.info
    scores, similarity = scores_as_met(model, X)
    unknown = conf.unknown_score(info.ood.score, model.unknown_evidence(X, scores, similarity))
    flagged = info.ood.flags(unknown)
    names = model.output_names
    if model.kind == "label":
        proba = info.calibration.probabilities(scores)
        sets = info.calibration.answer_sets(proba, confidence)
    results = []
    for i, source in enumerate(sources):
        p = Prediction(
            source, similarity=float(similarity[i].max()), unknown=bool(flagged[i]), unknown_score=float(unknown[i])
        )
        if model.kind == "elements":
            p.elements = {
                e: {"probability": float(scores[i, j]), "present": bool(scores[i, j] >= model.thresholds_[j])}
                for j, e in enumerate(names)
            }
        else:
            p.top = [(names[j], float(proba[i, j])) for j in np.argsort(-scores[i], kind="stable")[:top]]
            if sets is not None:
                p.answer_set, p.confidence = [names[j] for j in sets[i]], confidence
            p.elements = elements_of(p.top, bundle.references.formulas)
        p.nearest = [
            nearest_reference(bundle, j, similarity[i, j]) for j in np.argsort(-similarity[i], kind="stable")[:nearest]
        ]
        results.append(p)
    return results


def scores_as_met(model, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The model's decision scores and reference similarities; a transductive model scores each
    spectrum on its own, as a user meets it, with a warning.
    """
    if not model.transductive:
        return model.scores_and_similarity(X)
    warnings.warn(
        f"{model.model} is transductive: each spectrum is scored on its own, which is less "
        "accurate than the batch figures of its cross-validation",
        UserWarning,
        stacklevel=3,
    )
    scores = np.vstack([model.decision_scores(X[i : i + 1]) for i in range(len(X))])
    return scores, model.reference_similarity(X)


def nearest_reference(bundle: Bundle, index: int, similarity: float) -> dict:
    """Reference ``index`` of the library as a nearest match: label, similarity, position, metadata."""
    row = bundle.library_meta.iloc[int(index)]
    return {
        "label": str(bundle.labels[index]),
        "similarity": float(similarity),
        "library_index": int(index),
        **{k: str(row[k]) for k in REFERENCE_COLUMNS if k in row.index},
    }


def elements_of(top: list[tuple[str, float]], formulas: dict[str, str]) -> dict[str, dict]:
    """Each element of the listed classes' formulas with the share of their probabilities whose
    formula contains it (present at a share of one half or more); empty without formulas.
    """
    total = sum(max(score, 0.0) for _, score in top) or 1.0
    weight: dict[str, float] = {}
    for name, score in top:
        try:
            elements = parse_elements(formulas[name]) if name in formulas else ()
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
