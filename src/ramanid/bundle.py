"""A saved model: weights as safetensors, everything else as JSON, the reference library as .npz.

Loading never unpickles: weights go through safetensors, arrays through ``np.load(allow_pickle=False)``.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ramanid.errors import RamanIdError
from ramanid.io.atomic import atomic_write
from ramanid.models import MODELS, build_model

FORMAT = "ramanid.bundle"
VERSION = 1
LIBRARY_COLUMNS = ("mineral", "rruff_id", "file", "label", "chemistry")


class BundleError(RamanIdError):
    """A model folder that is missing, damaged or made by an incompatible ramanid."""


@dataclass
class Bundle:
    """What :func:`load_bundle` returns: the fitted estimator, its description and the library."""

    estimator: object
    info: dict
    library: np.ndarray
    library_meta: pd.DataFrame
    path: Path

    @property
    def shifts(self) -> np.ndarray:
        return np.asarray(self.info["shifts"], dtype=np.float64)


def save_bundle(folder: str | Path, estimator, info: dict, library: np.ndarray, library_meta: pd.DataFrame) -> Path:
    """Write a model folder. ``info`` is JSON-ready (task, shifts, preprocessing, metrics, ...)."""
    from ramanid import __version__

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if hasattr(estimator, "models_"):  # one network for all elements, or one per element
        models = estimator.models_
        outputs = [len(estimator.elements_) // len(models)] * len(models)
    else:
        models, outputs = [estimator.model_], [len(estimator.classes_)]
    tensors = {f"net{i}.{k}": v.detach().cpu().contiguous() for i, m in enumerate(models)
               for k, v in m.state_dict().items()}
    with atomic_write(folder / "weights.safetensors") as tmp:
        save_file(tensors, str(tmp))
    columns = [c for c in LIBRARY_COLUMNS if c in library_meta]
    with atomic_write(folder / "library.npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, intensities=np.asarray(library, dtype=np.float32),
                                meta=np.array(library_meta[columns].astype(str).to_json(orient="split")))
    header = {
        "format": FORMAT, "version": VERSION, "ramanid_version": __version__,
        "estimator": type(estimator).__name__, "params": _json_params(estimator.get_params()),
        "n_features": int(estimator.n_features_in_), "n_networks": len(models),
        "outputs": outputs,
        "classes": [str(c) for c in getattr(estimator, "classes_", [])],
        "thresholds": [float(t) for t in getattr(estimator, "thresholds_", [])],
        **info,
    }
    with atomic_write(folder / "bundle.json") as tmp:
        tmp.write_text(json.dumps(header, indent=1))
    return folder


def load_bundle(folder: str | Path) -> Bundle:
    """Load a model folder written by :func:`save_bundle`, with a clear error for any problem."""
    from ramanid.training.estimators import ElementIdentifier, SpectrumClassifier

    folder = Path(folder)
    if not folder.is_dir():
        raise BundleError(f"{folder}: no such model folder: expected one written by 'ramanid train'")
    for name in ("bundle.json", "weights.safetensors", "library.npz"):
        if not (folder / name).is_file():
            raise BundleError(f"{folder}: {name} is missing: the model folder is incomplete")
    try:
        info = json.loads((folder / "bundle.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{folder / 'bundle.json'}: not valid JSON ({exc})") from exc
    if info.get("format") != FORMAT:
        raise BundleError(f"{folder / 'bundle.json'}: not a ramanid model (format={info.get('format')!r})")
    if info.get("version") != VERSION:
        raise BundleError(f"{folder}: bundle version {info.get('version')} needs another ramanid "
                          f"(this one reads version {VERSION}; it was written by ramanid {info.get('ramanid_version')})")
    kinds = {"SpectrumClassifier": SpectrumClassifier, "ElementIdentifier": ElementIdentifier}
    if info.get("estimator") not in kinds:
        raise BundleError(f"{folder}: unknown estimator {info.get('estimator')!r}")
    estimator = kinds[info["estimator"]](**_restore_params(info["params"]))
    try:
        tensors = load_file(str(folder / "weights.safetensors"))
    except (SafetensorError, OSError, ValueError) as exc:
        raise BundleError(f"{folder / 'weights.safetensors'}: damaged weights ({exc})") from exc
    networks = []
    for i, outputs in enumerate(info["outputs"]):
        net = build_model(info["params"]["model"], info["n_features"], outputs, **(info["params"]["model_params"] or {}))
        state = {k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith(f"net{i}.")}
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            raise BundleError(f"{folder}: the weights do not fit the model {info['params']['model']!r} ({exc})") from exc
        networks.append(net.eval())
    estimator.n_features_in_ = info["n_features"]
    if info["estimator"] == "ElementIdentifier":
        estimator.models_, estimator.elements_ = networks, list(info["params"]["elements"])
        estimator.thresholds_ = np.asarray(info["thresholds"])
    else:
        estimator.model_, estimator.classes_ = networks[0], np.asarray(info["classes"])
    try:
        with np.load(folder / "library.npz", allow_pickle=False) as data:
            library = data["intensities"]
            library_meta = pd.read_json(io.StringIO(str(data["meta"])), orient="split", dtype=str)
    except (OSError, KeyError, ValueError) as exc:
        raise BundleError(f"{folder / 'library.npz'}: damaged reference library ({exc})") from exc
    return Bundle(estimator, info, library, library_meta, folder)


def _json_params(params: dict) -> dict:
    return json.loads(json.dumps(params, default=lambda v: list(v) if isinstance(v, (tuple, set)) else str(v)))


def _restore_params(params: dict) -> dict:
    params = dict(params)
    if params.get("elements") is not None:
        params["elements"] = tuple(params["elements"])
    return params


#: the share of validation spectra allowed below each of the two out-of-distribution thresholds
OOD_QUANTILE = 0.01


def train_bundle(spectra, task, model: str, options, seed: int, folder: str | Path, log=print) -> Bundle:
    """Train on all of ``spectra`` (an internal validation split serves early stopping and the
    thresholds), calibrate the out-of-distribution flag on that validation split, and save.

    A spectrum is flagged "unknown" when its best cosine similarity to the training spectra, or
    (for classes) the model's top probability (Hendrycks & Gimpel 2017), falls below the 1st
    percentile of the same score on the validation spectra; so about 2% of in-distribution
    spectra are flagged.
    """
    from ramanid.classical import LibrarySearch
    from ramanid.evaluation.metrics import element_metrics, json_ready, multiclass_metrics
    from ramanid.evaluation.protocol import make_estimator

    y, usable = task.targets(spectra)
    if not usable.all():
        log(f"{int((~usable).sum())} spectra have no readable chemistry and are left out")
        spectra, y = spectra.subset(usable), y[usable]
    if model not in MODELS:
        raise RamanIdError(f"model {model!r} cannot be saved: 'ramanid train' takes the neural models {sorted(MODELS)}")
    if options.ensemble > 1:
        raise RamanIdError("a saved model holds one network: train it with ensemble=1")
    estimator = make_estimator(model, task, options, seed)
    X = spectra.intensities
    estimator.fit(X, y)
    val = estimator.validation_index_
    train = np.setdiff1d(np.arange(len(X)), val)
    labels = spectra.meta[task.column].astype(str).to_numpy() if task.column else spectra.meta.get(
        "mineral", pd.Series(["?"] * len(X))).astype(str).to_numpy()
    proba = estimator.predict_proba(X[val])
    if task.kind == "elements":
        metrics = element_metrics(y[val], proba, estimator.thresholds_, task.elements)
    else:
        metrics = multiclass_metrics(y[val], proba, estimator.classes_)
    similarity = LibrarySearch("cosine").fit(X[train], labels[train]).similarity(X[val]).max(axis=1)
    threshold = float(np.quantile(similarity, OOD_QUANTILE)) if len(similarity) else 0.0
    confidence = None
    if task.kind != "elements" and len(val):
        confidence = float(np.quantile(proba.max(axis=1), OOD_QUANTILE))
    meta = spectra.meta.copy()
    meta["label"] = labels
    info = {
        "task": {"kind": task.kind, "column": task.column, "elements": list(task.elements)},
        "shifts": spectra.shifts.tolist(),
        "method": spectra.info.get("method", "linear"),
        "preprocess": spectra.info.get("preprocess", "minmax"),
        "data": {"n_spectra": len(X), "classes": int(len(np.unique(labels))), "built_with": spectra.info},
        "validation": {"n_spectra": int(len(val)), "metrics": json_ready(metrics)},
        "ood": {"metric": "cosine", "quantile": OOD_QUANTILE, "threshold": threshold, "confidence": confidence,
                "validation_similarity": {"min": float(similarity.min()), "median": float(np.median(similarity))}
                if len(similarity) else {}},
    }
    save_bundle(folder, estimator, info, X, meta)
    return load_bundle(folder)
