"""A saved model: weights as safetensors, everything else as JSON, the reference library as .npz.

Loading never unpickles: weights go through safetensors, arrays through ``np.load(allow_pickle=False)``.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import unicodedata
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ramanid import confidence as conf
from ramanid.atomic import atomic_folder
from ramanid.classical import LibrarySearch, SpectralScore
from ramanid.errors import DatasetError, ModelError, RamanIdError
from ramanid.evaluation.metrics import element_metrics, json_ready, multiclass_metrics
from ramanid.models import user_models
from ramanid.preprocessing.grid import MAX_POINTS
from ramanid.spectra import SpectraSet
from ramanid.targets import Task, element_matrix
from ramanid.training.auto import choose_options, choose_preprocessing, preprocess
from ramanid.training.blend import VOTE_SUFFIX, NetworkAndVote
from ramanid.training.estimators import ESTIMATORS
from ramanid.training.factory import Options, make_estimator
from ramanid.training.identifier import LibraryIdentifier

FORMAT = "ramanid.bundle"
#: 2: the folder is written whole, and bundle.json holds the SHA-256 of the other files
VERSION = 2
HEADER, WEIGHTS, LIBRARY = "bundle.json", "weights.safetensors", "library.npz"
#: the unknown scores a model folder may name (see ramanid.confidence.unknown_candidates)
UNKNOWN_SCORES = (
    "library cosine",
    "max softmax",
    "energy",
    "nearest embedding",
    "Mahalanobis",
    "best identifier score",
)
LIBRARY_COLUMNS = ("mineral", "rruff_id", "file", "label", "chemistry", "measured_chemistry")
#: per task kind, the columns whose groups a saved model's validation split holds out whole, first
#: found first; element thresholds are meant for minerals the network has never seen, so an element
#: model is validated on whole minerals
VALIDATION_GROUPS = {"label": ("rruff_id", "group"), "elements": ("mineral", "rruff_id")}


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

    @cached_property
    def labels(self) -> np.ndarray:
        """The label of each reference spectrum of the library."""
        column = "label" if "label" in self.library_meta else "mineral"
        if column not in self.library_meta:
            return np.full(len(self.library), "?")
        return self.library_meta[column].astype(str).to_numpy()

    @property
    def identifier(self) -> LibraryIdentifier | None:
        """For a library identifier (``ramanid library build``): the network with every reference
        of the library, added ones included; None for other models.
        """
        if "identifier" not in self.info:
            return None
        if self._identifier is None:
            saved = self.info["identifier"]
            self._identifier = LibraryIdentifier.from_parts(
                self.estimator, self.library, self.labels, saved["alpha"], SpectralScore(**saved["spectral"])
            )
        return self._identifier

    _identifier: LibraryIdentifier | None = field(default=None, repr=False)

    @cached_property
    def library_embeddings(self) -> np.ndarray | None:
        """The network's embedding of every library spectrum (networks with one; else None)."""
        network = getattr(self.estimator, "model_", None)
        return self.estimator.transform(self.library) if hasattr(network, "embed") else None

    @cached_property
    def formulas(self) -> dict[str, str]:
        """Each library label's chemistry formula, where the library has them."""
        if "chemistry" not in self.library_meta:
            return {}
        return dict(zip(self.labels, self.library_meta["chemistry"].astype(str), strict=True))


def save_bundle(folder: str | Path, estimator, info: dict, library: np.ndarray, library_meta: pd.DataFrame) -> Path:
    """Write a model folder. ``info`` is JSON-ready (task, shifts, preprocessing, metrics, ...).

    The folder is written whole or not at all (:func:`~ramanid.atomic.atomic_folder`), and
    ``bundle.json`` records the SHA-256 of the other two files, which :func:`load_bundle` checks.
    """
    from ramanid import __version__

    state, tensors = estimator.get_state()
    with atomic_folder(folder) as tmp:
        save_file(tensors, str(tmp / WEIGHTS))
        columns = [c for c in LIBRARY_COLUMNS if c in library_meta]
        with open(tmp / LIBRARY, "wb") as fh:
            np.savez_compressed(
                fh,
                intensities=np.asarray(library, dtype=np.float32),
                meta=np.array(library_meta[columns].astype(str).to_json(orient="split")),
            )
        content = {name: _sha256(tmp / name) for name in (WEIGHTS, LIBRARY)}
        header = {"format": FORMAT, "version": VERSION, "ramanid_version": __version__, "content": content}
        (tmp / HEADER).write_text(json.dumps({**info, **state, **header}, indent=1))
        for name in (WEIGHTS, LIBRARY, HEADER):
            os.chmod(tmp / name, 0o644)
    return Path(folder)


