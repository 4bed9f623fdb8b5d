"""Held-out parts of a training set, and the choices made on them: the internal validation split,
inner cross-validation folds, the best candidate on them, and decision thresholds.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import precision_recall_curve, roc_auc_score, roc_curve
from sklearn.model_selection import GroupKFold, GroupShuffleSplit, KFold, StratifiedKFold, train_test_split

from ramanid.errors import ModelError

RULES = ("share", "youden", "f1")
#: the rule element models use unless told otherwise
DEFAULT_RULE = "share"


def validation_split(n: int, fraction: float, seed: int, stratify=None, groups=None) -> tuple[np.ndarray, np.ndarray]:
    """``(train, validation)`` positions among ``n`` training spectra.

    With ``groups`` (e.g. minerals, specimens or patients), whole groups are held out, so that
    early stopping and thresholds are chosen on groups training did not see, as the outer split
    does. Otherwise the split is stratified by ``stratify`` where every class allows it. Fewer
    than 10 spectra, or ``fraction=0``: no validation.
    """
    index = np.arange(n)
    if not fraction or n < 10:
        return index, index[:0]
    if groups is not None and len(np.unique(groups)) >= 2:
        train, val = next(
            GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed).split(index, groups=groups)
        )
        return np.sort(train), np.sort(val)
    try:
        train, val = train_test_split(index, test_size=fraction, random_state=seed, stratify=stratify)
    except ValueError:  # a class too small to stratify
        train, val = train_test_split(index, test_size=fraction, random_state=seed)
    return np.sort(train), np.sort(val)


def inner_splits(X, y, groups=None, folds: int = 3, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Inner cross-validation folds of a training part, for choices made on it alone.

    With two or more ``groups``, whole groups are held out (up to ``folds`` folds: leave one
    replicate culture out when training has two), as the outer split does; otherwise the folds
    are stratified, with no more folds than the smallest class has spectra (shuffled k-fold for
    element presence, a matrix).
    """
    y = np.asarray(y)
    if groups is not None and len(np.unique(groups)) >= 2:
        return list(GroupKFold(min(folds, len(np.unique(groups)))).split(X, y, groups))
    if y.ndim != 1:
        return list(KFold(folds, shuffle=True, random_state=seed).split(X))
    smallest = int(np.unique(y, return_counts=True)[1].min())
    return list(StratifiedKFold(max(2, min(folds, smallest)), shuffle=True, random_state=seed).split(X, y))


def best_on_inner_folds(candidates, score, splits) -> tuple[object, dict]:
    """``(best, scores)``: the candidate whose mean ``score(candidate, train, test)`` over the inner
    ``splits`` is highest, and each candidate's mean (keyed by the candidate). A fold that returns
    ``None`` (it cannot score that candidate) and NaN fold scores are left out; a candidate with no
    fold scores -inf, and one whose folds are all NaN ranks below every number.
    """
    scores = {}
    for candidate in candidates:
        folds = [s for s in (score(candidate, train, test) for train, test in splits) if s is not None]
        scores[candidate] = float(np.nanmean(folds)) if folds else float("-inf")
    best = max(scores, key=lambda c: np.nan_to_num(scores[c], nan=-np.inf))
    return best, scores


def check_rule(rule) -> None:
    """A :class:`ModelError` unless ``rule`` is one of :data:`RULES` or a number."""
    if isinstance(rule, str) and rule not in RULES:
        raise ModelError(f"unknown threshold rule {rule!r}: expected one of {list(RULES)} or a number")


def choose_thresholds(
    Y_val: np.ndarray, scores: np.ndarray, rule=DEFAULT_RULE, share: np.ndarray | None = None
) -> np.ndarray:
    """Per-column decision thresholds chosen on validation data.

    ``rule="share"`` reports as many validation spectra present as truly are (the threshold is
    the score of the validation spectrum at that rank; among tied scores, the closest count), so
    that the share of a new set reported present follows its true share where the validation
    spectra are like it; with ``share`` (per column, e.g. the whole training part's), as many as
    that share of them: a validation split of a few hundred whole minerals can hold one element
    in a share far from the training part's, and its thresholds then over- or under-report it.
    ``"youden"`` maximises sensitivity + specificity - 1 (Youden 1950), which reports more
    spectra present where the element is rare; ``"f1"`` maximises F1; a number is used as it
    is. A column whose validation data hold one class only, or an empty validation set, gets
    0.5. A threshold above every score (scikit-learn's first ROC point is infinite) is clipped
    to the highest validation score, so scores that are not probabilities keep their scale.
    """
    check_rule(rule)
    columns = Y_val.shape[1]
    if not isinstance(rule, str):
        return np.full(columns, float(rule))
    thresholds = np.full(columns, 0.5)
    for j in range(columns if len(Y_val) else 0):
        truth = Y_val[:, j]
        if truth.min() == truth.max():
            continue
        if rule == "share":
            positives = int(truth.sum()) if share is None else int(round(share[j] * len(truth)))
            thresholds[j] = _share_threshold(scores[:, j], positives)
        elif rule == "youden":
            fpr, tpr, cut = roc_curve(truth, scores[:, j])
            thresholds[j] = min(cut[np.argmax(tpr - fpr)], scores[:, j].max())
        else:
            precision, recall, cut = precision_recall_curve(truth, scores[:, j])
            f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
            thresholds[j] = cut[np.argmax(f1)]
    return thresholds


def _share_threshold(scores: np.ndarray, positives: int) -> float:
    """The score at or above which the count of ``scores`` is closest to ``positives`` (the
    fewer where two are as close): tied scores are all above a threshold or all below it.
    """
    values, counts = np.unique(scores, return_counts=True)
    at_or_above = np.cumsum(counts[::-1])[::-1]  # how many scores reach each distinct value
    return float(values[np.argmin(np.abs(at_or_above - positives) - 1e-9 * (at_or_above < positives))])


def macro_roc_auc(Y: np.ndarray, scores: np.ndarray) -> float:
    """The mean ROC AUC over the columns of ``Y`` that hold both classes (NaN if none does)."""
    aucs = [roc_auc_score(Y[:, j], scores[:, j]) for j in range(Y.shape[1]) if 0 < Y[:, j].sum() < len(Y)]
    return float(np.mean(aucs)) if aucs else float("nan")


class ThresholdedMixin:
    """``predict`` for multi-label scorers: 1 where ``predict_proba`` reaches the column's threshold."""

    def predict(self, X):
        """0/1 per column: the score at or above the column's threshold (``thresholds_``)."""
        return (self.predict_proba(X) >= self.thresholds_).astype(int)
