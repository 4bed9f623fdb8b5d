"""Choices made on the training part only: preprocessing and training options picked by inner
cross-validation (training-side: inference never imports this module).
"""

from __future__ import annotations

import itertools
from dataclasses import fields, replace

import numpy as np
from sklearn.linear_model import RidgeClassifier
from sklearn.metrics import balanced_accuracy_score
from sklearn.pipeline import make_pipeline as sk_pipeline
from sklearn.preprocessing import StandardScaler

from ramanid.errors import ModelError
from ramanid.holdout import best_on_inner_folds, inner_splits, macro_roc_auc
from ramanid.preprocessing import pipeline_from_spec
from ramanid.preprocessing.presets import number_or_text
from ramanid.targets import Task
from ramanid.training.baselines import CLASSICAL
from ramanid.training.by_group import standardise_each
from ramanid.training.epo import nuisance_directions, project_out
from ramanid.training.factory import Options, classical_params, fit_estimator, make_estimator

#: the presets ``--preprocess auto`` chooses among ("none": the spectra as built)
CANDIDATES = ("none", "snv", "arpls, snv", "savgol, snv", "deriv1(window_length=15), vector")


def preprocess(spec: str | None, X_fit: np.ndarray, shifts, *others: np.ndarray) -> list[np.ndarray]:
    """``X_fit`` and ``others`` through the pipeline of ``spec`` fitted on ``X_fit`` only ("none" or
    None: unchanged).
    """
    if spec in (None, "", "none"):
        return [X_fit, *others]
    pipeline = pipeline_from_spec(spec, shifts)
    return [
        pipeline.fit_transform(X_fit).astype(np.float32),
        *(pipeline.transform(X).astype(np.float32) for X in others),
    ]


def choose_preprocessing(
    X,
    y,
    shifts,
    groups=None,
    candidates=CANDIDATES,
    folds: int = 3,
    seed: int = 0,
    by_group: bool = False,
    epo: bool = False,
):
    """``(spec, scores)``: the candidate with the best inner cross-validated balanced accuracy of a
    standardised ridge classifier (a fast linear stand-in for every model: closed form, so the
    choice costs seconds even on spectra of 2,000 points), on ``X``, ``y`` alone.

    The inner folds keep ``groups`` together where given, as the outer split does. ``by_group``:
    the stand-in sees the spectra as ``MODEL+by_group`` does, each training group standardised on
    its own and the held-out fold as one batch; ``epo``: as ``MODEL+epo`` does, with the inner
    training groups' within-class differences projected out.
    """
    if np.ndim(y) != 1:
        raise ModelError("--preprocess auto chooses for one label per spectrum: give the steps for elements")
    y = np.asarray(y)
    splits = inner_splits(X, y, groups, folds, seed)

    def score(spec, train, test):
        X_train, X_test = preprocess(spec, X[train], shifts, X[test])
        if by_group:
            X_train, X_test = (
                standardise_each(X_train, None if groups is None else groups[train]),
                standardise_each(X_test),
            )
        if epo and groups is not None:
            directions = nuisance_directions(X_train, y[train], groups[train])
            X_train, X_test = project_out(X_train, directions), project_out(X_test, directions)
        model = sk_pipeline(StandardScaler(), RidgeClassifier(alpha=10.0)).fit(X_train, y[train])
        return balanced_accuracy_score(y[test], model.predict(X_test))

    return best_on_inner_folds(candidates, score, splits)


def _augment_choice(value: str) -> str:
    if value not in AUGMENT:
        raise ValueError(value)
    return value


#: ``--tune augment=none,default``: no augmentation, or the model's own (its registry default)
AUGMENT = {"none": {}, "default": None}

#: the training options ``--tune`` may vary: how to read a value, and what a value must be
TUNABLE = {
    "lr": (float, "numbers"),
    "weight_decay": (float, "numbers"),
    "hidden": (int, "whole numbers"),
    "batch_size": (int, "whole numbers"),
    "epochs": (int, "whole numbers"),
    "patience": (int, "whole numbers"),
    "augment": (_augment_choice, "'none' or 'default' (the model's own augmentation)"),
}


#: ``--tune model.NAME=...`` varies a parameter of the network itself (e.g. attention_resnet's ``whole``)
MODEL_PARAM = "model."


