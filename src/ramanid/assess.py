"""Assessing a saved model as a user meets it: the degradation protocol's conditions
(:mod:`ramanid.evaluation.degradation`) read through ``predict`` itself, and scored.
"""

from __future__ import annotations

import zlib

import numpy as np
from sklearn.metrics import roc_auc_score

from ramanid import confidence as conf
from ramanid.chemistry import readable_elements
from ramanid.evaluation.degradation import Condition, conditions, degrade
from ramanid.predict import element_inputs, element_thresholds, predict_prepared
from ramanid.spectra import Spectrum
from ramanid.targets import CHEMISTRY_COLUMNS


def degraded(spectra: list[Spectrum], condition: Condition, seed: int, part: int = 0) -> list[Spectrum]:
    """``spectra`` under ``condition``, each from a generator seeded by ``seed``, the condition's
    place in the protocol (a stable hash of its name for another), ``part`` and its position.
    """
    every = conditions()
    index = every.index(condition) if condition in every else zlib.crc32(condition.name.encode())
    return [degrade(s, condition, np.random.default_rng([seed, index, i, int(part)])) for i, s in enumerate(spectra)]


def evaluate_degraded(
    bundle,
    known: list[Spectrum],
    unknown: list[Spectrum],
    condition: Condition,
    seed: int = 0,
    searches: dict | None = None,
    confidence: float = 0.95,
) -> dict:
    """One condition of the protocol: each spectrum degraded (seeded by ``seed``, the condition
    and its position), read through the model as a user's file would be, and scored.

    ``known`` are spectra of minerals in the model's library (their ``mineral``), ``unknown``
    spectra of minerals absent from it; ``searches`` maps a name to a fitted
    :class:`~ramanid.search.LibrarySearch` on the model's references, scored on the same inputs.
    Returns top-1/top-5 (the model and each search), the unknown flag's rate on known spectra
    and on unknown ones, the unknown score's AUROC, the answer sets' coverage, the top-1's
    expected calibration error with its reliability table (so that runs on several folds can be
    pooled), the median quality estimate, and the share of spectra flagged
    ``poor`` with their top-1. With ``searches``, ``any top1`` is the share named right by the
    model or by a search: what an oracle choosing among them per spectrum would reach, a ceiling
    for any rule that picks one of these scores. Where the library holds formulas and the spectra
    their own (``meta["chemistry"]``), ``neighbour top1`` also counts a chemical neighbour of the
    truth (:func:`chemical_neighbours`) as right (for each search too), and ``auroc near`` /
    ``auroc far`` tell known spectra from unknown ones whose first answer is, or is not, such a
    neighbour (``caught near`` / ``caught far``: the share of them flagged; ``unknown near``: the
    share that is).
    """
    row = {"condition": condition.name}
    results = {}
    for part, spectra in (("known", known), ("unknown", unknown)):
        X, kept, skipped, quality = bundle.prepare(degraded(spectra, condition, seed, part == "unknown"))
        answers = predict_prepared(bundle, X, [s.source for s in kept], 5, 3, confidence, quality)
        truth = np.array([s.meta.get("mineral", "") for s in kept])
        results[part] = (X, answers, truth, len(skipped), [readable_elements(s.meta.get("chemistry")) for s in kept])
    X, answers, truth, skipped, formulas = results["known"]
    names = [[name for name, _ in a.top] for a in answers]
    correct = np.array([n[:1] == [t] for n, t in zip(names, truth, strict=True)])
    table = conf.reliability([a.top[0][1] for a in answers], correct)
    row.update(
        n_known=len(answers),
        unanswered=skipped,
        top1=float(correct.mean()),
        top5=float(np.mean([t in n[:5] for n, t in zip(names, truth, strict=True)])),
        false_alarms=float(np.mean([a.unknown for a in answers])),
        coverage=float(np.mean([t in a.answer_set for a, t in zip(answers, truth, strict=True)])),
        ece=conf.calibration_error_of(table),
        reliability=table.tolist(),
    )
    if answers and answers[0].quality:
        poor = np.array([a.quality["poor"] for a in answers], dtype=bool)
        row.update(
            median_snr=float(np.median([a.quality["snr"] for a in answers])),
            poor=float(poor.mean()),
            poor_top1=float(correct[poor].mean()) if poor.any() else None,
        )
    _, unknown_answers, _, _, unknown_formulas = results["unknown"]
    if unknown_answers:
        row.update(
            n_unknown=len(unknown_answers),
            caught=float(np.mean([a.unknown for a in unknown_answers])),
            auroc=_unknown_auroc(answers, unknown_answers),
        )
    library_formulas = _library_formulas(bundle) if answers else {}
    if library_formulas:
        row.update(_neighbour_figures(answers, correct, formulas, unknown_answers, unknown_formulas, library_formulas))
    right_by_any = correct.copy()
    for name, search in (searches or {}).items():
        scores = search.class_scores(X)
        order = np.argsort(-scores, axis=1)[:, :5]
        top = search.classes_[order]
        row[f"{name} top1"] = float(np.mean(top[:, 0] == truth))
        row[f"{name} top5"] = float(np.mean([t in r for r, t in zip(top, truth, strict=True)]))
        if library_formulas:
            near = _near(top[:, 0], formulas, library_formulas)
            row[f"{name} neighbour top1"] = float(np.mean((top[:, 0] == truth) | near))
        right_by_any |= top[:, 0] == truth
    if searches:
        row["any top1"] = float(right_by_any.mean())
    return row


