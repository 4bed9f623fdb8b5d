"""Knowing when it does not know: calibrated probabilities, conformal answer sets, unknown scores.

- Temperature scaling (Guo, Pleiss, Sun & Weinberger 2017, *On calibration of modern neural
  networks*): one temperature, fitted on validation logits by likelihood.
- Expected calibration error of the top-1 probability, in equal-width bins (Naeini et al. 2015).
- Split-conformal answer sets, calibrated on held-out spectra: with exchangeable data the true
  class is in the set with probability at least the stated confidence (Vovk et al. 2005;
  Angelopoulos & Bates 2021). The score is one minus the true class's probability, the least
  ambiguous sets of Sadinle, Lei & Wasserman (2019): near the stated coverage, deterministic,
  and the smallest sets on average (adaptive sets, APS, cover well above the level unless
  randomised).
- Unknown scores, larger meaning "more unlike the training minerals": maximum softmax
  probability (Hendrycks & Gimpel 2017), maximum logit (Hendrycks et al. 2022), energy (Liu et
  al. 2020), distance to the nearest training embedding (Sun et al. 2022), to the nearest class
  prototype, and the Mahalanobis distance to the class means with one shared covariance
  (Lee et al. 2018).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp, softmax
from sklearn.covariance import LedoitWolf

from ramanid.errors import ModelError


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature that maximises the likelihood of class indices ``y`` under ``softmax(logits / T)``."""
    logits = np.asarray(logits, dtype=np.float64)
    if not len(logits):
        return 1.0

    def nll(log_t: float) -> float:
        z = logits / np.exp(log_t)
        return float(np.mean(logsumexp(z, axis=1) - z[np.arange(len(y)), y]))

    return float(np.exp(minimize_scalar(nll, bounds=(-7.0, 5.0), method="bounded").x))


def fit_temperature_brier(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature that minimises the Brier score (Brier 1950) of ``softmax(logits / T)``:
    bounded per spectrum, so a few answers that are far wrong move it less than the likelihood.
    """
    logits = np.asarray(logits, dtype=np.float64)
    if not len(logits):
        return 1.0

    def brier(log_t: float) -> float:
        p = softmax(logits / np.exp(log_t), axis=1)
        return float(np.mean(np.sum(p**2, axis=1) - 2 * p[np.arange(len(y)), y]))

    return float(np.exp(minimize_scalar(brier, bounds=(-7.0, 5.0), method="bounded").x))


def calibrated(logits: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(logits / temperature)``, row by row."""
    return softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)


