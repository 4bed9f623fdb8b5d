"""Choices made on the training part only: preprocessing picked by inner cross-validation."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import RidgeClassifier
from sklearn.metrics import balanced_accuracy_score
from sklearn.pipeline import make_pipeline as sk_pipeline
from sklearn.preprocessing import StandardScaler

from ramanid.errors import ModelError
from ramanid.preprocessing import make_pipeline
from ramanid.validation import inner_splits

#: the presets ``--preprocess auto`` chooses among ("none": the spectra as built)
CANDIDATES = ("none", "snv", "arpls, snv", "savgol, snv", "deriv1(window_length=15), vector")


def preprocess(spec: str | None, X_fit: np.ndarray, shifts, *others: np.ndarray) -> list[np.ndarray]:
    """``X_fit`` and ``others`` through the pipeline of ``spec`` fitted on ``X_fit`` only ("none" or
    None: unchanged).
    """
    if spec in (None, "", "none"):
        return [X_fit, *others]
    pipeline = make_pipeline(spec, shifts)
    return [
        pipeline.fit_transform(X_fit).astype(np.float32),
        *(pipeline.transform(X).astype(np.float32) for X in others),
    ]


def choose_preprocessing(X, y, shifts, groups=None, candidates=CANDIDATES, folds: int = 3, seed: int = 0):
    """``(spec, scores)``: the candidate with the best inner cross-validated balanced accuracy of a
    standardised ridge classifier (a fast linear stand-in for every model: closed form, so the
    choice costs seconds even on spectra of 2,000 points), on ``X``, ``y`` alone.

    The inner folds keep ``groups`` together where given, as the outer split does.
    """
    if np.ndim(y) != 1:
        raise ModelError("--preprocess auto chooses for one label per spectrum: give the steps for elements")
    y = np.asarray(y)
    splits = inner_splits(X, y, groups, folds, seed)
    scores = {}
    for spec in candidates:
        accuracy = []
        for train, test in splits:
            X_train, X_test = preprocess(spec, X[train], shifts, X[test])
            model = sk_pipeline(StandardScaler(), RidgeClassifier(alpha=10.0)).fit(X_train, y[train])
            accuracy.append(balanced_accuracy_score(y[test], model.predict(X_test)))
        scores[spec] = float(np.mean(accuracy))
    return max(scores, key=scores.get), scores
