"""Loading and saving a model folder: one estimator, restored through the registry of saved
estimators, with its typed header, its reference library and its fitted preprocessing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from ramanid.bundle.folder import HEADER, BundleError, read_content, read_header, write_folder
from ramanid.bundle.header import ModelInfo, check_header, upgraded
from ramanid.bundle.inputs import Inputs, RowInputs, fitted_pipeline, prepare, prepare_rows
from ramanid.errors import ModelError, RamanIdError
from ramanid.search import References
from ramanid.spectra import Spectrum
from ramanid.training.registry import SAVED

#: the subfolder of a class model's folder that may hold an element model of the same inputs,
#: whose probabilities ``predict`` gives as the spectrum's elements
ELEMENTS = "elements"


@dataclass
class Bundle:
    """A loaded model folder: ``estimator`` is the whole model (a classifier, an element model,
    a blend or a library identifier; see :mod:`ramanid.training.saved` for what each answers),
    ``info`` the typed ``bundle.json``, ``references`` its library; ``elements`` the element
    model a class model's folder holds in its ``elements/`` subfolder (:data:`ELEMENTS`), if any.
    """

    estimator: object
    info: ModelInfo
    references: References
    path: Path
    header: dict = field(repr=False)
    pipeline: Pipeline | None = field(default=None, repr=False)
    elements: Bundle | None = field(default=None, repr=False)

    @property
    def shifts(self) -> np.ndarray:
        return self.info.shifts

    @property
    def library(self) -> np.ndarray:
        """The reference spectra, preprocessed, on :attr:`shifts`."""
        return self.references.intensities

    @property
    def library_meta(self) -> pd.DataFrame:
        return self.references.meta

    @property
    def labels(self) -> np.ndarray:
        """The label of each reference spectrum of the library."""
        return self.references.labels

    @cached_property
    def minerals(self) -> int:
        """How many classes the library's references stand for."""
        return int(len(np.unique(self.labels)))

    def prepare_rows(self, shifts: np.ndarray, Y: np.ndarray, fast_baseline: bool = False) -> RowInputs:
        """The rows of a block on one axis as the model's inputs (:func:`ramanid.bundle.inputs.prepare_rows`);
        ``fast_baseline`` removes the baseline with :class:`~ramanid.preprocessing.baseline.OpeningBaseline`
        instead of an iterative Whittaker baseline (map speed), except from rows whose background
        is strong: the opening cannot follow a background many times the bands' height
        (``benchmarks/bench_baselines.py``), so those keep the model's own.
        """
        edge = self.info.filter_edge
        if not fast_baseline:
            return prepare_rows(shifts, Y, self.shifts, self.info.resampling, self.pipeline, filter_edge=edge)
        return prepare_rows(
            shifts, Y, self.shifts, self.info.resampling, self.fast_pipeline, self.pipeline, filter_edge=edge
        )

    @cached_property
    def fast_pipeline(self) -> Pipeline | None:
        """The model's preprocessing with its Whittaker baseline (asls, arpls, airpls) replaced by
        the one-pass morphological baseline ``opening``.
        """
        steps = [
            ["opening", {}] if name in ("asls", "arpls", "airpls") else [name, params]
            for name, params in self.info.preprocess
        ]
        return fitted_pipeline(steps, self.shifts)

    def prepare(self, spectra: list[Spectrum]) -> Inputs:
        """``(X, kept, skipped, quality)``: spectra resampled and preprocessed as the training data
        were (:func:`ramanid.bundle.inputs.prepare`), read from past an edge filter's cut where the
        folder says so.
        """
        return prepare(spectra, self.shifts, self.info.resampling, self.pipeline, self.info.filter_edge)


def save_bundle(folder: str | Path, estimator, info: dict, references: References) -> Path:
    """Write a model folder: the estimator's own state (:meth:`get_state`) and ``info`` (task,
    shifts, preprocessing, calibration, ...; JSON-ready) in ``bundle.json``, its weights, and the
    references. Written whole or not at all, with the SHA-256 of each file.
    """
    state, tensors = estimator.get_state()
    return write_folder(folder, {**info, **state}, tensors, references)


def load_bundle(folder: str | Path) -> Bundle:
    """Load a model folder written by :func:`save_bundle` (or an older ramanid), with one clear
    :class:`BundleError` for any problem; nothing is unpickled.
    """
    folder = Path(folder)
    source = folder / HEADER
    header = upgraded(read_header(folder), source)
    check_header(header, source)
    tensors, references = read_content(folder, header)
    try:
        estimator = SAVED[header["estimator"]].from_state(header, tensors, references, source=str(folder))
    except (KeyError, TypeError) as exc:
        raise BundleError(f"{source}: missing or malformed field {exc}") from exc
    except ModelError as exc:
        raise BundleError(str(exc)) from exc
    info = ModelInfo.from_header(header)
    try:
        pipeline = fitted_pipeline(info.preprocess, info.shifts)
    except RamanIdError as exc:
        raise BundleError(f"{source}: field 'preprocess' cannot run on {len(info.shifts)} points ({exc})") from exc
    bundle = Bundle(estimator, info, references, folder, header, pipeline)
    if info.task.kind == "label" and (folder / ELEMENTS / HEADER).exists():
        bundle.elements = _element_model(bundle, folder / ELEMENTS)
    return bundle


def _element_model(bundle: Bundle, folder: Path) -> Bundle:
    """The element model in ``folder`` that answers a class model's inputs as they are, or a
    :class:`BundleError` saying why it cannot.
    """
    companion = load_bundle(folder)
    if companion.info.task.kind != "elements":
        raise BundleError(
            f"{folder} holds a {companion.info.task.kind} model: the '{ELEMENTS}' subfolder of a model "
            "folder is for an element model ('ramanid train --task elements --out ...')"
        )
    same = (
        np.array_equal(companion.shifts, bundle.shifts)
        and companion.info.resampling == bundle.info.resampling
        and companion.info.preprocess == bundle.info.preprocess
    )
    if not same:
        raise BundleError(
            f"{folder}: this element model reads other inputs than {bundle.path} (its axis, resampling or "
            f"preprocessing {companion.info.preprocess} against {bundle.info.preprocess}); train it on a set "
            "built with the same grid and preprocessing"
        )
    return companion
