"""Cross-validation: every model on the same folds, folds in parallel (joblib or dask), resumable."""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from joblib import Parallel, delayed
from sklearn.ensemble import VotingClassifier

from ramanid.chemistry import DEFAULT_ELEMENTS
from ramanid.classical import ClassicalElementIdentifier, classical_model
from ramanid.errors import DatasetError, ModelError, RamanIdError
from ramanid.evaluation.metrics import aggregate, element_metrics, json_ready, multiclass_metrics
from ramanid.evaluation.splits import Split
from ramanid.io.atomic import atomic_write
from ramanid.models import MODELS
from ramanid.spectra import SpectraSet
from ramanid.targets import element_matrix, label_vector

CLASSICAL = ("lr", "svm", "knn", "rf", "pca_lr", "library")
#: networks whose width is one integer ``hidden`` (the reference's --hidden option)
TAKES_HIDDEN = {"attention_resnet", "seed_attention", "ho2019_resnet", "ramannet"}


@dataclass(frozen=True)
class Task:
    """``mineral`` (multiclass), ``elements`` (multi-label) or ``label:COLUMN`` (any column)."""

    kind: str
    column: str | None = None
    elements: tuple[str, ...] = DEFAULT_ELEMENTS

    @classmethod
    def parse(cls, spec: str, elements: Sequence[str] = DEFAULT_ELEMENTS) -> "Task":
        kind, _, column = spec.partition(":")
        if kind == "mineral":
            return cls("label", "mineral")
        if kind == "elements":
            return cls("elements", None, tuple(elements))
        if kind == "label" and column:
            return cls("label", column)
        raise RamanIdError(f"unknown task {spec!r}: expected mineral, elements or label:COLUMN")

    def targets(self, spectra: SpectraSet) -> tuple[np.ndarray, np.ndarray]:
        """(targets, mask of usable spectra)."""
        if self.kind == "elements":
            return element_matrix(spectra, self.elements)
        return label_vector(spectra, self.column), np.ones(len(spectra), dtype=bool)


@dataclass
class Options:
    """Training options shared by every neural model; ``None`` keeps the model's default.

    ``ensemble=N`` trains N copies of each network from seeds ``seed .. seed+N-1`` and averages
    their probabilities (a deep ensemble, Lakshminarayanan et al. 2017); label tasks only.
    """

    epochs: int = 100
    lr: float | None = None
    weight_decay: float | None = None
    hidden: int | None = None
    batch_size: int | None = None
    device: str | None = None
    precision: str = "auto"
    ensemble: int = 1
    extra: dict = field(default_factory=dict)


def make_estimator(name: str, task: Task, options: Options, seed: int):
    """The estimator for a model name and task."""
    from ramanid.training.estimators import ElementIdentifier, SpectrumClassifier

    if name in CLASSICAL:
        if task.kind == "elements":
            return ClassicalElementIdentifier(task.elements, base=name, random_state=seed)
        return classical_model(name, random_state=seed)
    if name not in MODELS:
        raise RamanIdError(f"unknown model {name!r}: expected one of {sorted(MODELS) + list(CLASSICAL)}")
    model_params = {}
    if options.hidden is not None and name in TAKES_HIDDEN:
        model_params["hidden"] = options.hidden
    common = dict(model=name, model_params=model_params or None, epochs=options.epochs, lr=options.lr,
                  weight_decay=options.weight_decay, batch_size=options.batch_size, device=options.device,
                  precision=options.precision, random_state=seed, **options.extra)
    if task.kind == "elements":
        if options.ensemble > 1:
            raise ModelError("ensembles are for mineral and label tasks: each element network chooses its "
                             "thresholds on its own validation split")
        return ElementIdentifier(elements=task.elements, **common)
    if options.ensemble > 1:
        members = [(f"seed{seed + i}", SpectrumClassifier(**{**common, "random_state": seed + i}))
                   for i in range(options.ensemble)]
        return VotingClassifier(members, voting="soft")
    return SpectrumClassifier(**common)


