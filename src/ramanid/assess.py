"""Assessing a saved model as a user meets it: the degradation protocol's conditions
(:mod:`ramanid.evaluation.degradation`) read through ``predict`` itself, and scored.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from ramanid import confidence as conf
from ramanid.evaluation.degradation import Condition, conditions, degrade
from ramanid.predict import predict_prepared
from ramanid.spectra import Spectrum


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
    expected calibration error, and the median quality estimate.
    """
    index = list(conditions()).index(condition) if condition in conditions() else hash(condition.name) % 10**6
    row = {"condition": condition.name}
    results = {}
    for part, spectra in (("known", known), ("unknown", unknown)):
        degraded = [
            degrade(s, condition, np.random.default_rng([seed, index, i, part == "unknown"]))
            for i, s in enumerate(spectra)
        ]
        X, kept, skipped, quality = bundle.prepare(degraded)
        answers = predict_prepared(bundle, X, [s.source for s in kept], 5, 3, confidence, quality)
        truth = np.array([s.meta.get("mineral", "") for s in kept])
        results[part] = (X, answers, truth, len(skipped))
    X, answers, truth, skipped = results["known"]
    names = [[name for name, _ in a.top] for a in answers]
    correct = np.array([n[:1] == [t] for n, t in zip(names, truth, strict=True)])
    row.update(
        n_known=len(answers),
        unanswered=skipped,
        top1=float(correct.mean()),
        top5=float(np.mean([t in n[:5] for n, t in zip(names, truth, strict=True)])),
        false_alarms=float(np.mean([a.unknown for a in answers])),
        coverage=float(np.mean([t in a.answer_set for a, t in zip(answers, truth, strict=True)])),
        ece=conf.top1_calibration_error([a.top[0][1] for a in answers], correct),
        median_snr=float(np.median([a.quality["snr"] for a in answers])) if answers and answers[0].quality else None,
        poor=float(np.mean([a.quality["poor"] for a in answers])) if answers and answers[0].quality else None,
    )
    _, unknown_answers, _, _ = results["unknown"]
    if unknown_answers:
        scores = [a.unknown_score for a in answers] + [a.unknown_score for a in unknown_answers]
        labels = [0] * len(answers) + [1] * len(unknown_answers)
        row.update(
            n_unknown=len(unknown_answers),
            caught=float(np.mean([a.unknown for a in unknown_answers])),
            auroc=float(roc_auc_score(labels, scores)),
        )
    for name, search in (searches or {}).items():
        scores = search.class_scores(X)
        order = np.argsort(-scores, axis=1)[:, :5]
        top = search.classes_[order]
        row[f"{name} top1"] = float(np.mean(top[:, 0] == truth))
        row[f"{name} top5"] = float(np.mean([t in r for r, t in zip(top, truth, strict=True)]))
    return row