def expected_calibration_error(proba: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    """Mean gap between top-1 confidence and accuracy, weighted over equal-width confidence bins."""
    return top1_calibration_error(proba.max(axis=1), proba.argmax(axis=1) == y, bins)


def top1_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    """:func:`expected_calibration_error` from each answer's stated probability and whether it was right."""
    return calibration_error_of(reliability(confidence, correct, bins))


def reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> np.ndarray:
    """``(3, bins)``: per equal-width confidence bin, the answers in it, the sum of their stated
    probabilities and how many were right; sums of several sets' tables pool them.
    """
    confidence, correct = np.asarray(confidence, dtype=np.float64), np.asarray(correct, dtype=bool)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    return np.stack(
        [np.bincount(which, minlength=bins), np.bincount(which, confidence, bins), np.bincount(which, correct, bins)]
    ).astype(np.float64)


def calibration_error_of(table: np.ndarray) -> float:
    """The expected calibration error (Guo et al. 2017) of a :func:`reliability` table: the gap
    between stated probability and accuracy in each bin, weighted by the bin's share of answers.
    """
    counts, stated, right = np.asarray(table, dtype=np.float64)
    if not counts.sum():
        return 0.0
    return float(np.sum(np.abs(stated - right)) / counts.sum())


def conformity_scores(proba: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The nonconformity of each true class: one minus its probability (LAC, Sadinle et al. 2019)."""
    return 1 - proba[np.arange(len(y)), np.asarray(y)]


def conformal_quantile(scores: np.ndarray, confidence: float) -> float:
    """The split-conformal threshold: the ``ceil((n + 1) * confidence)``-th smallest calibration score."""
    if not 0 < confidence < 1:
        raise ModelError(f"confidence {confidence}: expected a number between 0 and 1, e.g. 0.95")
    scores = np.sort(np.asarray(scores, dtype=np.float64))
    rank = int(np.ceil((len(scores) + 1) * confidence))
    if rank > len(scores):
        return float("inf")  # too few calibration spectra for this confidence: every class
    return float(scores[rank - 1])


def answer_sets(proba: np.ndarray, threshold: float) -> list[np.ndarray]:
    """For each row, the classes whose nonconformity is at most ``threshold``, most probable first.

    A set may be empty: then no class is plausible at that confidence, itself a sign of a
    spectrum unlike the training data.
    """
    order = np.argsort(-proba, axis=1, kind="stable")
    keep = np.take_along_axis(1 - proba, order, axis=1) <= threshold + 1e-12
    return [order[i, keep[i]] for i in range(len(proba))]


# unknown scores: larger = more likely a mineral absent from training


def msp_unknown(logits: np.ndarray) -> np.ndarray:
    """One minus the maximum softmax probability."""
    return 1 - softmax(np.asarray(logits, dtype=np.float64), axis=1).max(axis=1)


def max_logit_unknown(logits: np.ndarray) -> np.ndarray:
    """Minus the largest logit."""
    return -np.asarray(logits).max(axis=1)


def energy_unknown(logits: np.ndarray) -> np.ndarray:
    """The free energy, ``-logsumexp(logits)``."""
    return -logsumexp(np.asarray(logits, dtype=np.float64), axis=1)


def nearest_unknown(queries: np.ndarray, references: np.ndarray) -> np.ndarray:
    """One minus the cosine similarity to the nearest reference (rows need not be unit length)."""
    return 1 - (_unit(queries) @ _unit(references).T).max(axis=1)


def prototype_unknown(queries: np.ndarray, references: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """One minus the cosine similarity to the nearest class mean of the (unit) reference embeddings."""
    references = _unit(references)
    classes = np.unique(labels)
    prototypes = np.stack([references[labels == c].mean(axis=0) for c in classes])
    return nearest_unknown(queries, prototypes)


def mahalanobis_unknown(queries: np.ndarray, references: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The smallest Mahalanobis distance to a class mean, with one shared, shrunk covariance
    (Ledoit-Wolf) of the references around their class means.
    """
    queries, references = _unit(queries), _unit(references)
    classes, index = np.unique(labels, return_inverse=True)
    means = np.stack([references[index == k].mean(axis=0) for k in range(len(classes))])
    precision = LedoitWolf().fit(references - means[index]).precision_
    q = queries @ precision
    # (x - m)^T P (x - m) = x P x - 2 x P m + m P m, for every class at once
    distance = (q * queries).sum(1)[:, None] - 2 * q @ means.T + ((means @ precision) * means).sum(1)[None, :]
    return np.sqrt(np.maximum(distance.min(axis=1), 0))


def _unit(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return np.divide(X, norms, out=np.zeros_like(X), where=norms > 0)


#: how many known validation spectra the unknown flag lets through: 95%, so 5% false alarms by design
ACCEPT_KNOWN = 0.95


class Evidence:
    """What the unknown scores read about queries, each computed on first use.

    Give arrays, or functions of no arguments that compute them, by these names:
    ``logits`` (class scores before the softmax), ``library_similarity`` (best cosine to a
    library spectrum), ``best_score`` (a library identifier's best class score), ``embeddings``
    and ``reference_embeddings`` with ``reference_labels``. A score whose inputs are missing is
    not offered (:meth:`has`).
    """

    def __init__(self, **sources):
        self._sources = {name: value for name, value in sources.items() if value is not None}
        self._values = {}

    def has(self, *names: str) -> bool:
        return all(name in self._sources for name in names)

    def __getitem__(self, name: str):
        if name not in self._values:
            value = self._sources[name]
            self._values[name] = value() if callable(value) else value
        return self._values[name]


@dataclass(frozen=True)
class UnknownScore:
    """An unknown score: the evidence it reads, and how it scores (larger: more unknown)."""

    needs: tuple[str, ...]
    compute: Callable[..., np.ndarray]

    def __call__(self, evidence: Evidence) -> np.ndarray:
        return np.asarray(self.compute(*(evidence[name] for name in self.needs)), dtype=np.float64)


#: every unknown score a model may use, by the name its folder stores
UNKNOWN_SCORES = {
    "library cosine": UnknownScore(("library_similarity",), lambda best: 1 - np.asarray(best, dtype=np.float64)),
    "max softmax": UnknownScore(("logits",), msp_unknown),
    "energy": UnknownScore(("logits",), energy_unknown),
    "nearest embedding": UnknownScore(("embeddings", "reference_embeddings"), nearest_unknown),
    "Mahalanobis": UnknownScore(("embeddings", "reference_embeddings", "reference_labels"), mahalanobis_unknown),
    "best identifier score": UnknownScore(("best_score",), lambda best: 1 - np.asarray(best, dtype=np.float64)),
}


def unknown_score(name: str, evidence: Evidence) -> np.ndarray:
    """The unknown score ``name`` of :data:`UNKNOWN_SCORES`, computed from only what it needs."""
    if name not in UNKNOWN_SCORES:
        raise ModelError(f"unknown score {name!r}: expected one of {list(UNKNOWN_SCORES)}")
    return UNKNOWN_SCORES[name](evidence)


def unknown_candidates(evidence: Evidence) -> dict:
    """Every unknown score of :data:`UNKNOWN_SCORES` the evidence can give, by name."""
    return {name: score(evidence) for name, score in UNKNOWN_SCORES.items() if evidence.has(*score.needs)}


def choose_unknown_score(candidates: dict, unknown: np.ndarray) -> tuple[str, float, dict]:
    """``(name, threshold, AUROC of each)``: the score that best tells validation spectra of minerals
    the network did not train on (``unknown``) from the others, and the threshold that accepts
    :data:`ACCEPT_KNOWN` of the known ones. Without both kinds in validation: the first offered
    (library cosine where the evidence has it). The threshold is None when no known spectrum is
    there to set it: the flag then never fires.
    """
    from sklearn.metrics import roc_auc_score

    unknown = np.asarray(unknown, dtype=bool)
    both = unknown.any() and (~unknown).any()
    auroc = {name: float(roc_auc_score(unknown, s)) for name, s in candidates.items()} if both else {}
    name = max(auroc, key=auroc.get) if auroc else next(iter(candidates))
    known = candidates[name][~unknown] if (~unknown).any() else candidates[name]
    return name, float(np.quantile(known, ACCEPT_KNOWN)) if len(known) else None, auroc