#: two minerals are chemical neighbours where the element sets of their ideal formulas overlap by
#: a Jaccard index of at least this: members of one series, polymorphs (set before it was measured;
#: ``benchmarks/RESULTS.md``, "What bounds issues 24 and 29")
NEIGHBOUR_JACCARD = 0.6


def chemical_neighbours(a: frozenset | None, b: frozenset | None) -> bool:
    """Whether two element sets overlap by :data:`NEIGHBOUR_JACCARD` or more (False where either is None)."""
    return bool(a and b) and len(a & b) / len(a | b) >= NEIGHBOUR_JACCARD


def _library_formulas(bundle) -> dict:
    """Each library mineral's element set, from the first of its references whose formula reads."""
    meta = bundle.library_meta
    if "chemistry" not in meta:
        return {}
    formulas = {}
    for label, formula in zip(bundle.labels, meta["chemistry"], strict=True):
        if formulas.get(label) is None:
            formulas[label] = readable_elements(formula)
    return formulas


def _near(first, formulas, library_formulas) -> np.ndarray:
    """Whether each first answer (a mineral's name) is a chemical neighbour of its spectrum's own formula."""
    return np.array(
        [chemical_neighbours(library_formulas.get(name), f) for name, f in zip(first, formulas, strict=True)],
        dtype=bool,
    )


def _first(answers) -> list[str]:
    return [a.top[0][0] for a in answers]


def _neighbour_figures(answers, correct, formulas, unknown_answers, unknown_formulas, library_formulas) -> dict:
    """Top-1 counting a chemical neighbour of the truth as right; and the unknown score's AUROC
    against unknown minerals whose first answer is (``near``) or is not (``far``) a neighbour of
    their own formula, with the share of them that is.
    """
    figures = {"neighbour top1": float(np.mean(correct | _near(_first(answers), formulas, library_formulas)))}
    if not unknown_answers:
        return figures
    lured = _near(_first(unknown_answers), unknown_formulas, library_formulas)
    figures["unknown near"] = float(lured.mean())
    for name, part in (("near", lured), ("far", ~lured)):
        chosen = [a for a, inside in zip(unknown_answers, part, strict=True) if inside]
        if chosen:
            figures[f"auroc {name}"] = _unknown_auroc(answers, chosen)
            figures[f"caught {name}"] = float(np.mean([a.unknown for a in chosen]))
    return figures


def _unknown_auroc(known_answers, unknown_answers) -> float:
    """How well the unknown score tells ``unknown_answers`` from ``known_answers`` (ROC AUC)."""
    labels = [0] * len(known_answers) + [1] * len(unknown_answers)
    return float(roc_auc_score(labels, [a.unknown_score for a in [*known_answers, *unknown_answers]]))


def element_truth(spectra: list[Spectrum], elements, column: str = "chemistry") -> tuple[np.ndarray, np.ndarray]:
    """``(Y, readable)``: whether each spectrum's formula in ``meta[column]`` holds each of
    ``elements``, and which formulas could be read (the others have no truth).
    """
    Y = np.zeros((len(spectra), len(elements)), dtype=np.int64)
    readable = np.zeros(len(spectra), dtype=bool)
    for i, s in enumerate(spectra):
        present = readable_elements(s.meta.get(column))
        if present:
            Y[i], readable[i] = [e in present for e in elements], True
    return Y, readable


def evaluate_elements_degraded(bundles: dict, spectra: list[Spectrum], condition: Condition, seed: int = 0) -> dict:
    """One condition of the protocol for element models: the same degraded spectra read through
    each of ``bundles`` (name -> a loaded element model), scored per element.

    Returns, per model, each element's ROC AUC, their macro mean, and each element's share of
    spectra reported present (at the thresholds the model chose on held-out minerals, per
    signal-to-noise bin where it did, as ``predict`` applies them) beside its true share; spectra
    whose formula cannot be read are left out.
    """
    row = {"condition": condition.name, "models": {}}
    queries = degraded(spectra, condition, seed)
    for name, bundle in bundles.items():
        model = bundle.estimator
        X, kept, _, quality = bundle.prepare(queries)
        chemistry = bundle.info.task.chemistry
        Y, readable = element_truth(kept, model.elements_, CHEMISTRY_COLUMNS.get(chemistry, chemistry))
        inputs = element_inputs(bundle, X, quality)[readable]
        scores = model.decision_scores(inputs) if len(X) else np.zeros(Y.shape)
        Y = Y[readable]
        auc = {
            e: float(roc_auc_score(Y[:, j], scores[:, j])) if 0 < Y[:, j].sum() < len(Y) else float("nan")
            for j, e in enumerate(model.elements_)
        }
        present = scores >= element_thresholds(bundle, X, quality)[readable]
        row["models"][name] = {
            "n": int(len(Y)),
            "auc": auc,
            "macro": float(np.nanmean(list(auc.values()))),
            "reported_share": dict(zip(model.elements_, present.mean(0).round(4).tolist(), strict=True)),
            "true_share": dict(zip(model.elements_, Y.mean(0).round(4).tolist(), strict=True)),
        }
    return row
