"""Cross-validation: every model on the same folds, folds in parallel (joblib or dask), resumable."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np
from joblib import Parallel, delayed

from ramanid.atomic import atomic_write
from ramanid.cores import available_cores
from ramanid.errors import DatasetError, ModelError, RamanIdError
from ramanid.evaluation.metrics import aggregate, element_metrics, multiclass_metrics
from ramanid.evaluation.splits import Split
from ramanid.jsonable import json_ready
from ramanid.spectra import SpectraSet
from ramanid.targets import Task
from ramanid.training.factory import Options, check_model_name
from ramanid.training.recipe import fit_recipe
from ramanid.training.selection import check_tunable


def run_fold(
    X,
    y,
    train,
    test,
    name: str,
    task: Task,
    options: Options,
    seed: int,
    classes,
    threads: int = 0,
    pretrain=None,
    groups=None,
    shifts=None,
):
    """Fit on ``train`` through :func:`~ramanid.training.recipe.fit_recipe` (preprocessing,
    tuning and any pretraining learn from the training rows only; with ``groups``, from whole
    groups), score ``test``; returns a JSON-ready record.
    """
    import torch

    if threads:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    recipe = fit_recipe(
        X, y, train, name=name, task=task, options=options, seed=seed, shifts=shifts, groups=groups, pretrain=pretrain
    )
    estimator, X = recipe.estimator, recipe.X
    metrics, extra = fold_metrics(estimator, X[test], y[test], task, classes)
    variants = {}
    if getattr(estimator, "transductive", False):
        # the test fold scored as one batch flatters a transductive model: score each spectrum alone
        # too, as a user meets it (predict does so)
        variants[ONE_AT_A_TIME] = fold_metrics(estimator, X[test], y[test], task, classes, one_at_a_time=True)
    if hasattr(estimator, "network_"):  # a blend: what its network alone scores on the same fold
        variants[NETWORK_ALONE] = fold_metrics(estimator.network_, X[test], y[test], task, classes)
    if variants:
        extra["variants"] = {label: {"metrics": json_ready(m), **more} for label, (m, more) in variants.items()}
    sizes = {"train_size": int(len(train)), "test_size": int(len(test))}
    history = getattr(estimator, "history_", None)
    if isinstance(history, list) and history and isinstance(history[0], dict):  # a network: epochs it ran
        sizes["epochs_run"] = len(history)
    if pretrain is not None:
        sizes["pretrain_size"] = int(len(pretrain))
    return {
        "model": name,
        **recipe.choices,
        **sizes,
        "metrics": json_ready(metrics),
        "wall_s": time.perf_counter() - start,
        **extra,
    }


#: the other ways a fold is scored, reported as rows "MODEL (LABEL)"
ONE_AT_A_TIME, NETWORK_ALONE = "one spectrum at a time", "its network alone"


def fold_metrics(estimator, X, y, task: Task, classes, one_at_a_time: bool = False) -> tuple[dict, dict]:
    """Metrics of a fitted estimator on ``X`` (and, for elements, the scores for ROC figures)."""
    rows = [X[i : i + 1] for i in range(len(X))] if one_at_a_time else [X]
    proba = np.vstack([estimator.predict_proba(part) for part in rows])
    if task.kind == "elements":
        metrics = element_metrics(y, proba, estimator.thresholds_, task.elements)
        return metrics, {"scores": proba.round(5).tolist(), "truth": y.tolist()}
    full = np.zeros((len(X), len(classes)))
    full[:, np.searchsorted(classes, estimator.classes_)] = proba
    return multiclass_metrics(y, full, classes, positive=task.positive), {}


def run_cv(
    spectra: SpectraSet,
    *,
    task: Task | str = "mineral",
    models: Sequence[str] = ("ramannet",),
    split: Split | str = "stratified",
    folds: int | None = None,
    seed: int = 0,
    options: Options | None = None,
    n_jobs: int = 1,
    backend: str = "joblib",
    scheduler: str | None = None,
    cache_dir: str | Path | None = None,
    log=print,
) -> dict:
    """Cross-validate ``models`` on ``spectra``; every model runs on the same folds.

    Parameters
    ----------
    task : Task or str
        ``mineral``, ``elements`` or ``label:COLUMN``.
    split : Split or str
        See :mod:`ramanid.evaluation.splits`.
    n_jobs : int
        Folds run in parallel (joblib processes); each gets ``cores // n_jobs`` torch threads,
        and the folds of a last, smaller round more (:func:`fold_threads`).
    backend : {"joblib", "dask"}
        ``dask`` sends the folds to the dask.distributed scheduler at ``scheduler``.
    cache_dir : path, optional
        Finished folds are stored here and reused, so an interrupted run resumes.
    """
    task = (Task.parse(task) if isinstance(task, str) else task).resolved(spectra)
    split = Split.parse(split, folds, seed) if isinstance(split, str) else split
    options = options or Options()
    for name in models:  # every name is checked before the first fold runs
        check_model_name(name)
        check_tunable(name, options)
    spectra, y = task.labelled(spectra, log)
    if len(spectra) < 2:
        raise DatasetError("fewer than 2 labelled spectra: nothing to cross-validate")
    X = spectra.intensities
    classes = np.unique(y) if task.kind != "elements" else np.arange(len(task.elements))
    if task.positive is not None and (task.kind == "elements" or task.positive not in classes or len(classes) != 2):
        raise DatasetError(
            f"--positive {task.positive!r}: expected one of the two labels of a binary task, "
            f"have {[str(c) for c in classes][:10]}"
        )
    pairs = split.indices(spectra, y)
    pretrain = split.pretrain_indices(spectra)
    if pretrain is not None and options.ensemble > 1:
        raise ModelError("an ensemble cannot be pretrained and fine-tuned yet: use --ensemble 1 with this split")
    if pretrain is not None and options.tune:
        raise ModelError("--tune chooses on inner folds of one training part: it does not take a pretrain split yet")
    groups = split.groups(spectra) if not split.leaks_groups and split.kind != "predefined" else None
    # the fingerprint of a fold's work: a model's cached folds stay valid when other models are added
    config = {
        "task": asdict(task),
        "split": asdict(split),
        "options": asdict(options),
        "data": _fingerprint(spectra, y, groups),
    }
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
    threads = fold_threads(len(todo), n_jobs, available_cores())
    calls = [
        (X, y, tr, te, name, task, options, seed, classes, n, pretrain, groups, spectra.shifts)
        for (name, i, tr, te), n in zip(todo, threads, strict=True)
    ]
    for (name, i, _, _), record in zip(todo, _execute(calls, n_jobs, backend, scheduler), strict=False):
        record["fold"] = i
        results[(name, i)] = record
        _store_cached(cache, name, i, config, record)
        log(f"{name} fold {i + 1}/{len(pairs)}: " + _headline(record, task))
    per_model = {}
    for name in models:
        records = [results[(name, i)] for i in range(len(pairs))]
        per_model[name] = {"folds": records, "summary": _summarise(records, task)}
        for label in records[0].get("variants", {}):
            variant = [
                {**{k: v for k, v in r.items() if k != "variants"}, **r["variants"][label], "variant": label}
                for r in records
            ]
            per_model[f"{name} ({label})"] = {"folds": variant, "summary": _summarise(variant, task)}
    return {
        "config": {**config, "models": list(models)},
        "split": split.describe(),
        "n_spectra": len(spectra),
        "classes": [str(c) for c in classes] if task.kind != "elements" else list(task.elements),
        "models": per_model,
        "positive": (str(task.positive) if task.positive is not None else str(classes[1]))
        if task.kind != "elements" and len(classes) == 2
        else None,
    }


def fold_threads(folds: int, n_jobs: int, cores: int) -> list[int]:
    """The torch threads of each of ``folds`` folds run ``n_jobs`` at a time on ``cores``:
    ``cores // n_jobs`` each, and the folds of a last, smaller round share the cores among
    fewer (5 folds, 2 at a time on 2 cores: the fifth runs alone, on both).
    """
    jobs = max(1, min(n_jobs, folds))
    last = folds % jobs
    threads = [max(1, cores // jobs)] * (folds - last)
    return threads + ([max(1, cores // last)] * last if last else [])


def _execute(calls, n_jobs: int, backend: str, scheduler: str | None):
    """Yield each fold's record as soon as it (and every fold before it) is done, so that it is
    cached at once and an interrupted run loses only the folds in flight.
    """
    if backend == "dask":
        from ramanid.cluster import dask_client, on_worker

        with dask_client(scheduler=scheduler) as client:
            futures = [client.submit(on_worker, run_fold, *call, pure=False) for call in calls]
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


def _fingerprint(spectra: SpectraSet, y: np.ndarray, groups: np.ndarray | None) -> str:
    """Everything about the data that changes a fold's result: intensities, axis, targets, groups,
    and the ramanid version that computes it.
    """
    from ramanid import __version__

    digest = hashlib.sha256(__version__.encode())
    digest.update(spectra.intensities.tobytes())
    digest.update(spectra.shifts.tobytes())
    for values in (y, groups):
        digest.update(json.dumps(None if values is None else np.asarray(values).tolist(), default=str).encode())
    return digest.hexdigest()[:16]


def _cache_key(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _load_cached(cache: Path | None, name: str, fold: int, config: dict):
    path = None if cache is None else cache / f"{name}__fold{fold}.json"
    if path is None or not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None  # a damaged cache entry is recomputed
    if not isinstance(stored, dict) or not isinstance(stored.get("record"), dict):
        return None
    return stored["record"] if stored.get("key") == _cache_key(config) else None


def _store_cached(cache: Path | None, name: str, fold: int, config: dict, record: dict) -> None:
    if cache is None:
        return
    with atomic_write(cache / f"{name}__fold{fold}.json") as tmp:
        tmp.write_text(json.dumps({"key": _cache_key(config), "record": record}))