def run_fold(X, y, train, test, name: str, task: Task, options: Options, seed: int, classes, threads: int = 0,
             pretrain=None):
    """Fit on ``train``, score ``test``; returns a JSON-ready record.

    With ``pretrain`` rows (the Bacteria-ID protocol of Ho et al. 2019), a network is first fitted
    on them and then fine-tuned on ``train`` (``warm_start``); a classical model, which has
    nothing to fine-tune, is fitted on both.
    """
    import torch

    if threads:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    estimator = make_estimator(name, task, options, seed)
    if pretrain is None:
        estimator.fit(X[train], y[train])
    elif "warm_start" in estimator.get_params():
        estimator.fit(X[pretrain], y[pretrain]).set_params(warm_start=True).fit(X[train], y[train])
    else:
        both = np.concatenate([pretrain, train])
        estimator.fit(X[both], y[both])
    if task.kind == "elements":
        scores = estimator.predict_proba(X[test])
        metrics = element_metrics(y[test], scores, estimator.thresholds_, task.elements)
        extra = {"scores": scores.round(5).tolist(), "truth": y[test].tolist()}
    else:
        proba = estimator.predict_proba(X[test])
        full = np.zeros((len(test), len(classes)))
        full[:, np.searchsorted(classes, estimator.classes_)] = proba
        metrics = multiclass_metrics(y[test], full, classes)
        extra = {}
    sizes = {"train_size": int(len(train)), "test_size": int(len(test))}
    if pretrain is not None:
        sizes["pretrain_size"] = int(len(pretrain))
    return {"model": name, **sizes, "metrics": json_ready(metrics), "wall_s": time.perf_counter() - start, **extra}


