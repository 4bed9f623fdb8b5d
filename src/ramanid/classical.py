"""Classical baselines with the estimators' interface, and a correlation library search.

- ``lr``: standardise, logistic regression.
- ``svm``: standardise, ANOVA-F feature selection (the best 30% of points), RBF SVM, as in the
  COVID serum reference (Yin et al. 2021).
- ``knn``: k nearest neighbours by cosine distance.
- ``rf``: random forest.
- ``pca_lr``: standardise, PCA, logistic regression.
- :class:`LibrarySearch`: rank reference spectra by cosine, Pearson or HQI similarity.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_selection import SelectPercentile, f_classif
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.utils.validation import check_is_fitted, validate_data

from ramanid.chemistry import DEFAULT_ELEMENTS
from ramanid.errors import RamanIdError

METRICS = ("cosine", "pearson", "hqi")


def classical_model(name: str, random_state: int | None = 0, **params):
    """A scikit-learn classifier by name: ``lr``, ``svm``, ``knn``, ``rf``, ``pca_lr`` or ``library``."""
    makers = {
        "lr": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=params.get("max_iter", 2000),
                                                                         C=params.get("C", 1.0))),
        "svm": lambda: make_pipeline(
            StandardScaler(), SelectPercentile(f_classif, percentile=params.get("percentile", 30)),
            SVC(C=params.get("C", 10.0), probability=True, random_state=random_state)),
        "knn": lambda: KNeighborsClassifier(n_neighbors=params.get("n_neighbors", 1), metric="cosine"),
        "rf": lambda: RandomForestClassifier(n_estimators=params.get("n_estimators", 500), n_jobs=-1,
                                             random_state=random_state),
        "pca_lr": lambda: make_pipeline(StandardScaler(), PCA(params.get("n_components", 50), random_state=random_state),
                                        LogisticRegression(max_iter=2000)),
        "library": lambda: LibrarySearch(metric=params.get("metric", "cosine")),
    }
    if name not in makers:
        raise RamanIdError(f"unknown classical model {name!r}: expected one of {sorted(makers)}")
    return makers[name]()


class LibrarySearch(ClassifierMixin, BaseEstimator):
    """Rank the training (library) spectra by similarity to each query.

    Parameters
    ----------
    metric : {"cosine", "pearson", "hqi"}
        Cosine similarity; Pearson correlation (cosine of mean-centred spectra); or the hit
        quality index, the squared cosine used by commercial Raman libraries.

    ``predict_proba`` gives, per class, the best similarity among that class's library spectra
    (normalised to sum to one), so top-k accuracy ranks classes by their best match.
    """

    def __init__(self, metric: str = "cosine"):
        self.metric = metric

    def fit(self, X, y, meta: pd.DataFrame | None = None):
        X, y = validate_data(self, X, y, dtype=np.float64)
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}: expected one of {METRICS}")
        self.classes_, self.library_labels_ = np.unique(y, return_inverse=True)
        self.library_ = self._unit(X)
        self.library_meta_ = None if meta is None else meta.reset_index(drop=True)
        return self

    def _unit(self, X: np.ndarray) -> np.ndarray:
        if self.metric == "pearson":
            X = X - X.mean(axis=1, keepdims=True)
        norms = np.linalg.norm(X, axis=1, keepdims=True)
        return np.divide(X, norms, out=np.zeros_like(X), where=norms > 0)

    def similarity(self, X) -> np.ndarray:
        """``(n_queries, n_library)`` similarities."""
        check_is_fitted(self, "library_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        sim = self._unit(X) @ self.library_.T
        return sim**2 if self.metric == "hqi" else sim

    def class_scores(self, X) -> np.ndarray:
        sim = self.similarity(X)
        scores = np.full((len(sim), len(self.classes_)), -np.inf)
        np.maximum.at(scores.T, self.library_labels_, sim.T)
        return scores

    def predict_proba(self, X):
        scores = np.clip(self.class_scores(X), 0, None)
        total = scores.sum(axis=1, keepdims=True)
        return np.divide(scores, total, out=np.full_like(scores, 1 / scores.shape[1]), where=total > 0)

    def predict(self, X):
        best = np.argmax(self.class_scores(X), axis=1)
        return self.classes_[best]

    def search(self, X, k: int = 5) -> list[pd.DataFrame]:
        """For each query, the ``k`` best library matches: index, label, similarity and metadata."""
        sim = self.similarity(X)
        k = min(k, sim.shape[1])
        best = np.argsort(-sim, axis=1, kind="stable")[:, :k]
        results = []
        for row, index in zip(sim, best):
            table = pd.DataFrame({"library_index": index, "label": self.classes_[self.library_labels_[index]],
                                  "similarity": row[index]})
            if self.library_meta_ is not None:
                extra = self.library_meta_.iloc[index].drop(columns=table.columns, errors="ignore")
                table = pd.concat([table, extra.reset_index(drop=True)], axis=1)
            results.append(table)
        return results


class ClassicalElementIdentifier(BaseEstimator):
    """One classical classifier per element, with thresholds chosen on a validation split.

    The classical counterpart of :class:`~ramanid.training.estimators.ElementIdentifier`, for
    honest baselines: ``base`` is a name for :func:`classical_model` (``lr``, ``rf``, ...).
    """

    def __init__(self, elements=DEFAULT_ELEMENTS, base="lr", threshold="youden",
                 val_fraction=0.15, random_state=None):
        self.elements = elements
        self.base = base
        self.threshold = threshold
        self.val_fraction = val_fraction
        self.random_state = random_state

    def fit(self, X, Y):
        from sklearn.model_selection import train_test_split

        from ramanid.training.estimators import choose_thresholds

        X, Y = validate_data(self, X, Y, dtype=np.float64, multi_output=True)
        Y = np.asarray(Y).reshape(len(X), -1).astype(int)
        X_tr, X_val, Y_tr, Y_val = train_test_split(X, Y, test_size=self.val_fraction,
                                                    random_state=self.random_state or 0)
        self.elements_ = list(self.elements)
        self.models_ = []
        for j in range(Y.shape[1]):
            single = Y_tr[:, j].min() == Y_tr[:, j].max()
            self.models_.append(float(Y_tr[0, j]) if single else
                                classical_model(self.base, self.random_state).fit(X_tr, Y_tr[:, j]))
        self.thresholds_ = choose_thresholds(Y_val, self._scores(X_val), self.threshold)
        return self

    def _scores(self, X) -> np.ndarray:
        return np.column_stack([np.full(len(X), m) if isinstance(m, float) else m.predict_proba(X)[:, 1]
                                for m in self.models_])

    def predict_proba(self, X):
        check_is_fitted(self, "models_")
        return self._scores(validate_data(self, X, dtype=np.float64, reset=False))

    def predict(self, X):
        return (self.predict_proba(X) >= self.thresholds_).astype(int)
