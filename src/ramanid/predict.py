"""Predictions on a user's own spectra from a saved model: ranked answers, elements, nearest
references, the conformal answer set and the unknown flag, asked the same way of every kind of
model (:mod:`ramanid.training.saved`).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from ramanid import confidence as conf
from ramanid.bundle import Bundle
from ramanid.chemistry import readable_elements
from ramanid.errors import RamanIdError
from ramanid.jsonable import json_ready
from ramanid.spectra import Spectrum
from ramanid.training.saved import Scored

#: the library columns a nearest reference carries besides its label and similarity
REFERENCE_COLUMNS = ("mineral", "rruff_id", "file", "chemistry")
#: the most minerals ``--mixture`` names in one spectrum
MAX_COMPONENTS = 5


@dataclass
class Prediction:
    """The answer for one spectrum.

    ``top`` holds (class, probability) pairs: the model's class scores, temperature-scaled on
    held-out spectra (Guo et al. 2017). ``elements`` holds each element's probability and
    whether it is present: an element model's own (for a class model, the one its folder holds
    in ``elements/``, with ``formula_shares`` beside), or, for a class model whose library has
    formulas, the share of the top classes' probabilities whose formula contains it.
    ``answer_set`` is the conformal set at ``confidence``: with spectra like the validation ones,
    the true class is in it at least that often. ``unknown`` is True when the unknown score
    (named in the model folder) is above the threshold that accepted 95% of the known
    validation spectra. ``nearest`` lists the most similar references of the library.
    ``quality`` is the spectrum's :class:`~ramanid.quality.Quality` estimate (signal-to-noise
    ratio, background share, coverage of the model's range, the shift ``filter_edge_cm1`` it was
    read from where an edge filter's cut under a background was found below it
    (:mod:`ramanid.preprocessing.edge`), and ``poor`` when it is too poor for a confident answer).
    With ``--mixture``, ``components`` lists each mineral of the spectrum
    (``mineral``, ``fraction`` of the fitted signal, ``reference``, ``score``), largest first,
    ``explained`` the share of the spectrum they explain and ``residual`` what is left
    (:mod:`ramanid.mixture`); a spectrum with nothing recognisable has none and is ``unknown``.
    ``offset_cm1`` is the calibration offset a library identifier estimated and scored the
    spectrum moved back by: how far its bands sit from its best references' (positive: higher),
    0 where no move raised its best match enough, None where none was estimated (other models,
    and spectra too noisy for an estimate).
    """

    file: str
    top: list[tuple[str, float]] = field(default_factory=list)
    elements: dict[str, dict] = field(default_factory=dict)
    formula_shares: dict[str, float] | None = None
    nearest: list[dict] = field(default_factory=list)
    similarity: float = float("nan")
    unknown: bool = False
    unknown_score: float = float("nan")
    answer_set: list[str] = field(default_factory=list)
    confidence: float | None = None
    quality: dict | None = None
    components: list[dict] | None = None
    explained: float | None = None
    residual: float | None = None
    offset_cm1: float | None = None

    def as_json(self) -> dict:
        """The prediction as strict JSON values (NaN as null): what ``--format json`` and the API give."""
        return json_ready(asdict(self))


def predict_spectra(
    bundle: Bundle,
    spectra: list[Spectrum],
    top: int = 5,
    nearest: int = 3,
    confidence: float = 0.95,
    mixture: int | None = None,
):
    """Predictions for spectra read from files, and the spectra that could not be answered.

    ``confidence`` is the coverage of the conformal answer sets; ``mixture`` the most minerals
    to name in each spectrum (:func:`predict_prepared`).
    """
    inputs = bundle.prepare(spectra)
    sources = [s.source for s in inputs.kept]
    answers = predict_prepared(bundle, inputs.X, sources, top, nearest, confidence, inputs.quality, mixture)
    return answers, inputs.skipped


def predict_prepared(
    bundle: Bundle,
    X: np.ndarray,
    sources: list[str],
    top: int = 5,
    nearest: int = 3,
    confidence: float = 0.95,
    quality: list | None = None,
    mixture: int | None = None,
) -> list[Prediction]:
    """Predictions for spectra already prepared as the model's inputs (:meth:`Bundle.prepare`),
    with their quality estimates where known; ``mixture`` (1-5) names up to that many minerals
    in each spectrum (library identifiers only).
    """
    if not len(X):
        return []
    model = bundle.estimator
    a = answer_arrays(bundle, X, confidence, mixture, quality)
    scores, similarity, proba, sets, names = a.scores, a.similarity, a.proba, a.sets, model.output_names
    companion = bundle.elements
    if companion is not None:
        companion_names = companion.estimator.output_names
        companion_scores = scores_as_met(companion.estimator, element_inputs(companion, X, quality)).scores
        companion_thresholds = element_thresholds(companion, X, quality)
    thresholds = element_thresholds(bundle, X, quality) if model.kind == "elements" else None
    results = []
    for i, source in enumerate(sources):
        p = Prediction(
            source, similarity=float(similarity[i].max()), unknown=bool(a.flagged[i]), unknown_score=float(a.unknown[i])
        )
        if quality is not None:
            p.quality = quality[i].as_dict()
        if a.offsets is not None and np.isfinite(a.offsets[i]):
            p.offset_cm1 = round(float(a.offsets[i]), 2)
        if model.kind == "elements":
            p.elements = element_answer(names, scores[i], thresholds[i])
        else:
            p.top = [(names[j], float(proba[i, j])) for j in np.argsort(-scores[i], kind="stable")[:top]]
            if sets is not None:
                p.answer_set, p.confidence = [names[j] for j in sets[i]], confidence
            p.elements = elements_of(p.top, bundle.references.formulas)
            if companion is not None:
                p.formula_shares = {e: d["probability"] for e, d in p.elements.items()}
                p.elements = element_answer(companion_names, companion_scores[i], companion_thresholds[i])
        p.nearest = [
            nearest_reference(bundle, j, similarity[i, j]) for j in np.argsort(-similarity[i], kind="stable")[:nearest]
        ]
        if a.mixtures is not None:
            mixed = a.mixtures[i]
            p.components = [asdict(c) for c in mixed.components]
            p.explained, p.residual = round(mixed.explained, 4), round(mixed.residual, 4)
            p.unknown = p.unknown or mixed.unknown
        results.append(p)
    return results


class Answers(NamedTuple):
    """A batch's answers as arrays, before they are turned into :class:`Prediction` objects (a
    map keeps them as arrays): the decision scores and reference similarities, the unknown
    scores and flags, and for class models the calibrated probabilities and answer sets; the
    mixtures where asked; the calibration offsets in cm-1 where the model estimates them (NaN
    for an input it estimated none for).
    """

    scores: np.ndarray
    similarity: np.ndarray
    unknown: np.ndarray
    flagged: np.ndarray
    proba: np.ndarray | None
    sets: list | None
    mixtures: list | None
    offsets: np.ndarray | None = None


def answer_arrays(
    bundle: Bundle,
    X: np.ndarray,
    confidence: float | None = 0.95,
    mixture: int | None = None,
    quality: list | None = None,
) -> Answers:
    """The model's answers for inputs ``X`` (:meth:`Bundle.prepare`), scored by each input's
    signal-to-noise bin where the model was (:meth:`~ramanid.training.saved.SavedModel.quality_bins`)
    and calibrated by that bin and, from ``quality`` (the inputs' estimates), whether its
    background is strong (:meth:`~ramanid.bundle.header.ModelInfo.calibration_keys`); no answer
    sets where ``confidence`` is None.
    """
    model, info = bundle.estimator, bundle.info
    bins = model.quality_bins(X)
    keys = info.calibration_keys(bins, quality)
    inputs = element_inputs(bundle, X, quality) if model.kind == "elements" else X
    scores, similarity, offsets = scores_as_met(model, inputs, bins)
    unknown = conf.unknown_score(info.ood.score, model.unknown_evidence(X, scores, similarity))
    flagged = info.ood.flags(unknown, keys)
    mixed = _mixtures(bundle, X, scores, similarity, mixture) if mixture else None
    proba = sets = None
    if model.kind == "label":
        proba = info.calibration.probabilities(scores, keys)
        sets = info.calibration.answer_sets(proba, confidence, keys) if confidence is not None else None
    if offsets is not None:
        offsets = offsets * np.float32(np.mean(np.diff(bundle.shifts)))
    return Answers(scores, similarity, unknown, flagged, proba, sets, mixed, offsets)


def _mixtures(bundle: Bundle, X, scores, similarity, max_components: int):
    """Each spectrum's mixture (:func:`ramanid.mixture.mixtures`), with the model's stopping rule."""
    from ramanid.mixture import MIN_GAIN, mixtures

    if not 1 <= max_components <= MAX_COMPONENTS:
        raise RamanIdError(f"--max-components {max_components}: expected 1 to {MAX_COMPONENTS}")
    if not bundle.estimator.answers_from_references:
        raise RamanIdError(
            f"--mixture needs a library identifier ('ramanid library build'): {bundle.path} holds a "
            f"{bundle.info.estimator}, whose classes are not reference spectra to unmix"
        )
    gain = bundle.info.mixture_min_gain if bundle.info.mixture_min_gain is not None else MIN_GAIN
    return mixtures(bundle.estimator, X, scores, similarity, bundle.library_meta, max_components, gain)


def scores_as_met(model, X: np.ndarray, bins: np.ndarray | None = None) -> Scored:
    """The model's decision scores and reference similarities, and its offsets where it estimates
    them (:meth:`~ramanid.training.saved.SavedModel.scored`; ``bins``: the inputs' quality bins,
    where known); a transductive model scores each spectrum on its own, as a user meets it, with a
    warning.
    """
    if not model.transductive:
        return model.scored(X, bins)
    warnings.warn(
        f"{model.model} is transductive: each spectrum is scored on its own, which is less "
        "accurate than the batch figures of its cross-validation",
        UserWarning,
        stacklevel=3,
    )
    scores = np.vstack([model.decision_scores(X[i : i + 1]) for i in range(len(X))])
    return Scored(scores, model.reference_similarity(X))


def nearest_reference(bundle: Bundle, index: int, similarity: float) -> dict:
    """Reference ``index`` of the library as a nearest match: label, similarity, position, metadata."""
    row = bundle.library_meta.iloc[int(index)]
    return {
        "label": str(bundle.labels[index]),
        "similarity": float(similarity),
        "library_index": int(index),
        **{k: str(row[k]) for k in REFERENCE_COLUMNS if k in row.index},
    }


def element_thresholds(bundle: Bundle, X: np.ndarray, quality: list | None) -> np.ndarray:
    """``(inputs, elements)``: the thresholds an element model applies to each input, those of
    the input's quality block (from its signal-to-noise bin and ``quality``, the estimates of
    the spectra as read: :meth:`~ramanid.bundle.header.ModelInfo.element_keys`) where the model
    chose them per block on degraded held-out minerals
    (:func:`ramanid.deploy.element_choices_by_quality`), its own elsewhere.
    """
    base = np.asarray(bundle.estimator.thresholds_, dtype=np.float64)
    by_block = bundle.info.element_thresholds_by_quality
    if not by_block or not len(X):
        return np.tile(base, (len(X), 1))
    table = np.array([base if t is None else t for t in by_block], dtype=np.float64)
    return table[_element_keys(bundle, X, quality)]


def element_inputs(bundle: Bundle, X: np.ndarray, quality: list | None) -> np.ndarray:
    """The inputs an element model scores: each smoothed by the window its quality block chose
    on degraded held-out minerals (:func:`element_thresholds`), where the model chose any; ``X``
    itself otherwise.
    """
    from ramanid.preprocessing.smooth import smoothed_in_range

    windows = bundle.info.element_smoothing_by_quality
    if not windows or not len(X):
        return X
    keys, smoothed = _element_keys(bundle, X, quality), np.array(X, dtype=np.float32)
    for b in np.unique(keys):
        smoothed[keys == b] = smoothed_in_range(X[keys == b], windows[b])
    return smoothed


def _element_keys(bundle: Bundle, X: np.ndarray, quality: list | None) -> np.ndarray:
    """Each input's quality block, as the element model's folder keys them."""
    from ramanid.training.identifier import input_snr_bins

    return bundle.info.element_keys(input_snr_bins(X), quality)


def element_answer(names: list[str], scores: np.ndarray, thresholds: np.ndarray) -> dict[str, dict]:
    """An element model's answer for one spectrum: each element's probability and whether it
    reaches its threshold (:func:`element_thresholds`).
    """
    return {
        e: {"probability": float(scores[j]), "present": bool(scores[j] >= thresholds[j])} for j, e in enumerate(names)
    }


def elements_of(top: list[tuple[str, float]], formulas: dict[str, str]) -> dict[str, dict]:
    """Each element of the listed classes' formulas with the share of their probabilities whose
    formula contains it (present at a share of one half or more); empty without formulas.
    """
    total = sum(max(score, 0.0) for _, score in top) or 1.0
    weight: dict[str, float] = {}
    for name, score in top:
        for element in readable_elements(formulas.get(name)) or ():
            weight[element] = weight.get(element, 0.0) + max(score, 0.0) / total
    return {
        e: {"probability": round(w, 4), "present": w >= 0.5}
        for e, w in sorted(weight.items(), key=lambda x: (-x[1], x[0]))
    }


def reference_label(hit: dict) -> str:
    """A nearest reference as a person reads it: its mineral (or label) and its RRUFF id."""
    return f"{hit.get('mineral', hit.get('label'))} {hit.get('rruff_id', '')}".strip()


def as_lines(predictions: list[Prediction], width: int = 28) -> pd.DataFrame:
    """One short row per spectrum, for a terminal: the file's name, the answer (the mixture's
    minerals, or an element model's elements present) with its probability, the answer set's
    size, the unknown flag, the signal-to-noise ratio, the calibration offset where one was
    found in any spectrum, and the nearest reference; texts cut to ``width`` characters. Every
    number is in :func:`as_table` (``--format csv``) and the JSON.
    """

    def cut(text) -> str:
        text = str(text)
        return text if len(text) <= width else text[: width - 1] + "…"

    offsets = any(p.offset_cm1 for p in predictions)
    rows = []
    for p in predictions:
        if p.components:
            answer = " + ".join(f"{c['mineral']} {c['fraction']:.2f}" for c in p.components)
        elif p.top:
            answer = p.top[0][0]
        else:
            answer = " ".join(e for e, d in p.elements.items() if d["present"]) or "(no element)"
        row = {"file": cut(Path(p.file).name), "answer": cut(answer), "p": round(p.top[0][1], 3) if p.top else ""}
        if p.confidence is not None:
            row[f"set{p.confidence:.0%}"] = len(p.answer_set)
        row["unknown"] = "UNKNOWN" if p.unknown else "no"
        if p.quality is not None:
            row["snr"] = f"{p.quality['snr']:.0f}" + (" poor" if p.quality["poor"] else "")
        if offsets:
            row["offset"] = f"{p.offset_cm1:+.1f} cm-1" if p.offset_cm1 else ""
        if p.nearest:
            hit = p.nearest[0]
            row["nearest"] = cut(reference_label(hit))
        rows.append(row)
    return pd.DataFrame(rows)


def as_table(predictions: list[Prediction]) -> pd.DataFrame:
    """One row per spectrum, for the table and CSV outputs."""
    offsets = any(p.offset_cm1 is not None for p in predictions)
    edges = any((p.quality or {}).get("filter_edge_cm1") is not None for p in predictions)
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
        for element, share in (p.formula_shares or {}).items():
            row[f"{element}_formula"] = share
        for k, hit in enumerate(p.nearest, 1):
            row[f"nearest{k}"] = reference_label(hit)
        if p.components is not None:
            row["components"] = " + ".join(f"{c['mineral']} {c['fraction']:.2f}" for c in p.components) or "-"
            row["explained"] = p.explained
        if p.quality is not None:
            row["snr"] = round(p.quality["snr"], 1)
            row["poor"] = p.quality["poor"]
            if edges:
                row["filter_edge_cm1"] = p.quality.get("filter_edge_cm1")
        if offsets:
            row["offset_cm1"] = p.offset_cm1
        rows.append(row)
    return pd.DataFrame(rows)
