"""Training a model for a folder: fit on every spectrum, calibrate on held-out ones, save.

- :func:`train_bundle`: any network (``ramanid train``), through the same recipe as
  cross-validation (:func:`~ramanid.training.recipe.fit_recipe`);
- :func:`train_identifier`: the library identifier (``ramanid library build``).

An internal validation split, never trained on, sets what the folder stores besides the weights:
the temperature of the probabilities (Guo et al. 2017), the conformal answer sets (Sadinle et
al. 2019), the element thresholds, and the unknown flag (:func:`ramanid.confidence.choose_unknown_score`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ramanid import confidence as conf
from ramanid.bundle import Bundle, load_bundle, save_bundle
from ramanid.errors import RamanIdError
from ramanid.evaluation.metrics import element_metrics, multiclass_metrics
from ramanid.jsonable import json_ready
from ramanid.models import user_models
from ramanid.preprocessing import steps_of
from ramanid.search import References
from ramanid.targets import Task
from ramanid.training.blend import VOTE_SUFFIX
from ramanid.training.factory import Options
from ramanid.training.identifier import LibraryIdentifier
from ramanid.training.recipe import fit_recipe

#: per task kind, the columns whose groups a saved model's validation split holds out whole, first
#: found first; element thresholds are meant for minerals the network has never seen, so an element
#: model is validated on whole minerals
VALIDATION_GROUPS = {"label": ("rruff_id", "group"), "elements": ("mineral", "rruff_id")}


def train_bundle(
    spectra, *, task: Task, model: str, options: Options, seed: int, folder: str | Path, log=print
) -> Bundle:
    """Train on all of ``spectra`` and save a model folder.

    An internal validation split, of whole specimens (``rruff_id``), whole groups (the ``group``
    column of ``ramanid build table --group``: cultures, patients), or for elements whole
    minerals, where the set has them, serves early stopping, the element thresholds, the
    calibration and the unknown flag. Holding out whole specimens leaves some minerals out of
    training altogether; the unknown flag uses the score of :data:`ramanid.confidence.UNKNOWN_SCORES`
    that best tells those from the others on validation, with the threshold that accepts 95% of
    the known validation spectra (so about 5% of new spectra of known minerals are flagged).
    """
    if model.removesuffix(VOTE_SUFFIX) not in user_models():
        raise RamanIdError(
            f"model {model!r} cannot be saved: 'ramanid train' takes the neural models {user_models()} "
            f"(and NETWORK{VOTE_SUFFIX} for elements)"
        )
    if options.ensemble > 1:
        raise RamanIdError("a saved model holds one network: train it with ensemble=1")
    task = task.resolved(spectra)
    spectra, y = task.labelled(spectra, log)
    grouped_by = next((column for column in VALIDATION_GROUPS[task.kind] if column in spectra.meta), None)
    groups = spectra.meta[grouped_by].astype(str).to_numpy() if grouped_by else None
    recipe = fit_recipe(
        spectra.intensities,
        y,
        np.arange(len(spectra)),
        name=model,
        task=task,
        options=options,
        seed=seed,
        shifts=spectra.shifts,
        groups=groups,
    )
    _log_choices(recipe.choices, log)
    estimator, X = recipe.estimator, recipe.X
    val = estimator.validation_index_
    train = np.setdiff1d(np.arange(len(X)), val)
    meta = spectra.meta.copy()
    meta["label"] = (
        meta[task.column].astype(str) if task.column else meta.get("mineral", pd.Series(["?"] * len(X))).astype(str)
    )
    # the validation spectra are queried against the training part only, as new spectra will be
    estimator.attach(References(X[train], meta.iloc[train]))
    similarity = estimator.reference_similarity(X[val])
    calibration = None
    if task.kind == "elements":
        # a blend's vote keeps the validation spectra as references once fitted: its validation
        # scores are those of the choice, made with the other spectra as references
        scores = getattr(estimator, "validation_scores_", None)
        scores = estimator.decision_scores(X[val]) if scores is None else scores
        metrics = element_metrics(y[val], scores, estimator.thresholds_, task.elements)
        unknown = np.zeros(len(val), dtype=bool)
    else:
        scores = estimator.decision_scores(X[val])
        codes = np.searchsorted(estimator.classes_, y[val])
        # a specimen-grouped split leaves some minerals out of training: the calibration is for
        # classes the network knows, so it is fitted on those spectra
        unknown = ~np.isin(y[val], y[train])
        calibration, ece = calibrate(scores, codes, ~unknown)
        proba = conf.calibrated(scores, calibration["temperature"])
        metrics = {**multiclass_metrics(y[val], proba, estimator.classes_), **ece}
    ood = _unknown_flag(estimator.unknown_evidence(X[val], scores, similarity), unknown, log)
    info = {
        "task": {
            "kind": task.kind,
            "column": task.column,
            "elements": list(task.elements),
            "chemistry": task.chemistry,
            "positive": task.positive,
        },
        "shifts": spectra.shifts.tolist(),
        "method": spectra.info.get("method", "linear"),
        "preprocess": steps_of(spectra.info.get("preprocess", "minmax")) + steps_of(recipe.steps),
        "data": {"n_spectra": len(X), "classes": int(meta["label"].nunique()), "built_with": spectra.info},
        "validation": _validation(val, grouped_by, metrics),
        "ood": ood,
        **({"calibration": calibration} if calibration else {}),
        **({"tuned": recipe.choices["tune_scores"]} if "tune_scores" in recipe.choices else {}),
    }
    save_bundle(folder, estimator, info, References(X, meta))
    return load_bundle(folder)


def train_identifier(spectra, *, folder: str | Path, epochs: int = 60, seed: int = 0, log=print) -> Bundle:
    """Train a :class:`~ramanid.training.identifier.LibraryIdentifier` on every spectrum of
    ``spectra`` (labels from ``mineral``; validation held out by specimen, ``rruff_id``, where the
    set has it) and save it: every spectrum is a reference of the library.

    The validation spectra, queried against the training references only, set the temperature
    of the class scores, the conformal answer sets, and the unknown flag: one minus the best
    score, with the threshold that accepts 95% of the validation spectra of known minerals.
    """
    labels = Task.parse("mineral").targets(spectra)[0]
    groups = spectra.meta["rruff_id"].astype(str).to_numpy() if "rruff_id" in spectra.meta else None
    identifier = LibraryIdentifier(epochs=epochs, random_state=seed).fit(spectra.intensities, labels, groups=groups)
    val = identifier.validation_index_
    train = np.setdiff1d(np.arange(len(spectra)), val)
    similarity = identifier.similarity(spectra.intensities[val], references=train)
    scores = identifier.best_per_class(similarity, identifier.reference_class_[train])
    scores[~np.isfinite(scores)] = -1.0  # minerals with no training reference
    known = np.isin(labels[val], labels[train])
    calibration, metrics = calibrate(scores, identifier.reference_class_[val], known)
    evidence = conf.Evidence(best_score=scores.max(axis=1))
    ood = _unknown_flag(evidence, ~known, log=lambda _: None, only="best identifier score")
    meta = spectra.meta.copy()
    meta["label"] = labels
    info = {
        "task": {"kind": "label", "column": "mineral", "elements": []},
        "shifts": spectra.shifts.tolist(),
        "method": spectra.info.get("method", "linear"),
        "preprocess": steps_of(spectra.info.get("preprocess", "minmax")),
        "data": {"n_spectra": len(spectra), "classes": int(len(identifier.classes_)), "built_with": spectra.info},
        "validation": _validation(val, "rruff_id" if groups is not None else None, metrics),
        "ood": ood,
        "calibration": calibration,
    }
    log(
        f"trained on {len(spectra)} spectra of {len(identifier.classes_)} minerals; alpha {identifier.alpha_} and "
        f"spectral score (power {identifier.spectral_.power:g}, derivative window {identifier.spectral_.window}) "
        f"chosen on {len(val)} held-out spectra"
    )
    save_bundle(folder, identifier, info, References(spectra.intensities, meta))
    return load_bundle(folder)


def calibrate(scores: np.ndarray, codes: np.ndarray, known: np.ndarray) -> tuple[dict, dict]:
    """``(calibration, metrics)`` from validation class scores and true class indices ``codes``,
    fitted on the ``known`` rows (classes the model was trained on): the temperature (Guo et al.
    2017), the sorted conformal scores of those spectra (Sadinle et al. 2019), and the expected
    calibration error before and after.
    """
    scores, codes = scores[known], codes[known]
    temperature = conf.fit_temperature(scores, codes)
    proba = conf.calibrated(scores, temperature)
    calibration = {
        "temperature": temperature,
        "conformal_scores": np.sort(conf.conformity_scores(proba, codes)).tolist(),
    }
    metrics = {
        "ece_before": conf.expected_calibration_error(conf.calibrated(scores, 1.0), codes),
        "ece_after": conf.expected_calibration_error(proba, codes),
    }
    return calibration, metrics


def _unknown_flag(evidence: conf.Evidence, unknown: np.ndarray, log, only: str | None = None) -> dict:
    """The ``ood`` block: the unknown score that best tells the ``unknown`` validation spectra from
    the others (or ``only``), and its threshold.
    """
    candidates = conf.unknown_candidates(evidence)
    if only is not None:
        candidates = {only: candidates[only]}
    name, threshold, auroc = conf.choose_unknown_score(candidates, unknown)
    if threshold is None:
        log("warning: no known validation spectrum to set the unknown flag's threshold: it will never fire")
    log(
        f"unknown flag: {name} (validation AUROC {auroc[name]:.3f} on {int(unknown.sum())} "
        "spectra of minerals left out of training)"
        if auroc
        else f"unknown flag: {name}"
    )
    return {
        "score": name,
        "threshold": threshold,
        "accept_known": conf.ACCEPT_KNOWN,
        "validation_auroc": auroc,
        "validation_unknown_spectra": int(np.sum(unknown)),
    }


def _validation(val: np.ndarray, grouped_by: str | None, metrics: dict) -> dict:
    """The ``validation`` block: its rows (positions in the library), how they were held out, and
    the model's figures on them.
    """
    return {"n_spectra": int(len(val)), "grouped_by": grouped_by, "index": val.tolist(), "metrics": json_ready(metrics)}


def _log_choices(choices: dict, log) -> None:
    if "preprocess_scores" in choices:
        log(
            f"preprocessing chosen by inner cross-validation: {choices['preprocess']!r} "
            f"({json.dumps(choices['preprocess_scores'])})"
        )
    if "tuned" in choices:
        log(
            f"options chosen by inner cross-validation: {json.dumps(choices['tuned'])} "
            f"(every score: {json.dumps(choices['tune_scores'])})"
        )
