"""What inference asks of a saved model, whatever its kind.

A model folder holds one estimator, restored through :data:`ramanid.training.registry.SAVED` by
the class name its folder stores (``from_state``, after skorch's ``load_params``). Each answers
the same questions through :class:`SavedModel`:

- ``kind``: ``"label"`` (one class per spectrum: ``classes_``) or ``"elements"`` (presence of
  each of ``elements_``, with ``thresholds_``); ``transductive``: whether the answer for one
  spectrum depends on the others scored with it;
- :meth:`~SavedModel.decision_scores`: for labels, the class scores the folder's temperature
  scales (logits, or a library identifier's best-reference scores); for elements, probabilities;
- :meth:`~SavedModel.reference_similarity`: how like each reference of the library a query is
  (its nearest references, and the library evidence of the unknown flag); both at once, with
  the calibration offsets a library identifier estimates, from :meth:`~SavedModel.scored`;
- :meth:`~SavedModel.unknown_evidence`: what the unknown scores of :mod:`ramanid.confidence` read;
- :meth:`~SavedModel.attribution`: the network and output an attribution of the answer runs through.

The references come with the model (``from_state``, or :meth:`~SavedModel.attach` after a fit):
they are the folder's library, so references added later count at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np
import torch

from ramanid.confidence import Evidence
from ramanid.errors import ModelError
from ramanid.search import References


@dataclass
class Attribution:
    """Where an attribution of one answer runs: ``module(inputs)[:, output]`` is the answer's score."""

    module: torch.nn.Module
    output: int
    target: str
    label: str


class Scored(NamedTuple):
    """A batch as a model scored it (:meth:`SavedModel.scored`): its decision scores, its
    similarity to each reference, and, from a model that estimates them, each query's
    calibration offset in points of the model's axis (NaN where it estimated none).
    """

    scores: np.ndarray
    similarity: np.ndarray
    offsets: np.ndarray | None = None


class SavedModel:
    """The inference side every saved estimator shares (see the module docstring)."""

    #: "label" or "elements": what the model answers
    kind = "label"
    #: True where the answers are the references themselves (``library add`` counts at once)
    answers_from_references = False

    def attach(self, references: References):
        """Compare queries with ``references`` from now on; returns ``self``."""
        self.references_ = references
        self.__dict__.pop("_reference_embeddings", None)
        return self

    @property
    def output_names(self) -> list[str]:
        """The classes, or the elements, in the order of :meth:`decision_scores`' columns."""
        names = self.classes_ if self.kind == "label" else self.elements_
        return [str(name) for name in names]

    def decision_scores(self, X) -> np.ndarray:  # pragma: no cover - each estimator says
        raise NotImplementedError

    def reference_similarity(self, X) -> np.ndarray:
        """``(queries, references)`` cosine similarities to the attached references."""
        return self.references_.search.similarity(X)

    def scored(self, X, bins: np.ndarray | None = None) -> Scored:
        """:meth:`decision_scores` and :meth:`reference_similarity` together (a model that scores
        through its references searches once; ``bins``: :meth:`quality_bins` of ``X``, where known).
        """
        return Scored(self.decision_scores(X), self.reference_similarity(X))

    def unknown_evidence(self, X, scores: np.ndarray, similarity: np.ndarray) -> Evidence:
        """What the unknown scores read about queries ``X``, given their :meth:`decision_scores`
        and :meth:`reference_similarity`.
        """
        return Evidence(library_similarity=similarity.max(axis=1, initial=-np.inf))

    def attribution(self, X, target: str | None = None) -> Attribution:  # pragma: no cover
        raise ModelError(f"{type(self).__name__} has no attribution")

    def quality_bins(self, X) -> np.ndarray | None:
        """The signal-to-noise bin of each input that the model was calibrated by, or None where it
        was calibrated as a whole (the folder's ``by_quality`` blocks are then not used).
        """
        return None


class ClassifierAnswers(SavedModel):
    """:class:`SavedModel` for a network classifier: logits, and embeddings where it has them."""

    def decision_scores(self, X) -> np.ndarray:
        return self.logits(X)

    def unknown_evidence(self, X, scores, similarity) -> Evidence:
        embedded = self.has_embedding
        return Evidence(
            logits=scores,
            library_similarity=similarity.max(axis=1, initial=-np.inf),
            embeddings=(lambda: self.embed(X)) if embedded else None,
            reference_embeddings=(lambda: self._reference_embeddings) if embedded else None,
            reference_labels=self.references_.labels if embedded else None,
        )

    @cached_property
    def _reference_embeddings(self) -> np.ndarray:
        return self.embed(self.references_.intensities)

    def attribution(self, X, target: str | None = None) -> Attribution:
        target, output, probability = class_target(self, X, target)
        return Attribution(self.model_, output, target, f"class {target}: network probability {probability:.2f}")


def class_target(model, X, target: str | None = None) -> tuple[str, int, float]:
    """``(class, output, probability)`` that an attribution of the first row of ``X`` explains:
    ``target``, or the model's most probable class; a :class:`ModelError` for a class it does not know.
    """
    names = model.output_names
    proba = model.predict_proba(X)[0]
    target = target or names[int(np.argmax(proba))]
    if target not in names:
        raise ModelError(f"unknown class {target!r}: this model knows {len(names)} classes, e.g. {names[:5]}")
    output = names.index(target)
    return target, output, float(proba[output])


class ElementAnswers(SavedModel):
    """:class:`SavedModel` for element models: probabilities, thresholds, one network or one each."""

    kind = "elements"

    def decision_scores(self, X) -> np.ndarray:
        return self.predict_proba(X)

    def attribution(self, X, target: str | None = None) -> Attribution:
        names = self.output_names
        scores = self.predict_proba(X)[0]
        target = target or names[int(np.argmax(scores - self.thresholds_))]
        if target not in names:
            raise ModelError(f"unknown element {target!r}: this model predicts {names}")
        j = names.index(target)
        networks = self.models_
        module, output = (networks[j], 0) if len(networks) > 1 else (networks[0], j)
        label = f"element {target}: probability {scores[j]:.2f} (threshold {self.thresholds_[j]:.2f})"
        return Attribution(module, output, target, label)


def is_finite(value) -> bool:
    """A real number (not a bool) that is finite."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_whole(value, low: int, high: int) -> bool:
    """A whole number (not a bool) from ``low`` to ``high``."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def finite_list(value, length: int) -> bool:
    """A list of ``length`` finite numbers."""
    return isinstance(value, list) and len(value) == length and all(map(is_finite, value))
