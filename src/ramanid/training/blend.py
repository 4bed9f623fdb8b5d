"""A network's element probabilities blended with the formula vote of the nearest references.

The two see different things: the network learns band shapes shared by minerals with an element,
the vote reads the formulas of the most similar known minerals. Their weighted mean, with the
weight and the vote's neighbours chosen on held-out minerals, is a blend in the sense of stacked
generalisation (Wolpert 1992) restricted to one weight. The vote may compare one kind of spectra or
average the votes of several. The choice is judged on noisy copies of the held-out spectra as well
as on the spectra themselves, so that a vote that wins only on clean spectra cannot push out the
part that holds under noise.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils.validation import check_is_fitted

from ramanid.errors import DatasetError, ModelError
from ramanid.holdout import DEFAULT_RULE, ThresholdedMixin, choose_thresholds, macro_roc_auc
from ramanid.search import References
from ramanid.spectra import SpectraSet
from ramanid.targets import element_matrix
from ramanid.training.baselines import FormulaVote, MeanOfVotes
from ramanid.training.estimators import ElementIdentifier
from ramanid.training.saved import ElementAnswers, finite_list, is_finite, is_whole

#: the network's share of the blend, chosen among these on the validation split
WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
#: the vote's neighbours, chosen among these with the weight
NEIGHBOURS = (5, 20, 80, 160)
#: the power of the similarities that weight the vote's neighbours, chosen with them
POWERS = (1, 4, 16)
#: the kinds of spectra a vote's cosines may compare, ``(intensity power, derivative window)``:
#: plain, square roots, and square roots differentiated over 21 and 41 points
KINDS_OF_SPECTRA = ((1.0, 0), (0.5, 0), (0.5, 21), (0.5, 41))
#: the vote's spectra, chosen with them: each kind alone, or the mean of the votes on every kind
VOTE_SPECTRA = tuple((kind,) for kind in KINDS_OF_SPECTRA) + (KINDS_OF_SPECTRA,)
#: the noise of the validation copies the blend is also judged on: a signal-to-noise ratio of
#: 10 on the spectra's min-max scale (``benchmarks/RESULTS.md``, "The blend chosen on noisy
#: copies too")
VALIDATION_SNR = 10
#: ``--model NETWORK+vote`` names a blend
VOTE_SUFFIX = "+vote"


def _vote(elements, k: int, power: float, references: np.ndarray, presence: np.ndarray, kind) -> FormulaVote:
    """The formula vote of ``k`` neighbours among ``references``, weighted by their similarities
    to ``power``, comparing one ``kind`` of spectra (:data:`KINDS_OF_SPECTRA`; no thresholds of
    its own: the blend chooses them).
    """
    power_of_intensity, window = kind
    return FormulaVote(
        elements, k=k, power=power, val_fraction=0, intensity_power=power_of_intensity, derivative_window=window
    ).fit(references, presence)


def _mean_vote(elements, k: int, power: float, references: np.ndarray, presence: np.ndarray, spectra) -> MeanOfVotes:
    """The mean of the votes (:func:`_vote`) on each kind of ``spectra``."""
    return MeanOfVotes([_vote(elements, k, power, references, presence, kind) for kind in spectra])


def _kind_ok(kind) -> bool:
    """Whether ``kind`` is ``[intensity power in (0, 1], derivative window >= 0]``."""
    return (
        isinstance(kind, list)
        and len(kind) == 2
        and is_finite(kind[0])
        and 0 < kind[0] <= 1
        and is_whole(kind[1], 0, 10**4)
    )


def _stored_spectra(stored) -> tuple | None:
    """A stored vote's spectra as a tuple of kinds: a list of ``[power, window]`` pairs, or one
    pair (a blend saved before votes were averaged); ``None`` where it is neither.
    """
    if _kind_ok(stored):
        return ((float(stored[0]), int(stored[1])),)
    if isinstance(stored, list) and stored and all(_kind_ok(kind) for kind in stored):
        return tuple((float(p), int(w)) for p, w in stored)
    return None


def describe_spectra(spectra) -> str:
    """``spectra`` (a tuple of kinds) in words, for the choices table."""
    kinds = [f"to the power {p:g}" + (f", derivative over {w}" if w else "") for p, w in spectra]
    if len(kinds) == 1:
        return f"spectra {kinds[0]}"
    return "the mean of votes on spectra " + "; ".join(kinds)


def noisy_copies(X: np.ndarray, snr: float, seed: int) -> np.ndarray:
    """``X`` (min-max scaled spectra) with Gaussian noise of standard deviation ``1 / snr``,
    min-max scaled again.
    """
    noisy = X + np.random.default_rng(seed).normal(0, 1 / snr, X.shape)
    noisy -= noisy.min(axis=1, keepdims=True)
    return (noisy / np.maximum(noisy.max(axis=1, keepdims=True), 1e-12)).astype(X.dtype)


class NetworkAndVote(ElementAnswers, ThresholdedMixin, BaseEstimator):
    """Element probabilities: ``weight`` x the network's + (1 - ``weight``) x the formula vote's.

    The network is fitted once, with its own validation split (whole minerals when ``fit`` is
    given them); on that split, never trained on, the vote of the other training spectra is
    scored. The weight, ``k``, ``power`` and the spectra the vote compares (:data:`VOTE_SPECTRA`:
    one kind, or the mean of the votes on several) with the best macro ROC AUC, averaged over the
    validation spectra and a noisy copy of them (:data:`VALIDATION_SNR`),
    are kept, then the thresholds of the blend (its validation scores stay in
    ``validation_scores_``: once the vote holds every training spectrum, the validation spectra
    would find themselves). The vote then takes every training spectrum as a reference. Without
    a validation split (fewer than 10 spectra) nothing can be chosen and the first candidate, the
    vote alone with the fewest neighbours on plain spectra, is kept.
    """

    def __init__(
        self,
        network,
        weights=WEIGHTS,
        neighbours=NEIGHBOURS,
        threshold=DEFAULT_RULE,
        powers=POWERS,
        spectra=VOTE_SPECTRA,
        validation_snr=VALIDATION_SNR,
    ):
        self.network = network
        self.weights = weights
        self.neighbours = neighbours
        self.threshold = threshold
        self.powers = powers
        self.spectra = spectra
        self.validation_snr = validation_snr

    def fit(self, X, Y, groups=None):
        """Fit the network, choose the blend on its validation split, keep every reference."""
        self.network_ = clone(self.network).fit(X, Y, groups=groups)
        self.elements_ = self.network_.elements_
        X, Y = np.asarray(X), np.asarray(Y)
        val = self.network_.validation_index_
        train = np.setdiff1d(np.arange(len(X)), val)
        seed = getattr(self.network_, "random_state", None) or 0
        copies = [X[val]] + ([noisy_copies(X[val], self.validation_snr, seed)] if self.validation_snr else [])
        networks = [self.network_.predict_proba(c) for c in copies]
        # each kind's nearest references to each copy once, most similar first; every k and power reads them
        kinds = list(dict.fromkeys(kind for spectra in self.spectra for kind in spectra))
        searched = {kind: _vote(self.elements_, max(self.neighbours), 1, X[train], Y[train], kind) for kind in kinds}
        ranked = {kind: [vote.neighbours(c) for c in copies] for kind, vote in searched.items()}
        scores, clean_blends = {}, {}
        for k in self.neighbours:
            for power in self.powers:
                votes = {
                    kind: [
                        searched[kind].votes(nearest[:, :k], weights[:, :k] ** power)
                        for nearest, weights in ranked[kind]
                    ]
                    for kind in kinds
                }
                for spectra in self.spectra:
                    mean = [np.mean([votes[kind][c] for kind in spectra], axis=0) for c in range(len(copies))]
                    for w in self.weights:
                        blends = [w * n + (1 - w) * v for n, v in zip(networks, mean, strict=True)]
                        scores[w, k, power, spectra] = np.mean([macro_roc_auc(Y[val], b) for b in blends])
                        clean_blends[w, k, power, spectra] = blends[0]
        best = max(scores, key=lambda choice: np.nan_to_num(scores[choice], nan=-np.inf))
        self.weight_, self.k_, self.power_, self.spectra_ = best
        self.chosen_ = (
            f"network weight {self.weight_}, vote k={self.k_}, power {self.power_}, {describe_spectra(self.spectra_)}"
        )
        self.validation_scores_ = clean_blends[best]
        self.thresholds_ = choose_thresholds(Y[val], self.validation_scores_, self.threshold, share=Y.mean(axis=0))
        self.vote_ = _mean_vote(self.elements_, self.k_, self.power_, X, Y, self.spectra_)
        self.validation_index_ = val
        return self

    def get_state(self) -> tuple[dict, dict]:
        """The network's state, with the blend (weight, k, thresholds) under ``"blend"``; the
        references are the model folder's library, so :meth:`from_state` rebuilds the vote.
        """
        header, tensors = self.network_.get_state()
        blend = {
            "weight": float(self.weight_),
            "k": int(self.k_),
            "power": float(self.power_),
            "spectra": [[float(p), int(w)] for p, w in self.spectra_],
            "thresholds": [float(t) for t in self.thresholds_],
        }
        return {**header, "estimator": type(self).__name__, "blend": blend}, tensors

    @classmethod
    def check_state(cls, header: dict) -> tuple[str, str] | None:
        """``(field, what was expected)`` for the first field of a stored state that is wrong, or None."""
        blend, task = header.get("blend"), header.get("task", {})
        if not (
            isinstance(blend, dict)
            and is_finite(blend.get("weight"))
            and 0 <= blend["weight"] <= 1
            and is_whole(blend.get("k"), 1, 10**6)
            and (blend.get("power") is None or (is_finite(blend["power"]) and 0 < blend["power"] <= 1000))
            and (blend.get("spectra") is None or _stored_spectra(blend["spectra"]) is not None)
            and finite_list(blend.get("thresholds"), sum(header["outputs"]))
            and isinstance(task.get("chemistry"), str)
        ):
            expected = (
                "{'weight': in [0, 1], 'k': neighbours >= 1, 'power': in (0, 1000], "
                "'spectra': [[intensity power in (0, 1], derivative window >= 0], ...], 'thresholds': "
            )
            return "blend", expected + "one per element}"
        return ElementIdentifier.check_state(header)

    @classmethod
    def from_state(cls, header: dict, tensors: dict, references: References, source: str = "state") -> NetworkAndVote:
        """The blend of the network :meth:`get_state` stored and the vote of ``references`` (whose
        formulas give their element presence).
        """
        network = ElementIdentifier.from_state(header, tensors, references, source)
        shifts = np.asarray(header["shifts"], dtype=np.float64)
        try:
            presence, _ = element_matrix(
                SpectraSet(shifts, references.intensities, references.meta),
                network.elements_,
                header["task"]["chemistry"],
            )
        except DatasetError as exc:
            raise ModelError(f"{source}: the blend's references have no formulas ({exc})") from exc
        self = cls(network)
        blend = header["blend"]
        self.network_, self.elements_ = network, network.elements_
        self.weight_, self.k_, self.power_ = blend["weight"], blend["k"], blend.get("power", 1)  # older: no power
        self.spectra_ = _stored_spectra(blend.get("spectra", [1.0, 0]))  # older: the plain cosine
        self.thresholds_ = np.asarray(blend["thresholds"], dtype=np.float64)
        self.vote_ = _mean_vote(self.elements_, self.k_, self.power_, references.intensities, presence, self.spectra_)
        return self.attach(references)

    @property
    def model(self) -> str:
        """The blend's name, ``NETWORK+vote`` (for messages and the web page)."""
        return self.network.model + VOTE_SUFFIX

    @property
    def spec_(self):
        """The network's registry entry (whether it is transductive, ...)."""
        return self.network_.spec_

    @property
    def transductive(self) -> bool:
        """As the network is."""
        return self.network_.transductive

    @property
    def models_(self) -> list:
        """The network's modules, for attributions (``explain`` attributes the network's part)."""
        return self.network_.models_

    def predict_proba(self, X):
        """Per element, the blended probability."""
        check_is_fitted(self, "vote_")
        return self.weight_ * self.network_.predict_proba(X) + (1 - self.weight_) * self.vote_.predict_proba(X)