def load_bundle(folder: str | Path) -> Bundle:
    """Load a model folder written by :func:`save_bundle`, with a clear error for any problem."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BundleError(f"{folder}: no such model folder: expected one written by 'ramanid train'")
    for name in (HEADER, WEIGHTS, LIBRARY):
        if not (folder / name).is_file():
            raise BundleError(f"{folder}: {name} is missing: the model folder is incomplete")
    try:
        info = json.loads((folder / HEADER).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{folder / HEADER}: not valid JSON ({exc})") from exc
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        kind = info.get("format") if isinstance(info, dict) else type(info).__name__
        raise BundleError(f"{folder / HEADER}: not a ramanid model (format={kind!r})")
    if info.get("version") != VERSION:
        raise BundleError(
            f"{folder}: bundle version {info.get('version')} needs another ramanid "
            f"(this one reads version {VERSION}; it was written by ramanid {info.get('ramanid_version')}): "
            "train the model again"
        )
    check_header(info, folder / HEADER)
    for name, digest in info["content"].items():
        if _sha256(folder / name) != digest:
            raise BundleError(f"{folder / name}: does not match bundle.json (a damaged or mixed model folder)")
    try:
        tensors = load_file(str(folder / WEIGHTS))
    except (SafetensorError, OSError, ValueError) as exc:
        raise BundleError(f"{folder / WEIGHTS}: damaged weights ({exc})") from exc
    broken = next((k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()), None)
    if broken is not None:
        raise BundleError(f"{folder / WEIGHTS}: {broken} holds NaN or infinite values")
    try:
        estimator = ESTIMATORS[info["estimator"]].from_state(info, tensors, source=str(folder))
    except (KeyError, TypeError) as exc:
        raise BundleError(f"{folder / 'bundle.json'}: missing or malformed field {exc}") from exc
    except ModelError as exc:
        raise BundleError(str(exc)) from exc
    try:
        with np.load(folder / "library.npz", allow_pickle=False) as data:
            library = data["intensities"]
            library_meta = pd.read_json(io.StringIO(str(data["meta"])), orient="split", dtype=str)
    except (OSError, KeyError, ValueError) as exc:
        raise BundleError(f"{folder / LIBRARY}: damaged reference library ({exc})") from exc
    if library.ndim != 2 or library.shape[1] != info["n_features"] or len(library_meta) != len(library):
        raise BundleError(
            f"{folder / LIBRARY}: {library.shape} spectra and {len(library_meta)} rows do not fit "
            f"{info['n_features']} points"
        )
    if "blend" in info:
        references = SpectraSet(np.asarray(info["shifts"]), library, library_meta)
        try:
            presence, _ = element_matrix(references, estimator.elements_, info["task"]["chemistry"])
        except DatasetError as exc:
            raise BundleError(f"{folder / LIBRARY}: the blend's references have no formulas ({exc})") from exc
        estimator = NetworkAndVote.from_parts(estimator, library, presence, info["blend"])
    return Bundle(estimator, info, library, library_meta, folder)


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
    scores = identifier._best_per_class(
        identifier.similarity(spectra.intensities[val], references=train), identifier.reference_class_[train]
    )
    scores[~np.isfinite(scores)] = -1.0  # minerals with no training reference
    codes = identifier.reference_class_[val]
    known = np.isin(labels[val], labels[train])
    temperature = conf.fit_temperature(scores[known], codes[known])
    proba = conf.calibrated(scores[known], temperature)
    unknown_score = 1 - scores.max(axis=1)
    meta = spectra.meta.copy()
    meta["label"] = labels
    info = {
        "task": {"kind": "label", "column": "mineral", "elements": []},
        "identifier": {
            "alpha": identifier.alpha_,
            "alpha_validation": getattr(identifier, "alpha_validation_", {}),
            "spectral": asdict(identifier.spectral_),
            "spectral_validation": getattr(identifier, "spectral_validation_", {}),
            "validation_spectra": int(len(val)),
        },
        "shifts": spectra.shifts.tolist(),
        "method": spectra.info.get("method", "linear"),
        "preprocess": spectra.info.get("preprocess", "minmax"),
        "data": {"n_spectra": len(spectra), "classes": int(len(identifier.classes_)), "built_with": spectra.info},
        "validation": {"n_spectra": int(len(val)), "grouped_by": "rruff_id" if groups is not None else None},
        "ood": {
            "score": "best identifier score",
            "accept_known": conf.ACCEPT_KNOWN,
            "threshold": _finite(np.quantile(unknown_score[known], conf.ACCEPT_KNOWN) if known.any() else 1.0),
        },
        "calibration": {
            "temperature": temperature,
            "conformal_scores": np.sort(conf.conformity_scores(proba, codes[known])).tolist(),
        },
    }
    log(
        f"trained on {len(spectra)} spectra of {len(identifier.classes_)} minerals; alpha {identifier.alpha_} and "
        f"spectral score (power {identifier.spectral_.power:g}, derivative window {identifier.spectral_.window}) "
        f"chosen on {len(val)} held-out spectra"
    )
    save_bundle(folder, identifier.network_, info, spectra.intensities, meta)
    return load_bundle(folder)


def add_references(bundle: Bundle, X: np.ndarray, meta: pd.DataFrame, log=print) -> Bundle:
    """Add reference spectra (already on the bundle's grid and preprocessed) to a saved model's
    library; names that differ from a known one only in case or accents are merged into it, with
    a warning. The network is not retrained. Returns the reloaded bundle.
    """
    known = {_plain_name(name): name for name in np.unique(bundle.labels)}
    names = []
    for name in meta["label"].astype(str):
        same = known.get(_plain_name(name), name)
        if same != name:
            log(f"warning: {name!r} is merged with the library's {same!r}")
        known.setdefault(_plain_name(name), name)
        names.append(same)
    meta = meta.assign(label=names, mineral=names)
    library = np.vstack([bundle.library, np.asarray(X, dtype=np.float32)])
    library_meta = pd.concat(
        [bundle.library_meta, meta.reindex(columns=bundle.library_meta.columns)], ignore_index=True
    ).fillna("")
    info = {
        **bundle.info,
        "data": {
            **bundle.info["data"],
            "added_references": int(bundle.info["data"].get("added_references", 0) + len(X)),
        },
    }
    save_bundle(bundle.path, bundle.estimator, info, library, library_meta)
    return load_bundle(bundle.path)


def _plain_name(name: str) -> str:
    """A mineral name without case or accents, for matching ``Rhodochrosite`` with ``rhodochrosite``."""
    decomposed = unicodedata.normalize("NFKD", name.strip())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def check_header(info: dict, source) -> None:
    """Types, ranges and lengths of every ``bundle.json`` field that code reads, checked before
    anything is built; a :class:`BundleError` names the first wrong field.
    """

    def fail(field: str, expected: str):
        raise BundleError(f"{source}: field {field!r} is {json.dumps(info.get(field))[:80]}: expected {expected}")

    def finite(value) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

    def whole(value, low: int, high: int) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high

    def spectral_score(fields: dict) -> bool:
        try:
            SpectralScore(**fields)  # its own checks: power in (0, 1], window 0 or odd
        except ModelError:
            return False
        return True

    if not whole(info.get("n_features"), 2, MAX_POINTS):
        fail("n_features", f"a whole number of points from 2 to {MAX_POINTS}")
    shifts = info.get("shifts")
    if not (
        isinstance(shifts, list)
        and len(shifts) == info["n_features"]
        and all(map(finite, shifts))
        and all(b > a for a, b in zip(shifts, shifts[1:], strict=False))
    ):
        fail("shifts", f"{info['n_features']} finite, increasing shifts")
    outputs = info.get("outputs")
    if not (isinstance(outputs, list) and outputs and all(whole(o, 1, 10**6) for o in outputs)):
        fail("outputs", "a list of network output counts")
    if not isinstance(info.get("params"), dict) or not isinstance(info["params"].get("model"), str):
        fail("params", "the estimator's parameters, with 'model'")
    if not isinstance(info.get("content"), dict) or set(info["content"]) != {WEIGHTS, LIBRARY}:
        fail("content", f"the SHA-256 of {WEIGHTS} and {LIBRARY}")
    task = info.get("task")
    if not isinstance(task, dict) or task.get("kind") not in ("label", "elements"):
        fail("task", "{'kind': 'label' or 'elements', ...}")
    if not isinstance(info.get("estimator"), str) or info["estimator"] not in ESTIMATORS:
        fail("estimator", f"one of {sorted(ESTIMATORS)}")
    classes, thresholds = info.get("classes"), info.get("thresholds")
    if info["estimator"] == "SpectrumClassifier" and not (
        isinstance(classes, list) and len(classes) == outputs[0] and all(isinstance(c, str) for c in classes)
    ):
        fail("classes", f"{outputs[0]} class names")
    if info["estimator"] == "ElementIdentifier" and not (
        isinstance(thresholds, list) and len(thresholds) == sum(outputs) and all(map(finite, thresholds))
    ):
        fail("thresholds", f"{sum(outputs)} finite thresholds, one per element")
    ood = info.get("ood")
    if not isinstance(ood, dict) or not finite(ood.get("threshold")) or ood.get("score") not in UNKNOWN_SCORES:
        fail("ood", f"{{'score': one of {UNKNOWN_SCORES}, 'threshold': a finite number, ...}}")
    calibration = info.get("calibration")
    if calibration is not None and not (
        isinstance(calibration, dict)
        and finite(calibration.get("temperature"))
        and calibration["temperature"] > 0
        and isinstance(calibration.get("conformal_scores"), list)
        and all(map(finite, calibration["conformal_scores"]))
    ):
        fail("calibration", "{'temperature': a positive number, 'conformal_scores': a list of numbers}")
    blend = info.get("blend")
    if blend is not None and not (
        isinstance(blend, dict)
        and finite(blend.get("weight"))
        and 0 <= blend["weight"] <= 1
        and whole(blend.get("k"), 1, 10**6)
        and isinstance(blend.get("thresholds"), list)
        and len(blend["thresholds"]) == sum(outputs)
        and all(map(finite, blend["thresholds"]))
        and isinstance(task.get("chemistry"), str)
    ):
        fail("blend", "{'weight': in [0, 1], 'k': neighbours >= 1, 'thresholds': one per element}")
    if "identifier" in info and not (
        isinstance(info["identifier"], dict)
        and finite(info["identifier"].get("alpha"))
        and 0 <= info["identifier"]["alpha"] <= 1
        and isinstance(spectral := info["identifier"].get("spectral"), dict)
        and set(spectral) == {"power", "window"}
        and finite(spectral["power"])
        and whole(spectral["window"], 0, len(info.get("shifts", ())))
        and spectral_score(spectral)
    ):
        fail(
            "identifier",
            "{'alpha': a weight in [0, 1], 'spectral': {'power': in (0, 1], 'window': 0 or an odd number of points}} "
            "(a folder from before the spectral score: rebuild it with `ramanid library build`)",
        )


def train_bundle(
    spectra, *, task: Task, model: str, options: Options, seed: int, folder: str | Path, log=print
) -> Bundle:
    """Train on all of ``spectra`` and save a model folder.

    An internal validation split, of whole specimens (``rruff_id``), whole groups (the ``group``
    column of ``ramanid build table --group``: cultures, patients), or for elements whole minerals,
    where the set has them,
    serves early stopping, the element thresholds, the temperature of the probabilities
    (Guo et al. 2017), the conformal answer sets (Sadinle et al. 2019) and the unknown flag.
    Holding out whole specimens leaves some minerals out of training altogether; the unknown
    flag uses the score of :func:`ramanid.confidence.unknown_candidates` that best tells those
    from the others on validation, with the threshold that accepts 95% of the known validation
    spectra (so about 5% of new spectra of known minerals are flagged).
    """
    if model.removesuffix(VOTE_SUFFIX) not in user_models():
        raise RamanIdError(
            f"model {model!r} cannot be saved: 'ramanid train' takes the neural models {user_models()} "
            f"(and NETWORK{VOTE_SUFFIX} for elements)"
        )
    task = task.resolved(spectra)
    spectra, y = task.labelled(spectra, log)
    if options.ensemble > 1:
        raise RamanIdError("a saved model holds one network: train it with ensemble=1")
    X = spectra.intensities
    grouped_by = next((column for column in VALIDATION_GROUPS[task.kind] if column in spectra.meta), None)
    groups = spectra.meta[grouped_by].astype(str).to_numpy() if grouped_by else None
    steps = options.preprocess
    if steps == "auto":
        steps, scores = choose_preprocessing(X, y, spectra.shifts, groups, seed=seed)
        log(f"preprocessing chosen by inner cross-validation: {steps!r} ({json.dumps(scores)})")
    X = preprocess(steps, X, spectra.shifts)[0]
    tuned = None
    if options.tune:
        options, chosen, tuned = choose_options(model, task, options, X, y, groups, seed=seed)
        log(f"options chosen by inner cross-validation: {json.dumps(chosen)} (every score: {json.dumps(tuned)})")
    estimator = make_estimator(model, task, options, seed)
    estimator.fit(X, y, groups=groups)
    val = estimator.validation_index_
    train = np.setdiff1d(np.arange(len(X)), val)
    labels = (
        spectra.meta[task.column].astype(str).to_numpy()
        if task.column
        else spectra.meta.get("mineral", pd.Series(["?"] * len(X))).astype(str).to_numpy()
    )
    similarity = LibrarySearch("cosine").fit(X[train], labels[train]).similarity(X[val]).max(axis=1)
    calibration = None
    if task.kind == "elements":
        # a blend's vote keeps the validation spectra as references once fitted: its validation
        # scores are those of the choice, made with the other spectra as references
        scores = getattr(estimator, "validation_scores_", None)
        scores = estimator.predict_proba(X[val]) if scores is None else scores
        metrics = element_metrics(y[val], scores, estimator.thresholds_, task.elements)
        candidates, unknown = {"library cosine": 1 - similarity}, np.zeros(len(val), dtype=bool)
    else:
        logits = estimator.logits(X[val])
        codes = np.searchsorted(estimator.classes_, y[val])
        # a specimen-grouped split leaves some minerals out of training: the temperature and the
        # conformal sets are for minerals the network knows, so they are fitted on those spectra
        unknown = ~np.isin(y[val], y[train])
        known = ~unknown
        temperature = conf.fit_temperature(logits[known], codes[known])
        proba = conf.calibrated(logits, temperature)
        metrics = {
            **multiclass_metrics(y[val], proba, estimator.classes_),
            "ece_before": conf.expected_calibration_error(conf.calibrated(logits[known], 1.0), codes[known]),
            "ece_after": conf.expected_calibration_error(proba[known], codes[known]),
        }
        calibration = {
            "temperature": temperature,
            "conformal_scores": np.sort(conf.conformity_scores(proba[known], codes[known])).tolist(),
        }
        embedded = hasattr(estimator.model_, "embed")
        candidates = conf.unknown_candidates(
            logits,
            similarity,
            estimator.transform(X[val]) if embedded else None,
            estimator.transform(X[train]) if embedded else None,
            labels[train],
        )
    name, threshold, auroc = conf.choose_unknown_score(candidates, unknown)
    log(
        f"unknown flag: {name} (validation AUROC {auroc.get(name, float('nan')):.3f} on {int(unknown.sum())} "
        f"spectra of minerals left out of training)"
        if auroc
        else f"unknown flag: {name}"
    )
    meta = spectra.meta.copy()
    meta["label"] = labels
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
        "preprocess": _chained(spectra.info.get("preprocess", "minmax"), steps),
        "data": {"n_spectra": len(X), "classes": int(len(np.unique(labels))), "built_with": spectra.info},
        "validation": {
            "n_spectra": int(len(val)),
            "grouped_by": grouped_by,
            "metrics": json_ready(metrics),
        },
        "ood": {
            "score": name,
            "threshold": _finite(threshold),
            "accept_known": conf.ACCEPT_KNOWN,
            "validation_auroc": auroc,
            "validation_unknown_spectra": int(unknown.sum()),
        },
        **({"calibration": calibration} if calibration else {}),
        **({"tuned": tuned} if tuned else {}),
    }
    save_bundle(folder, estimator, info, X, meta)
    return load_bundle(folder)


def _chained(built: str | None, steps: str | None) -> str | None:
    """The preprocessing a new spectrum needs: the set's own steps, then the model's."""
    parts = [p for p in (built, steps) if p and p != "none"]
    return ", ".join(parts) or None


def _finite(value: float) -> float:
    return float(value) if np.isfinite(value) else 1e9


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()