def _model_value(value: str):
    """A model parameter's value: a whole number, a number, true or false (never evaluated code)."""
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    number = number_or_text(value)
    if isinstance(number, str):
        raise ValueError(value)
    return number


def parse_tune(specs) -> dict[str, tuple]:
    """``["lr=0.01,0.001", "hidden=32,64"]`` -> ``{"lr": (0.01, 0.001), "hidden": (32, 64)}``."""
    tune = {}
    for spec in specs:
        name, _, values = spec.partition("=")
        name = {"wd": "weight_decay"}.get(name.strip(), name.strip())
        is_model_param = name.startswith(MODEL_PARAM) and len(name) > len(MODEL_PARAM)
        if (name not in TUNABLE and not is_model_param) or not values.strip():
            raise ModelError(
                f"--tune {spec!r}: expected NAME=V1,V2,... with NAME one of {list(TUNABLE)} or model.PARAMETER"
            )
        read, kind = (_model_value, "numbers, true or false") if is_model_param else TUNABLE[name]
        try:
            parsed = tuple(read(v.strip()) for v in values.split(","))
        except ValueError:
            raise ModelError(f"--tune {spec!r}: the values of {name} must be {kind}") from None
        if name in tune:
            raise ModelError(f"--tune {name} is given twice: put all its values in one --tune {name}=V1,V2")
        tune[name] = parsed
    return tune


def check_tunable(name: str, options: Options) -> None:
    """A :class:`ModelError` if ``options.tune`` varies what a model does not have: classical
    baselines have no training options, and only some have parameters (``formula_vote``'s ``k``).
    """
    if name not in CLASSICAL or not options.tune:
        return
    training = [k for k in options.tune if not k.startswith(MODEL_PARAM)]
    if training:
        raise ModelError(f"--tune {training[0]}: {name} is not a network and has no training options")
    for combination in tuning_grid(options.tune):
        classical_params(name, with_choice(options, combination))


def tuning_grid(tune: dict) -> list[dict]:
    """Every combination of the values in ``tune``, as dicts of option names and values."""
    names = sorted(tune)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*(tune[n] for n in names))]


def with_choice(options: Options, combination: dict) -> Options:
    """``options`` with one combination of tuned values set (estimator settings such as
    ``patience`` and ``augment``, and the network's own parameters, go to ``extra``), and nothing
    left to tune.
    """
    own = {f.name for f in fields(Options)}
    settings = {
        k: AUGMENT[v] if k == "augment" else v
        for k, v in combination.items()
        if k not in own and not k.startswith(MODEL_PARAM)
    }
    network = {k[len(MODEL_PARAM) :]: v for k, v in combination.items() if k.startswith(MODEL_PARAM)}
    if network:
        settings["model_params"] = {**(options.extra.get("model_params") or {}), **network}
    return replace(
        options, tune={}, extra={**options.extra, **settings}, **{k: v for k, v in combination.items() if k in own}
    )


def choose_options(
    name: str, task: Task, options: Options, X, y, groups=None, folds: int = 2, seed: int = 0
) -> tuple[Options, dict, list[dict]]:
    """``(options, chosen, scores)``: the combination of ``options.tune`` with the best inner
    cross-validated score on ``X``, ``y`` alone (macro ROC AUC for elements, balanced accuracy
    otherwise), and every combination's score. Inner folds keep ``groups`` together, as the
    outer split does, so the choice is made on groups the inner fit did not see.
    """
    check_tunable(name, options)
    grid = tuning_grid(options.tune)

    def score(i, train, test):
        inner_groups = None if groups is None else groups[train]
        estimator = make_estimator(name, task, with_choice(options, grid[i]), seed)
        return _inner_score(fit_estimator(estimator, X[train], y[train], inner_groups), X[test], y[test], task)

    best, means = best_on_inner_folds(range(len(grid)), score, inner_splits(X, y, groups, folds, seed))
    return with_choice(options, grid[best]), grid[best], [{**grid[i], "score": means[i]} for i in range(len(grid))]


def _inner_score(estimator, X, y, task: Task) -> float:
    proba = estimator.predict_proba(X)
    if task.kind == "elements":
        return macro_roc_auc(y, proba)
    return float(balanced_accuracy_score(y, estimator.classes_[np.argmax(proba, axis=1)]))
