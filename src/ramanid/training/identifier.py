"""Identification against every reference of a spectral library, with a learned embedding.

A user's question is "which of the library's minerals is this?", asked of a spectrum from another
specimen, instrument or laser. Classical library search (cosine, Pearson, HQI; as in CrystalSleuth
and KnowItAll) compares the spectra themselves. Here a RamanNet (Ibtehaz et al. 2022) is trained
with its semi-hard triplet loss (Schroff, Kalenichenko & Philbin 2015, *FaceNet*) on augmented
spectra that imitate what differs between instruments and specimens (calibration offsets,
fluorescence baselines, noise, resolution, cosmic spikes, truncated ranges), and a query is
compared with every reference both in that embedding and as a spectrum:

    score(query, reference) = alpha * cos(embeddings) + (1 - alpha) * cos(spectral scores)

The spectral score (:class:`~ramanid.search.SpectralScore`) compresses intensities (a power
below 1, after Stein & Scott 1994) and takes a smoothed first derivative, which makes plain
correlation search markedly more robust to another specimen, laser or baseline; the network is
trained on that same representation (so its augmentation perturbs the spectral score, not the
spectrum: a shift, blur or truncation there is one of the spectrum too; a "baseline" there is a
slow drift of the derivative). A mineral's score is that of its best reference, so a
mineral with a single reference spectrum is identifiable, and references added later
(:meth:`LibraryIdentifier.add`) count at once, without retraining. The spectral score and
``alpha`` are chosen on held-out specimens of the training data only.

A calibration offset of a few cm-1 moves all of a measured spectrum's bands alike, and a
derivative falls steeply with it, while the embedding hardly moves: each query's offset is
estimated against its best references (:data:`OFFSET_ESTIMATE`), and where moving it back gains
enough, its spectral part is scored moved.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ramanid.confidence import Evidence
from ramanid.errors import ModelError
from ramanid.holdout import validation_split
from ramanid.preprocessing.smooth import is_smoothing_window, smoothed_in_range
from ramanid.search import (
    References,
    SpectralScore,
    best_per_class,
    first_derivative,
    normalised,
    offset_estimates,
    shifted,
    unit_rows,
)
from ramanid.training.estimators import SpectrumClassifier
from ramanid.training.saved import Attribution, SavedModel, Scored, is_finite, is_whole

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
#: the weights file's entry for the references' unit embeddings, stored so that a load need not
#: embed the whole library again
LIBRARY_EMBEDDINGS = "library.embeddings"
#: the weights of the embedding similarity tried when ``alpha`` is not given
ALPHAS = (0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0)
#: the spectral scores tried when ``spectral`` is not given: powers 1, 1/2, 1/4 by derivative
#: windows of 0 (none), 9, 15 and 21 points
SPECTRAL_SCORES = tuple(SpectralScore(power, window) for power in (1.0, 0.5, 0.25) for window in (0, 9, 15, 21))
#: what a signal-to-noise bin may choose among for its spectral part (noise calls for less
#: compression of weak intensities, which noise dominates, and a wider derivative)
QUALITY_SCORES = tuple(SpectralScore(power, window) for power in (1.0, 0.5, 0.25) for window in (9, 15, 21, 31, 41))
#: the smoothing windows (points; 0: none) a signal-to-noise bin may choose for its queries, before
#: both the spectral score and the network read them (the network was trained on clean spectra)
QUALITY_SMOOTHING = (0, 11, 21, 31)
#: the query's offset estimate (:func:`ramanid.search.offset_estimates`): moves of up to ``span``
#: points either way, applied to the spectral part of its scores where the move raises its best
#: spectral cosine by more than ``gain``, for inputs of a signal-to-noise bin from ``from_snr`` (a
#: noisier query gains that much by chance, an unknown mineral's most: below SNR 20 the estimate
#: told unknown minerals from known ones worse on validation copies; ``benchmarks/RESULTS.md``)
OFFSET_ESTIMATE = {"span": 4, "gain": 0.02, "from_snr": 20.0}
#: the references an offset is estimated against: each query's best by its mixed score
OFFSET_CANDIDATES = 32


class SpectralScoreLayer(torch.nn.Module):
    """The network's input (:meth:`LibraryIdentifier.network_input`) as a differentiable layer, so
    that attributions reach the spectrum itself. The derivative is the Savitzky-Golay filter
    written as the matrix it applies (its response to each unit impulse), edges included.
    """

    def __init__(self, score: SpectralScore, n_points: int):
        super().__init__()
        self.power, self.scale = score.power, math.sqrt(n_points)
        identity = np.eye(n_points, dtype=np.float32)
        self.register_buffer(
            "derivative", torch.as_tensor(first_derivative(identity, score.window) if score.window else identity)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.power != 1:
            x = x.clamp_min(1e-12) ** self.power  # not 0: the gradient of a power below 1 is infinite there
        x = x @ self.derivative
        return self.scale * x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)


class LibraryIdentifier(SavedModel, ClassifierMixin, BaseEstimator):
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
        validation spectra (whole groups when ``fit`` is given ``groups``), queried against the
        training references only.
    spectral : (power, window), optional
        The :class:`~ramanid.search.SpectralScore` compared and fed to the network; ``None``
        chooses among :data:`SPECTRAL_SCORES` on the validation spectra, as for ``alpha``.
    val_fraction : float
        Share held out for those choices. The network trains for all ``epochs`` without early
        stopping: the validation loss of a classifier head over every mineral stops it long
        before its embedding is best.
    """

    def __init__(
        self,
        model="ramannet",
        epochs=60,
        batch_size=256,
        augment=None,
        alpha=None,
        spectral=None,
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
        self.spectral = spectral
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
        y = np.asarray(y)
        seed = self.random_state if self.random_state is not None else 0
        train, self.validation_index_ = validation_split(len(X), self.val_fraction, seed, groups=groups)
        self.offset_estimate_ = None  # the choices below are made on plain scores
        self.spectral_ = (
            SpectralScore(*self.spectral) if self.spectral is not None else self._choose_spectral(X, y, train)
        )
        self.network_ = SpectrumClassifier(
            model=self.model,
            epochs=self.epochs,
            batch_size=self.batch_size,
            val_fraction=0,
            augment=INSTRUMENT_AUGMENT if self.augment is None else self.augment,
            precision=self.precision,
            device=self.device,
            random_state=self.random_state,
            progress=self.progress,
        ).fit(self.network_input(X[train]), y[train])
        if not hasattr(self.network_.model_, "embed"):
            raise ModelError(f"model {self.model!r} has no embedding: use ramannet")
        self._set_library(X, y)
        self.alpha_ = self.alpha if self.alpha is not None else self._choose_alpha(train)
        self.offset_estimate_ = dict(OFFSET_ESTIMATE)
        return self

    @classmethod
    def from_parts(
        cls,
        network: SpectrumClassifier,
        references,
        labels,
        alpha: float,
        spectral: SpectralScore,
        embeddings: np.ndarray | None = None,
    ) -> LibraryIdentifier:
        """An identifier from a fitted network, its spectral score, reference spectra and labels
        (and the references' stored embeddings, used where they are the network's).
        """
        identifier = cls(model=network.model, alpha=alpha, spectral=(spectral.power, spectral.window))
        identifier.network_, identifier.alpha_, identifier.spectral_ = network, float(alpha), spectral
        identifier.n_features_in_ = network.n_features_in_
        references = np.asarray(references, dtype=np.float32)
        if embeddings is not None and not identifier._embeds_as(references, embeddings):
            embeddings = None
        identifier._set_library(references, np.asarray(labels), embeddings)
        return identifier

    def get_state(self) -> tuple[dict, dict]:
        """The network's state, with the identifier's choices under ``"identifier"``; the
        references are the model folder's library, which :meth:`from_state` takes.
        """
        header, tensors = self.network_.get_state()
        tensors[LIBRARY_EMBEDDINGS] = torch.from_numpy(np.ascontiguousarray(self.unit_embeddings_))
        choices = {
            "alpha": float(self.alpha_),
            "alpha_validation": {str(k): v for k, v in getattr(self, "alpha_validation_", {}).items()},
            "spectral": {"power": self.spectral_.power, "window": self.spectral_.window},
            "spectral_validation": getattr(self, "spectral_validation_", {}),
        }
        if getattr(self, "quality_choices_", None) is not None:
            choices["by_quality"] = [_described(c) for c in self.quality_choices_]
        if getattr(self, "offset_estimate_", None):
            choices["offset"] = dict(self.offset_estimate_)
        return {**header, "estimator": type(self).__name__, "identifier": choices}, tensors

    @classmethod
    def check_state(cls, header: dict) -> tuple[str, str] | None:
        """``(field, what was expected)`` for the first field of a stored state that is wrong, or None."""
        choices = header.get("identifier")
        spectral = choices.get("spectral") if isinstance(choices, dict) else None
        if not (
            isinstance(choices, dict)
            and is_finite(choices.get("alpha"))
            and 0 <= choices["alpha"] <= 1
            and isinstance(spectral, dict)
            and set(spectral) == {"power", "window"}
            and is_finite(spectral["power"])
            and is_whole(spectral["window"], 0, header["n_features"])
            and _valid_score(spectral)
        ):
            return (
                "identifier",
                "{'alpha': a weight in [0, 1], 'spectral': {'power': in (0, 1], 'window': 0 or an odd number of "
                "points}} (a folder from before the spectral score: rebuild it with `ramanid library build`)",
            )
        by_quality = choices.get("by_quality")
        if by_quality is not None and not (
            isinstance(by_quality, list)
            and all(
                isinstance(c, dict)
                and {"power", "window", "alpha"} <= set(c) <= {"power", "window", "alpha", "smoothing"}
                and is_finite(c["power"])
                and is_finite(c["alpha"])
                and 0 <= c["alpha"] <= 1
                and is_whole(c["window"], 0, header["n_features"])
                and _valid_score({"power": c["power"], "window": c["window"]})
                and is_smoothing_window(c.get("smoothing", 0), header["n_features"])
                for c in by_quality
            )
        ):
            return "identifier", (
                "{'by_quality': a list of {'power', 'window', 'alpha'} and, in newer folders, 'smoothing' "
                "(0 or an odd number of points), one per signal-to-noise bin}"
            )
        offset = choices.get("offset")
        if offset is not None and not (
            isinstance(offset, dict)
            and set(offset) == {"span", "gain", "from_snr"}
            and is_whole(offset["span"], 1, header["n_features"] // 4)
            and all(is_finite(offset[k]) and offset[k] >= 0 for k in ("gain", "from_snr"))
        ):
            return "identifier", (
                "{'offset': {'span': points from 1, 'gain': a cosine gain from 0, 'from_snr': a signal-to-noise "
                "ratio from 0}}"
            )
        return SpectrumClassifier.check_state(header)

    @classmethod
    def from_state(
        cls, header: dict, tensors: dict, references: References, source: str = "state"
    ) -> LibraryIdentifier:
        """The identifier :meth:`get_state` stored, with every one of ``references`` in its library."""
        network = SpectrumClassifier.from_state(header, tensors, source=source)
        choices = header["identifier"]
        stored = tensors.get(LIBRARY_EMBEDDINGS)  # folders from before: none
        identifier = cls.from_parts(
            network,
            references.intensities,
            references.labels,
            choices["alpha"],
            SpectralScore(**choices["spectral"]),
            None if stored is None else stored.numpy(),
        )
        if choices.get("by_quality"):
            identifier.quality_choices_ = [  # folders from before query smoothing: none
                (SpectralScore(c["power"], c["window"]), float(c["alpha"]), int(c.get("smoothing", 0)))
                for c in choices["by_quality"]
            ]
        if choices.get("offset"):  # folders from before the offset estimate: none
            offset = choices["offset"]
            identifier.offset_estimate_ = {
                "span": int(offset["span"]),
                "gain": float(offset["gain"]),
                "from_snr": float(offset["from_snr"]),
            }
        return identifier.attach(references)

    def add(self, X, y) -> LibraryIdentifier:
        """Add reference spectra (and new minerals) to the library; the network is not retrained."""
        check_is_fitted(self, "network_")
        X = validate_data(self, X, dtype=np.float32, reset=False)
        self._set_library(
            np.vstack([self.reference_spectra_, X]),
            np.concatenate([self.labels_, np.asarray(y)]),
            np.vstack([self.unit_embeddings_, self.embed(X)]),
        )
        return self

    def _set_library(self, X: np.ndarray, y: np.ndarray, embeddings: np.ndarray | None = None) -> None:
        """References ``X`` with labels ``y`` and their unit ``embeddings`` (computed when not given)."""
        self.reference_spectra_, self.labels_ = X, y.astype(str) if y.dtype.kind in "OU" else y
        self.classes_, self.reference_class_ = np.unique(self.labels_, return_inverse=True)
        self.__dict__.pop("_scored_references", None)
        joint = self._joint_references(self.spectral_, self.embed(X) if embeddings is None else embeddings)
        self.unit_spectra_, self.unit_embeddings_ = joint[:, : X.shape[1]], joint[:, X.shape[1] :]

    def _embeds_as(self, X: np.ndarray, embeddings: np.ndarray, probes: int = 8) -> bool:
        """Whether ``embeddings`` are the network's of ``X``: their shape, and ``probes`` rows spread
        over the library embedded again (a stored library embedding of other references or weights
        is not used).
        """
        if embeddings.ndim != 2 or len(embeddings) != len(X) or not len(X):
            return False
        rows = np.unique(np.linspace(0, len(X) - 1, probes).astype(int))
        fresh = self.embed(X[rows])
        return fresh.shape == embeddings[rows].shape and np.allclose(fresh, embeddings[rows], atol=1e-4)

    def network_input(self, X: np.ndarray) -> np.ndarray:
        """The spectral score scaled to a root mean square of 1 per point: what the network sees."""
        return self.spectral_(X) * np.float32(np.sqrt(X.shape[1]))

    def spectrum_network(self) -> torch.nn.Module:
        """The network with its input layer in front: preprocessed spectra in, class logits out."""
        check_is_fitted(self, "network_")
        model = self.network_.model_
        layer = SpectralScoreLayer(self.spectral_, self.n_features_in_).to(next(model.parameters()).device)
        return torch.nn.Sequential(layer, model).eval()

    def embed(self, X: np.ndarray) -> np.ndarray:
        """The network's embeddings of spectra ``X`` (preprocessed as the references), unit length."""
        with torch.inference_mode():
            return unit_rows(self.network_.transform(self.network_input(X)))

    def similarity(
        self,
        X,
        alpha: float | None = None,
        references: np.ndarray | None = None,
        bins: np.ndarray | None = None,
        excluded: np.ndarray | None = None,
    ) -> np.ndarray:
        """``(queries, references)`` scores; ``references`` restricts to those positions. Where
        :meth:`adapt_to_quality` chose a spectral score and alpha per signal-to-noise bin (and no
        ``alpha`` is given), each query is scored with its bin's (``bins``: :meth:`quality_bins`
        of ``X``, where already known; they also say which queries an offset is estimated for).
        ``excluded``: ``(queries, references)``, true where a query is not to be compared with a
        reference (its own specimen's): scored -inf there, and not read by its offset estimate.
        """
        return self.similarity_and_offsets(X, alpha, references, bins, excluded)[0]

    def similarity_and_offsets(
        self,
        X,
        alpha: float | None = None,
        references: np.ndarray | None = None,
        bins: np.ndarray | None = None,
        excluded: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`similarity`, and the calibration offset each query was scored moved back by, in
        points of the model's axis (:data:`OFFSET_ESTIMATE`): how far its bands sit from its best
        references' (positive: higher); 0 where no move raised its best match by more than the
        estimate's ``gain``; NaN where none was estimated (no estimate in the model, or a query
        below its signal-to-noise bin).
        """
        check_is_fitted(self, "network_")
        X = validate_data(self, X, dtype=np.float32, reset=False)
        pick = slice(None) if references is None else references
        choices = getattr(self, "quality_choices_", None)
        if alpha is not None or choices is None:
            alpha = self.alpha_ if alpha is None else alpha
            score, offsets = self._mixed(X, self.spectral_, alpha, 0, pick, excluded, bins)
        else:
            bins = input_snr_bins(X) if bins is None else bins
            score, offsets = self._by_bin(X, choices, pick, excluded, bins)
        if excluded is not None:
            score[excluded] = -np.inf
        return score, offsets

    def _by_bin(self, X, choices, pick, excluded, bins) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_mixed` with each signal-to-noise bin's choices for its queries."""
        present = np.unique(bins)
        if len(present) == 1:
            return self._mixed(X, *choices[present[0]], pick, excluded, bins)
        score, offsets = None, np.full(len(X), np.nan, dtype=np.float32)
        for b in present:
            rows = bins == b
            part, offsets[rows] = self._mixed(
                X[rows], *choices[b], pick, None if excluded is None else excluded[rows], bins[rows]
            )
            score = np.empty((len(X), part.shape[1]), dtype=np.float32) if score is None else score
            score[rows] = part
        return score, offsets

    def _mixed(
        self, X, spectral: SpectralScore, alpha: float, smoothing: int, pick, excluded=None, bins=None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(1 - alpha) * cos(spectral scores) + alpha * cos(embeddings)`` of the queries, smoothed
        over ``smoothing`` points first where it is not 0, against the references ``pick``: one
        product of the queries' two weighted parts with the references' two parts side by side
        (two products and the sum of their results took twice as long on a map). Where the model
        estimates offsets (:data:`OFFSET_ESTIMATE`), a query of a bin it applies to (``bins``: the
        queries' :func:`input_snr_bins`, where known) whose spectral part moved gains enough is
        scored moved. Returns the scores and the offsets (:meth:`similarity_and_offsets`).
        """
        from ramanid.quality import SNR_BINS

        measured, X = X, smoothed_in_range(X, smoothing)
        joint, points = self._joint_references(spectral)[pick], X.shape[1]
        offsets = np.full(len(X), np.nan, dtype=np.float32)
        if alpha == 1:
            return self.embed(X) @ joint[:, points:].T, offsets
        part = spectral(X)
        if alpha == 0:
            score = part @ joint[:, :points].T
        else:
            score = np.hstack([np.float32(1 - alpha) * part, np.float32(alpha) * self.embed(X)]) @ joint.T
        estimate = getattr(self, "offset_estimate_", None)
        if not estimate:
            return score, offsets
        bins = input_snr_bins(measured) if bins is None else bins
        moveable = np.flatnonzero(np.asarray(SNR_BINS)[bins] >= estimate["from_snr"])
        if len(moveable):
            ranking = score[moveable] if excluded is None else np.where(excluded[moveable], -np.inf, score[moveable])
            references = joint[:, :points]
            shift, gain = offset_estimates(part[moveable], references, ranking, estimate["span"], OFFSET_CANDIDATES)
            offsets[moveable] = 0
            for move in np.unique(shift[gain > estimate["gain"]]):
                rows = moveable[(shift == move) & (gain > estimate["gain"])]
                change = shifted(part[rows], int(move), edge=False) - part[rows]
                score[rows] += np.float32(1 - alpha) * (change @ references.T)
                offsets[rows] = -move  # moved by ``move`` points onto the references: it reads that far off
        return score, offsets

    def _unit_spectra(self, spectral: SpectralScore) -> np.ndarray:
        """The references under ``spectral``, unit rows."""
        return self._joint_references(spectral)[:, : self.n_features_in_]

    def _joint_references(self, spectral: SpectralScore, embeddings: np.ndarray | None = None) -> np.ndarray:
        """``(references, points + embedding)``: each reference under ``spectral`` beside its
        embedding, both unit rows (computed once per score; ``embeddings`` when not yet known).
        """
        cache = self.__dict__.setdefault("_scored_references", {})
        if spectral not in cache:
            embeddings = self.unit_embeddings_ if embeddings is None else embeddings
            cache[spectral] = np.hstack([spectral(self.reference_spectra_), embeddings])
        return cache[spectral]

    def adapt_to_quality(self, X, y, references: np.ndarray) -> dict:
        """Choose, per signal-to-noise bin of the inputs (:func:`input_snr_bins`), the spectral
        score (among :data:`QUALITY_SCORES` and the fitted one), alpha (:data:`ALPHAS`) and the
        queries' smoothing (:data:`QUALITY_SMOOTHING`) whose
        top-1 is best on ``X``, ``y``: degraded validation spectra, queried against the reference
        positions ``references`` (the training part). Bins with fewer than
        :data:`MIN_ADAPT` such spectra keep the fitted choice, and so does the top bin, where
        clean spectra fall: the fitted choice was made on them, and choices made on the mildly
        degraded spectra that share the bin cost clean validation spectra 1-2 points. Returns
        each bin's figures.
        """
        from ramanid.quality import SNR_BINS

        check_is_fitted(self, "network_")
        X = validate_data(self, X, dtype=np.float32, reset=False)
        y = np.asarray(y)
        known = np.isin(y, self.labels_[references])
        codes = np.searchsorted(self.classes_, y)
        bins = input_snr_bins(X)
        reference_class, n_classes = self.reference_class_[references], len(self.classes_)
        candidates = list(dict.fromkeys([self.spectral_, *(s for s in QUALITY_SCORES if s.window <= X.shape[1])]))
        choices, figures = [], []
        for b, low in enumerate(SNR_BINS):
            rows = np.flatnonzero((bins == b) & known)
            fitted = (self.spectral_, self.alpha_, 0)
            if len(rows) < MIN_ADAPT or b == len(SNR_BINS) - 1:
                choices.append(fitted)
                figures.append({"snr_from": low, "n": int(len(rows)), "choice": _described(fitted)})
                continue
            accuracy = {}
            for smoothing in (w for w in QUALITY_SMOOTHING if w < X.shape[1]):
                queries = smoothed_in_range(X[rows], smoothing)
                embedded = self.embed(queries) @ self.unit_embeddings_[references].T
                for spectral in candidates:
                    part = spectral(queries) @ self._unit_spectra(spectral)[references].T
                    for alpha in ALPHAS:
                        mixed = (1 - alpha) * part + alpha * embedded
                        accuracy[spectral, alpha, smoothing] = _top1(mixed, reference_class, n_classes, codes[rows])
            best = max(accuracy, key=lambda c: (accuracy[c], c == fitted))
            choices.append(best)
            figures.append(
                {"snr_from": low, "n": int(len(rows)), "choice": _described(best), "top1": accuracy[best],
                 "fitted_top1": accuracy.get(fitted)}
            )  # fmt: skip
        self.quality_choices_ = choices
        return figures

    def class_scores(self, X, similarity: np.ndarray | None = None) -> np.ndarray:
        """``(queries, classes)``: each class's best reference score (from ``similarity`` where the
        queries' :meth:`similarity` is at hand).
        """
        similarity = self.similarity(X) if similarity is None else similarity
        return self.best_per_class(similarity, self.reference_class_)

    def best_per_class(self, similarity: np.ndarray, reference_class: np.ndarray) -> np.ndarray:
        """``(queries, classes)`` best scores of the references whose classes are ``reference_class``."""
        return best_per_class(similarity, reference_class, len(self.classes_))

    def predict_proba(self, X):
        """Class scores clipped at 0 and normalised to sum to 1 (a ranking, not a calibrated probability)."""
        return normalised(self.class_scores(X))

    def predict(self, X):
        """The best-scoring mineral of each query."""
        return self.classes_[np.argmax(self.class_scores(X), axis=1)]

    # what inference asks of a saved model (ramanid.training.saved)

    answers_from_references = True
    transductive = False
    has_embedding = True

    def decision_scores(self, X) -> np.ndarray:
        """The class scores, which the folder's temperature turns into probabilities."""
        return self.class_scores(X)

    def reference_similarity(self, X) -> np.ndarray:
        return self.similarity(X)

    def scored(self, X, bins: np.ndarray | None = None) -> Scored:
        similarity, offsets = self.similarity_and_offsets(X, bins=bins)
        return Scored(self.class_scores(X, similarity), similarity, offsets)

    def quality_bins(self, X) -> np.ndarray:
        """Each input's signal-to-noise bin (:func:`input_snr_bins`): what it is scored and calibrated by."""
        return input_snr_bins(X)

    def unknown_evidence(self, X, scores, similarity) -> Evidence:
        best = scores.max(axis=1, initial=-np.inf)
        return Evidence(best_score=best, library_similarity=similarity.max(axis=1, initial=-np.inf))

    def attribution(self, X, target: str | None = None) -> Attribution:
        """Through the spectral score to the network's output for the answer (or ``target``). A
        mineral the network has no output for (added to the library, or held out of its training)
        is explained by the network's own best class, and the label says so.
        """
        names = [str(c) for c in self.network_.classes_]
        answer = target or str(self.classes_[int(np.argmax(self.class_scores(X)[0]))])
        if answer not in names and answer not in self.classes_:
            raise ModelError(f"unknown class {answer!r}: this library holds {len(self.classes_)} minerals")
        proba = self.network_.predict_proba(self.network_input(X))[0]
        chosen = answer if answer in names else names[int(np.argmax(proba))]
        output = names.index(chosen)
        label = f"class {chosen}: network probability {proba[output]:.2f}"
        if chosen != answer:
            label += f" (the answer {answer} has no network output: it was not trained on)"
        return Attribution(self.spectrum_network(), output, chosen, label)

    def _choose_spectral(self, X: np.ndarray, y: np.ndarray, train: np.ndarray) -> SpectralScore:
        """The spectral score whose top-1 is best on validation queries against the training spectra."""
        known = self._answerable(y, train)
        if not len(known):
            return SpectralScore()
        classes, codes = np.unique(y, return_inverse=True)
        candidates = [score for score in SPECTRAL_SCORES if score.window <= X.shape[1]]
        accuracy = [
            _top1(score(X[known]) @ score(X[train]).T, codes[train], len(classes), codes[known]) for score in candidates
        ]
        self.spectral_validation_ = {f"{s.power:g}/{s.window}": a for s, a in zip(candidates, accuracy, strict=True)}
        return candidates[int(np.argmax(accuracy))]

    def _answerable(self, y: np.ndarray, train: np.ndarray) -> np.ndarray:
        """Validation positions whose mineral has a training reference."""
        val = self.validation_index_
        return val[np.isin(y[val], y[train])]

    def _choose_alpha(self, train: np.ndarray) -> float:
        """The alpha whose top-1 is best on validation queries against the training references."""
        known = self._answerable(self.labels_, train)
        if not len(known):
            return 0.5
        codes, n_classes = self.reference_class_, len(self.classes_)
        spectral, embedded = (self.similarity(self.reference_spectra_[known], part, train) for part in (0.0, 1.0))
        accuracy = [
            _top1((1 - alpha) * spectral + alpha * embedded, codes[train], n_classes, codes[known]) for alpha in ALPHAS
        ]
        self.alpha_validation_ = dict(zip(ALPHAS, accuracy, strict=True))
        return float(ALPHAS[int(np.argmax(accuracy))])


#: the fewest known validation spectra a signal-to-noise bin chooses its spectral score on
MIN_ADAPT = 30


def input_snr_bins(X: np.ndarray) -> np.ndarray:
    """The signal-to-noise bin (:data:`ramanid.quality.SNR_BINS`) of each preprocessed input: its
    strongest band is about 1 (min-max scaled, baseline removed), over its point-to-point noise.
    """
    from ramanid.quality import noise_sd, snr_bin

    noise = noise_sd(X)
    snr = np.divide(1.0, noise, out=np.full(len(noise), np.inf), where=noise > 0)
    return np.array([snr_bin(v) for v in snr], dtype=int)


def _described(choice: tuple[SpectralScore, float, int]) -> dict:
    spectral, alpha, smoothing = choice
    return {"power": spectral.power, "window": spectral.window, "alpha": float(alpha), "smoothing": int(smoothing)}


def _top1(similarity: np.ndarray, reference_class: np.ndarray, n_classes: int, truth: np.ndarray) -> float:
    """The share of queries whose best-scoring class (that of its best reference) is ``truth``."""
    return float(np.mean(np.argmax(best_per_class(similarity, reference_class, n_classes), axis=1) == truth))


def _valid_score(fields: dict) -> bool:
    try:
        SpectralScore(**fields)  # its own checks: power in (0, 1], window 0 or odd
    except ModelError:
        return False
    return True
