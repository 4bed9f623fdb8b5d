"""Identification against every reference of a spectral library, with a learned embedding.

A user's question is "which of the library's minerals is this?", asked of a spectrum from another
specimen, instrument or laser. Classical library search (cosine, Pearson, HQI; as in CrystalSleuth
and KnowItAll) compares the spectra themselves. Here a RamanNet (Ibtehaz et al. 2022) is trained
with its semi-hard triplet loss (Schroff, Kalenichenko & Philbin 2015, *FaceNet*) on augmented
spectra that imitate what differs between instruments and specimens (calibration offsets,
fluorescence baselines, noise, resolution, cosmic spikes, truncated ranges), and a query is
compared with every reference both in that embedding and as a spectrum:

    score(query, reference) = alpha * cos(embeddings) + (1 - alpha) * cos(spectra)

A mineral's score is that of its best reference, so a mineral with a single reference spectrum
is identifiable, and references added later (:meth:`LibraryIdentifier.add`) count at once,
without retraining. ``alpha`` is chosen on held-out specimens of the training data only.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ramanid.classical import best_per_class, normalised
from ramanid.errors import ModelError
from ramanid.training.estimators import SpectrumClassifier

#: augmentation imitating another instrument or specimen (points on a 1024-point grid of ~1.3 cm-1)
INSTRUMENT_AUGMENT = {
    "shift": 3,
    "scale": 0.1,
    "noise": 0.02,
    "baseline": 0.1,
    "spikes": 0.1,
    "broaden": 2.0,
    "truncate": 0.1,
}
#: the weights of the embedding similarity tried when ``alpha`` is not given
ALPHAS = (0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0)


def unit_rows(X: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    X = np.asarray(X, dtype=np.float32)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return np.divide(X, norms, out=np.zeros_like(X), where=norms > 0)


class LibraryIdentifier(ClassifierMixin, BaseEstimator):
    """Rank every mineral of a reference library for each query spectrum.

    Parameters
    ----------
    model : str
        A registered network with an embedding (default ``"ramannet"``).
    epochs, batch_size, precision, device, random_state, progress
        Training of the network (see :class:`~ramanid.training.estimators.SpectrumClassifier`).
    augment : dict, optional
        :class:`~ramanid.training.augment.Augment` arguments; default :data:`INSTRUMENT_AUGMENT`.
    alpha : float, optional
        Weight of the embedding similarity; ``None`` chooses it among :data:`ALPHAS` on the
        network's validation spectra (whole groups when ``fit`` is given ``groups``), queried
        against the training references only.
    val_fraction : float
        Share held out for early stopping and for choosing ``alpha``.
    """

    def __init__(
        self,
        model="ramannet",
        epochs=60,
        batch_size=256,
        augment=None,
        alpha=None,
        val_fraction=0.1,
        precision="auto",
        device=None,
        random_state=None,
        progress=False,
    ):
        self.model = model
        self.epochs = epochs
        self.batch_size = batch_size
        self.augment = augment
        self.alpha = alpha
        self.val_fraction = val_fraction
        self.precision = precision
        self.device = device
        self.random_state = random_state
        self.progress = progress

    def fit(self, X, y, groups=None):
        """Train the embedding on ``X``, ``y``; every spectrum of ``X`` becomes a reference."""
        if self.alpha is not None and not 0 <= self.alpha <= 1:
            raise ModelError(f"alpha {self.alpha}: expected a weight in [0, 1]")
        X, y = validate_data(self, X, y, dtype=np.float32)
        check_classification_targets(y)
        self.network_ = SpectrumClassifier(
            model=self.model,
            epochs=self.epochs,
            batch_size=self.batch_size,
            val_fraction=self.val_fraction,
            augment=INSTRUMENT_AUGMENT if self.augment is None else self.augment,
            precision=self.precision,
            device=self.device,
            random_state=self.random_state,
            progress=self.progress,
        ).fit(X, y, groups=groups)
        if not hasattr(self.network_.model_, "embed"):
            raise ModelError(f"model {self.model!r} has no embedding: use ramannet")
        self._set_library(X, np.asarray(y))
        val = self.network_.validation_index_
        self.alpha_ = self.alpha if self.alpha is not None else self._choose_alpha(val)
        return self

    @classmethod
    def from_parts(cls, network: SpectrumClassifier, references, labels, alpha: float) -> LibraryIdentifier:
        """An identifier from a fitted network, its reference spectra and labels (a saved model)."""
        identifier = cls(model=network.model, alpha=alpha)
        identifier.network_, identifier.alpha_ = network, float(alpha)
        identifier.n_features_in_ = network.n_features_in_
        identifier._set_library(np.asarray(references, dtype=np.float32), np.asarray(labels))
        return identifier

    def add(self, X, y) -> LibraryIdentifier:
        """Add reference spectra (and new minerals) to the library; the network is not retrained."""
        check_is_fitted(self, "network_")
        X = validate_data(self, X, dtype=np.float32, reset=False)
        self._set_library(np.vstack([self.references_, X]), np.concatenate([self.labels_, np.asarray(y)]))
        return self

    def _set_library(self, X: np.ndarray, y: np.ndarray) -> None:
        self.references_, self.labels_ = X, y.astype(str) if y.dtype.kind in "OU" else y
        self.classes_, self.reference_class_ = np.unique(self.labels_, return_inverse=True)
        self._unit_spectra = unit_rows(X)
        self._unit_embeddings = self._embed(X)

    def _embed(self, X: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return unit_rows(self.network_.transform(X))

    def similarity(self, X, alpha: float | None = None, references: np.ndarray | None = None) -> np.ndarray:
        """``(queries, references)`` scores; ``references`` restricts to those positions."""
        check_is_fitted(self, "network_")
        X = validate_data(self, X, dtype=np.float32, reset=False)
        alpha = self.alpha_ if alpha is None else alpha
        pick = slice(None) if references is None else references
        score = (1 - alpha) * (unit_rows(X) @ self._unit_spectra[pick].T)
        if alpha:
            score += alpha * (self._embed(X) @ self._unit_embeddings[pick].T)
        return score

    def class_scores(self, X) -> np.ndarray:
        """``(queries, classes)``: each class's best reference score."""
        return self._best_per_class(self.similarity(X), self.reference_class_)

    def _best_per_class(self, similarity: np.ndarray, reference_class: np.ndarray) -> np.ndarray:
        return best_per_class(similarity, reference_class, len(self.classes_))

    def predict_proba(self, X):
        """Class scores clipped at 0 and normalised to sum to 1 (a ranking, not a calibrated probability)."""
        return normalised(self.class_scores(X))

    def predict(self, X):
        """The best-scoring mineral of each query."""
        return self.classes_[np.argmax(self.class_scores(X), axis=1)]

    def _choose_alpha(self, val: np.ndarray) -> float:
        """The alpha whose top-1 is best on validation queries against the training references."""
        train = np.setdiff1d(np.arange(len(self.references_)), val)
        known = val[np.isin(self.labels_[val], self.labels_[train])]
        if not len(known):
            return 0.5
        truth = self.reference_class_[known]
        accuracy = []
        for alpha in ALPHAS:
            scores = self._best_per_class(
                self.similarity(self.references_[known], alpha, train), self.reference_class_[train]
            )
            accuracy.append(float(np.mean(np.argmax(scores, axis=1) == truth)))
        self.alpha_validation_ = dict(zip(ALPHAS, accuracy, strict=True))
        return float(ALPHAS[int(np.argmax(accuracy))])
