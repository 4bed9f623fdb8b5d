"""Per-group standardisation: each culture's (patient's, batch's) spectra standardised on their
own, so that what differs between groups as a whole (growth medium, instrument day, alignment)
is removed before a model sees them.

``MODEL+by_group`` standardises every training group on its own, point by point (its mean and
standard deviation), and a batch to answer as one more group. It needs no labels of the new
group, but it is transductive: a spectrum's answer depends on the batch it comes with, which
must be spectra of one group (one culture, one patient). The idea is the per-batch centring of
chemometrics' batch-effect corrections (e.g. Johnson et al. 2007, *Biostatistics* 8:118, for
location and scale per batch).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted

#: the model-name suffix of per-group standardisation: ``lr+by_group``
BY_GROUP = "+by_group"
#: the smallest standard deviation a point is divided by (flat points stay finite)
MIN_SD = 1e-9


def standardise_each(X: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """``X`` with each group's rows centred and scaled, point by point, on that group's own mean
    and standard deviation (``groups`` None: all rows are one group).
    """
    X = np.asarray(X, dtype=np.float64)
    groups = np.zeros(len(X)) if groups is None else np.asarray(groups)
    out = np.empty_like(X)
    for group in np.unique(groups):
        rows = groups == group
        part = X[rows]
        out[rows] = (part - part.mean(axis=0)) / np.maximum(part.std(axis=0), MIN_SD)
    return out


class GroupStandardised(ClassifierMixin, BaseEstimator):
    """``base`` fitted on spectra standardised group by group (:func:`standardise_each`); the
    spectra it is asked about are standardised as one group. Transductive (see the module).
    """

    transductive = True

    def __init__(self, base):
        self.base = base

    def fit(self, X, y, groups=None):
        from ramanid.training.factory import fit_estimator

        self.base_ = fit_estimator(clone(self.base), standardise_each(X, groups), y, groups)
        self.classes_ = self.base_.classes_
        self.n_features_in_ = np.shape(X)[1]
        return self

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self, "base_")
        return self.base_.predict_proba(standardise_each(X))

    def predict(self, X) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
