"""External parameter orthogonalisation (EPO; Roger, Chauchard & Bellon-Maurel 2003, *Chemometrics
and Intelligent Laboratory Systems* 66:191): the directions along which the spectra of one class
differ from group to group (culture, patient, instrument day) are projected out of every spectrum
before a model sees it, so that the model cannot lean on them.

``MODEL+epo`` learns those directions from the training groups: for each class held by two or more
groups, each group's mean spectrum of that class minus the class's mean over those groups; the
directions are every right singular vector of these differences (nothing is tuned). Unlike
``MODEL+by_group`` it needs nothing of a new group: each spectrum is answered alone.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted

#: the model-name suffix of external parameter orthogonalisation: ``lr+epo``
EPO = "+epo"
#: singular values below this share of the largest are rounding, not directions
RANK_TOLERANCE = 1e-6


def nuisance_directions(X: np.ndarray, y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """``(directions, points)`` orthonormal rows spanning how each class's group means differ from
    the class's mean over its groups (none where no class is held by two groups).
    """
    differences = []
    for label in np.unique(y):
        in_class = y == label
        means = np.array([X[in_class & (groups == g)].mean(axis=0) for g in np.unique(groups[in_class])])
        if len(means) > 1:
            differences.extend(means - means.mean(axis=0))
    if not differences:
        return np.zeros((0, X.shape[1]))
    _, singular, directions = np.linalg.svd(np.asarray(differences), full_matrices=False)
    return directions[singular > RANK_TOLERANCE * max(singular.max(), np.finfo(float).tiny)]


def project_out(X: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """``X`` minus its components along ``directions`` (orthonormal rows): ``X - X V^T V``."""
    return X - (X @ directions.T) @ directions


class Orthogonalised(ClassifierMixin, BaseEstimator):
    """``base`` fitted on, and asked about, spectra with the training groups' within-class
    differences projected out (:func:`nuisance_directions`); without ``groups`` nothing is removed.
    """

    transductive = False

    def __init__(self, base):
        self.base = base

    def fit(self, X, y, groups=None):
        from ramanid.training.factory import fit_estimator

        X, y = np.asarray(X, dtype=np.float64), np.asarray(y)
        self.directions_ = (
            np.zeros((0, X.shape[1])) if groups is None else nuisance_directions(X, y, np.asarray(groups))
        )
        self.base_ = fit_estimator(clone(self.base), self._projected(X), y, groups)
        self.classes_ = self.base_.classes_
        self.n_features_in_ = X.shape[1]
        return self

    def _projected(self, X) -> np.ndarray:
        return project_out(np.asarray(X, dtype=np.float64), self.directions_).astype(np.float32)

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self, "base_")
        return self.base_.predict_proba(self._projected(X))

    def predict(self, X) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