def run_cv(spectra: SpectraSet, task: Task | str = "mineral", models: Sequence[str] = ("ramannet",),
           split: Split | str = "stratified", folds: int = 5, seed: int = 0, options: Options | None = None,
           n_jobs: int = 1, backend: str = "joblib", scheduler: str | None = None,
           cache_dir: str | Path | None = None, log=print) -> dict:
    """Cross-validate ``models`` on ``spectra``; every model runs on the same folds.

    Parameters
    ----------
    task : Task or str
        ``mineral``, ``elements`` or ``label:COLUMN``.
    split : Split or str
        See :mod:`ramanid.evaluation.splits`.
    n_jobs : int
        Folds run in parallel (joblib processes); each gets ``cores // n_jobs`` torch threads.
    backend : {"joblib", "dask"}
        ``dask`` sends the folds to the dask.distributed scheduler at ``scheduler``.
    cache_dir : path, optional
        Finished folds are stored here and reused, so an interrupted run resumes.
    """
    import os

    task = Task.parse(task) if isinstance(task, str) else task
    split = Split.parse(split, folds, seed) if isinstance(split, str) else split
    options = options or Options()
    y, usable = task.targets(spectra)
    if not usable.all():
        log(f"{int((~usable).sum())} spectra have no readable chemistry and are left out")
        spectra, y = spectra.subset(usable), y[usable]
    if len(spectra) < 2:
        raise DatasetError("fewer than 2 labelled spectra: nothing to cross-validate")
    X = spectra.intensities
    classes = np.unique(y) if task.kind != "elements" else np.arange(len(task.elements))
    pairs = split.indices(spectra, y)
    pretrain = split.pretrain_indices(spectra)
    if pretrain is not None and options.ensemble > 1:
        raise ModelError("an ensemble cannot be pretrained and fine-tuned yet: use --ensemble 1 with this split")
    # the fingerprint of a fold's work: a model's cached folds stay valid when other models are added
    config = {"task": asdict(task), "split": asdict(split), "options": asdict(options), "data": _fingerprint(spectra)}
    jobs = [(name, i, tr, te) for name in models for i, (tr, te) in enumerate(pairs)]
    cache = None if cache_dir is None else Path(cache_dir)
    results, todo = {}, []
    for name, i, tr, te in jobs:
        cached = _load_cached(cache, name, i, config)
        if cached is not None:
            results[(name, i)] = cached
        else:
            todo.append((name, i, tr, te))
    if len(results):
        log(f"resuming: {len(results)} of {len(jobs)} folds already done")
    threads = max(1, (os.cpu_count() or 1) // max(n_jobs, 1))
    calls = [(X, y, tr, te, name, task, options, seed, classes, threads, pretrain) for name, i, tr, te in todo]
    for (name, i, _, _), record in zip(todo, _execute(calls, n_jobs, backend, scheduler)):
        record["fold"] = i
        results[(name, i)] = record
        _store_cached(cache, name, i, config, record)
        log(f"{name} fold {i + 1}/{len(pairs)}: " + _headline(record, task))
    per_model = {}
    for name in models:
        records = [results[(name, i)] for i in range(len(pairs))]
        per_model[name] = {"folds": records, "summary": _summarise(records, task)}
    return {"config": {**config, "models": list(models)}, "split": split.describe(), "n_spectra": len(spectra),
            "classes": [str(c) for c in classes] if task.kind != "elements" else list(task.elements),
            "models": per_model}


def _execute(calls, n_jobs: int, backend: str, scheduler: str | None):
    """Yield each fold's record as soon as it (and every fold before it) is done, so that it is
    cached at once and an interrupted run loses only the folds in flight."""
    if backend == "dask":
        from dask.distributed import Client

        with Client(scheduler) as client:
            futures = [client.submit(run_fold, *call, pure=False) for call in calls]
            for future in futures:
                yield future.result()
        return
    if backend != "joblib":
        raise RamanIdError(f"unknown backend {backend!r}: expected 'joblib' or 'dask'")
    if n_jobs == 1:
        yield from (run_fold(*call) for call in calls)
    else:
        yield from Parallel(n_jobs=n_jobs, return_as="generator")(delayed(run_fold)(*call) for call in calls)


def _summarise(records: list[dict], task: Task) -> dict:
    if task.kind == "elements":
        summary = {}
        for element in task.elements:
            for key in ("roc_auc", "pr_auc", "accuracy", "sensitivity", "specificity"):
                summary[f"{element}_{key}"] = aggregate([r["metrics"]["elements"][element][key] for r in records])
        for key in ("macro_roc_auc", "macro_pr_auc", "macro_accuracy", "macro_sensitivity", "macro_specificity"):
            summary[key] = aggregate([r["metrics"][key] for r in records])
        return summary
    keys = [k for k, v in records[0]["metrics"].items() if isinstance(v, float)]
    return {k: aggregate([r["metrics"].get(k, np.nan) for r in records]) for k in keys}


def _headline(record: dict, task: Task) -> str:
    m = record["metrics"]
    if task.kind == "elements":
        return "AUC " + ", ".join(f"{e} {m['elements'][e]['roc_auc']:.3f}" for e in task.elements)
    return f"accuracy {m['accuracy']:.3f}" + (f", top-5 {m['top5']:.3f}" if "top5" in m else "")


def _fingerprint(spectra: SpectraSet) -> str:
    digest = hashlib.sha256(spectra.intensities.tobytes())
    digest.update(spectra.shifts.tobytes())
    return digest.hexdigest()[:16]


def _cache_key(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _load_cached(cache: Path | None, name: str, fold: int, config: dict):
    path = None if cache is None else cache / f"{name}__fold{fold}.json"
    if path is None or not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None  # a damaged cache entry is recomputed
    return stored["record"] if stored.get("key") == _cache_key(config) else None


def _store_cached(cache: Path | None, name: str, fold: int, config: dict, record: dict) -> None:
    if cache is None:
        return
    with atomic_write(cache / f"{name}__fold{fold}.json") as tmp:
        tmp.write_text(json.dumps({"key": _cache_key(config), "record": record}))
