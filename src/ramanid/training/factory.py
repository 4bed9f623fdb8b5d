"""Estimators by name: the neural models of the registry and the classical baselines, for any task."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

from sklearn.ensemble import VotingClassifier

from ramanid.errors import ModelError
from ramanid.models import MODELS, get_model_spec, user_models
from ramanid.targets import Task
from ramanid.training.baselines import (
    CLASSICAL,
    ELEMENTS_ONLY,
    ClassicalElementIdentifier,
    FormulaVote,
    classical_model,
)
from ramanid.training.blend import VOTE_SUFFIX, NetworkAndVote
from ramanid.training.by_group import BY_GROUP, GroupStandardised
from ramanid.training.classical import SavedClassifier, SavedElements
from ramanid.training.epo import EPO, Orthogonalised
from ramanid.training.estimators import ElementIdentifier, SpectrumClassifier


@dataclass
class Options:
    """Training options shared by every neural model; ``None`` keeps the model's default.

    ``hidden`` sets the width parameter a model registers (``--hidden``); models without one
    ignore it. ``ensemble=N`` trains N copies of each network from seeds ``seed .. seed+N-1``
    and averages their probabilities (a deep ensemble, Lakshminarayanan et al. 2017); label
    tasks only. ``preprocess`` (steps, a preset, or ``"auto"``) runs inside each fold, fitted on
    its training rows. ``tune`` maps option names to values to choose among by inner
    cross-validation on each training part (:func:`ramanid.training.selection.choose_options`).
    ``budget_minutes``: how long ``auto`` may take to choose on each training part.
    """

    epochs: int = 100
    lr: float | None = None
    weight_decay: float | None = None
    hidden: int | None = None
    batch_size: int | None = None
    device: str | None = None
    precision: str = "auto"
    ensemble: int = 1
    preprocess: str | None = None
    tune: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    budget_minutes: float | None = None

    @property
    def budget_s(self) -> float | None:
        return None if self.budget_minutes is None else 60.0 * self.budget_minutes


def model_names() -> list[str]:
    """Every name :func:`make_estimator` takes (besides ``NETWORK+vote``)."""
    return user_models() + list(CLASSICAL)


def check_model_name(name: str) -> None:
    """A :class:`ModelError` unless ``name`` is a registered network, a classical baseline, a
    network blended with the formula vote (``NETWORK+vote``), or either standardised group by
    group (``MODEL+by_group``, :mod:`ramanid.training.by_group`) or with the training groups'
    differences projected out (``MODEL+epo``, :mod:`ramanid.training.epo`).
    """
    name = name.removesuffix(BY_GROUP).removesuffix(EPO)
    network = name.removesuffix(VOTE_SUFFIX)
    if name not in CLASSICAL and (network not in MODELS or MODELS[network].benchmark_only):
        raise ModelError(
            f"unknown model {name!r}: expected one of {model_names()}, or NETWORK{VOTE_SUFFIX} for elements"
        )


def fit_estimator(estimator, X, y, groups=None):
    """``estimator.fit(X, y)``, with ``groups`` where its ``fit`` takes them (to hold out whole
    groups in its internal validation split).
    """
    takes_groups = groups is not None and "groups" in inspect.signature(estimator.fit).parameters
    return estimator.fit(X, y, **({"groups": groups} if takes_groups else {}))


def make_estimator(name: str, task: Task, options: Options, seed: int, saved: bool = False):
    """The estimator for a model name and task; ``saved``: a classical model as a model folder
    holds it (fitted on the training part of an internal validation split, :mod:`ramanid.training.classical`).
    """
    check_model_name(name)
    if name.endswith(BY_GROUP):
        if task.kind == "elements":
            raise ModelError(f"{name} standardises each group's spectra: it is for label tasks")
        return GroupStandardised(make_estimator(name.removesuffix(BY_GROUP), task, options, seed))
    if name.endswith(EPO):
        if saved and name.removesuffix(EPO) in CLASSICAL and task.kind != "elements":
            return SavedClassifier(name, budget=options.budget_s, random_state=seed)
        if task.kind == "elements":
            raise ModelError(f"{name} projects out how each class differs between groups: it is for label tasks")
        return Orthogonalised(make_estimator(name.removesuffix(EPO), task, options, seed))
    if (name in ELEMENTS_ONLY or name.endswith(VOTE_SUFFIX)) and task.kind != "elements":
        raise ModelError(f"{name} votes the elements of the nearest references' formulas: use it with --task elements")
    if name.endswith(VOTE_SUFFIX):
        return NetworkAndVote(make_estimator(name.removesuffix(VOTE_SUFFIX), task, options, seed))
    if name in CLASSICAL:
        params = classical_params(name, options)  # refuses parameters the baseline does not take
        if saved:
            if params:
                raise ModelError(f"a saved {name} takes no --tune model.PARAMETER")
            if task.kind == "elements":
                return SavedElements(name, task.elements, random_state=seed)
            return SavedClassifier(name, budget=options.budget_s, random_state=seed)
        if name == "formula_vote":
            return FormulaVote(task.elements, random_state=seed, **params)
        if task.kind == "elements":
            return ClassicalElementIdentifier(task.elements, base=name, random_state=seed)
        return classical_model(name, random_state=seed, budget=options.budget_s)
    width = get_model_spec(name).width
    extra = dict(options.extra)
    model_params = {
        **(extra.pop("model_params", None) or {}),
        **({width: options.hidden} if options.hidden is not None and width else {}),
    }
    common = dict(
        model=name,
        model_params=model_params or None,
        epochs=options.epochs,
        lr=options.lr,
        weight_decay=options.weight_decay,
        batch_size=options.batch_size,
        device=options.device,
        precision=options.precision,
        random_state=seed,
        **extra,
    )
    if task.kind == "elements":
        if options.ensemble > 1:
            raise ModelError(
                "ensembles are for mineral and label tasks: each element network chooses its "
                "thresholds on its own validation split"
            )
        return ElementIdentifier(elements=task.elements, **common)
    if options.ensemble > 1:
        members = [
            (f"seed{seed + i}", SpectrumClassifier(**{**common, "random_state": seed + i}))
            for i in range(options.ensemble)
        ]
        return VotingClassifier(members, voting="soft")
    return SpectrumClassifier(**common)


def classical_params(name: str, options: Options) -> dict:
    """The parameters ``--tune model.PARAMETER`` sets on a classical baseline; a :class:`ModelError`
    for one it does not take (only ``formula_vote`` takes any: its ``k``, ``power``,
    ``intensity_power`` and ``derivative_window``).
    """
    params = options.extra.get("model_params") or {}
    allowed = {"formula_vote": {"k", "power", "intensity_power", "derivative_window"}}.get(name, set())
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ModelError(
            f"{name} has no parameter {unknown[0]!r}" + (f": it takes {sorted(allowed)}" if allowed else "")
        )
    return params
