"""The one recipe that makes a fitted model from a training part, shared by cross-validation
(:func:`ramanid.evaluation.protocol.run_fold`) and a saved model (:func:`ramanid.deploy.train_bundle`):
preprocess (or choose the steps), tune, make, fit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ramanid.targets import Task
from ramanid.training.by_group import BY_GROUP
from ramanid.training.epo import EPO
from ramanid.training.factory import Options, fit_estimator, make_estimator
from ramanid.training.selection import choose_options, choose_preprocessing, preprocess


@dataclass
class Recipe:
    """What :func:`fit_recipe` made: the fitted estimator, every row through the chosen
    preprocessing (``X``), the steps themselves, and the choices made on inner folds.
    """

    estimator: object
    X: np.ndarray
    steps: str | None
    choices: dict = field(default_factory=dict)


def fit_recipe(
    X: np.ndarray,
    y: np.ndarray,
    train: np.ndarray,
    *,
    name: str,
    task: Task,
    options: Options,
    seed: int,
    shifts=None,
    groups: np.ndarray | None = None,
    pretrain: np.ndarray | None = None,
    saved: bool = False,
) -> Recipe:
    """Fit model ``name`` on the rows ``train`` of ``X``, ``y``, learning from nothing else.

    ``options.preprocess`` is fitted on the training rows (and ``pretrain``) and applied to every
    row; ``"auto"`` first chooses the steps by inner cross-validation on them. ``options.tune``
    chooses the training options by inner cross-validation on the training rows, grouped by
    ``groups`` as an outer split is. With ``pretrain`` rows (the Bacteria-ID protocol of Ho et
    al. 2019), a network is first fitted on them and then fine-tuned on ``train``
    (``warm_start``); a classical model, with nothing to fine-tune, is fitted on both. ``saved``:
    the estimator a model folder holds (:func:`~ramanid.training.factory.make_estimator`).
    """
    choices = {}
    fitted = train if pretrain is None else np.concatenate([pretrain, train])
    steps = options.preprocess
    if steps:
        if steps == "auto":
            steps, choices["preprocess_scores"] = choose_preprocessing(
                X[fitted],
                y[fitted],
                shifts,
                None if groups is None else groups[fitted],
                seed=seed,
                by_group=name.endswith(BY_GROUP),
                epo=name.removesuffix(BY_GROUP).endswith(EPO),
            )
        choices["preprocess"] = steps
        rest = np.setdiff1d(np.arange(len(X)), fitted)
        parts = preprocess(steps, X[fitted], shifts, *([X[rest]] if len(rest) else []))
        X_all = np.empty((len(X), parts[0].shape[1]), dtype=np.float32)
        X_all[fitted] = parts[0]
        if len(rest):
            X_all[rest] = parts[1]
        X = X_all
    if options.tune:
        options, choices["tuned"], choices["tune_scores"] = choose_options(
            name, task, options, X[train], y[train], None if groups is None else groups[train], seed=seed
        )
    estimator = make_estimator(name, task, options, seed, saved=saved)

    def fit(rows):
        return fit_estimator(estimator, X[rows], y[rows], None if groups is None else groups[rows])

    if pretrain is None:
        fit(train)
    elif "warm_start" in estimator.get_params():
        fit(pretrain).set_params(warm_start=True)
        fit(train)
    else:
        fit(fitted)
    # what chose, also inside +by_group and +epo (whose fitted model is base_)
    chooser = estimator if hasattr(estimator, "chosen_") else getattr(estimator, "base_", estimator)
    if hasattr(chooser, "chosen_"):
        choices["model_chosen"] = chooser.chosen_
        if hasattr(chooser, "seconds_"):  # auto: each candidate's inner score and the seconds it took
            choices["model_scores"] = {
                name: round(score, 4) if np.isfinite(score) else None for name, score in chooser.scores_.items()
            }
            choices["model_seconds"] = {name: round(s, 1) for name, s in chooser.seconds_.items()}
    if getattr(chooser, "untried_", None):
        choices["model_untried"] = chooser.untried_  # the budget ran out before them
    return Recipe(estimator, X, steps, choices)
