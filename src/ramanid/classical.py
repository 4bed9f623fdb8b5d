"""Classical baselines with the estimators' interface, and a correlation library search.

- ``lr``: standardise, logistic regression.
- ``svm``: standardise, ANOVA-F feature selection (the best 30% of points), RBF SVM, as in the
  COVID serum reference (Yin et al. 2021).
- ``knn``: k nearest neighbours by cosine distance.
- ``rf``: random forest.
- ``pca_lr``: standardise, PCA, logistic regression.
- ``gbm_pca``: standardise, PCA, histogram gradient boosting; ``vote``: soft vote of lr, svm and
  gbm_pca; ``auto``: one of them, chosen by inner cross-validation (:class:`AutoClassifier`).
- :class:`LibrarySearch`: rank reference spectra by cosine, Pearson, HQI or first-derivative
  correlation.
- :class:`SpectralScore`: the compressed, differentiated spectra a robust library search compares.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.signal import savgol_filter
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.decomposition import PCA
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier, VotingClassifier
from sklearn.feature_selection import SelectPercentile, f_classif
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ramanid.chemistry import DEFAULT_ELEMENTS
from ramanid.errors import ModelError
from ramanid.targets import check_presence
from ramanid.validation import check_rule, choose_thresholds, inner_splits, validation_split

METRICS = ("cosine", "pearson", "hqi", "derivative")
#: Savitzky-Golay window (points) of the ``derivative`` library search
DERIVATIVE_WINDOW = 15
#: the classical baselines :func:`classical_model` builds
CLASSICAL = ("lr", "svm", "knn", "rf", "pca_lr", "gbm_pca", "vote", "auto", "library", "formula_vote")
#: classical models for elements only
ELEMENTS_ONLY = ("formula_vote",)
#: what ``auto`` chooses among, and ``vote`` averages
AUTO_CANDIDATES = ("lr", "svm", "gbm_pca")


def classical_model(name: str, random_state: int | None = 0, **params):
    """A scikit-learn classifier by name: one of :data:`CLASSICAL`.

    ``gbm_pca`` is histogram gradient boosting (scikit-learn's LightGBM-style booster; Ke et al.
    2017) on the principal components holding 99% of the variance; ``vote`` averages the
    probabilities of lr, svm and gbm_pca; ``auto`` picks one of them by inner cross-validation on
    the training data.
    """
    makers = {
        "lr": lambda: make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=params.get("max_iter", 2000), C=params.get("C", 1.0))
        ),
        "svm": lambda: make_pipeline(
            StandardScaler(),
            SelectPercentile(f_classif, percentile=params.get("percentile", 30)),
            SVC(C=params.get("C", 10.0), probability=True, random_state=random_state),
        ),
        "knn": lambda: KNeighborsClassifier(n_neighbors=params.get("n_neighbors", 1), metric="cosine"),
        "rf": lambda: RandomForestClassifier(
            n_estimators=params.get("n_estimators", 500), n_jobs=-1, random_state=random_state
        ),
        "pca_lr": lambda: make_pipeline(
            StandardScaler(),
            PCA(params.get("n_components", 50), random_state=random_state),
            LogisticRegression(max_iter=2000),
        ),
        "gbm_pca": lambda: make_pipeline(
            StandardScaler(),
            PCA(params.get("n_components", 0.99), random_state=random_state),
            HistGradientBoostingClassifier(
                max_iter=params.get("max_iter", 200),
                min_samples_leaf=params.get("min_samples_leaf", 5),
                random_state=random_state,
            ),
        ),
        "vote": lambda: VotingClassifier(
            [(name, classical_model(name, random_state)) for name in AUTO_CANDIDATES], voting="soft"
        ),
        "auto": lambda: AutoClassifier(AUTO_CANDIDATES, random_state=random_state),
        "library": lambda: LibrarySearch(metric=params.get("metric", "cosine")),
    }
    if name not in makers:
        raise ModelError(f"unknown classical model {name!r}: expected one of {sorted(makers)}")
    return makers[name]()


def best_per_class(similarity: np.ndarray, reference_class: np.ndarray, n_classes: int) -> np.ndarray:
    """``(queries, classes)``: for each class, the best similarity among its references (-inf if none)."""
    scores = np.full((len(similarity), n_classes), -np.inf, dtype=similarity.dtype)
    np.maximum.at(scores.T, reference_class, similarity.T)
    return scores


def normalised(scores: np.ndarray) -> np.ndarray:
    """Scores clipped at 0 and scaled to sum to 1 per row (uniform where all are 0)."""
    scores = np.clip(scores, 0, None)
    total = scores.sum(axis=1, keepdims=True)
    return np.divide(scores, total, out=np.full_like(scores, 1 / scores.shape[1]), where=total > 0)


class AutoClassifier(ClassifierMixin, BaseEstimator):
    """The candidate with the best inner cross-validated balanced accuracy on the training data,
    refitted on all of it; inner folds keep ``groups`` together where ``fit`` is given them.

    ``chosen_`` names it and ``scores_`` holds every candidate's inner score.
    """

    def __init__(self, candidates=AUTO_CANDIDATES, folds: int = 3, random_state=None):
        self.candidates = candidates
        self.folds = folds
        self.random_state = random_state

    def fit(self, X, y, groups=None):
        from sklearn.metrics import balanced_accuracy_score

        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        splits = inner_splits(X, y, groups, self.folds, self.random_state or 0)
        self.scores_ = {}
        for name in self.candidates:
            scores = []
            for train, test in splits:
                if len(np.unique(y[train])) < 2:
                    continue
                model = classical_model(name, self.random_state).fit(X[train], y[train])
                scores.append(balanced_accuracy_score(y[test], model.predict(X[test])))
            self.scores_[name] = float(np.mean(scores)) if scores else float("-inf")
        self.chosen_ = max(self.scores_, key=self.scores_.get)
        self.model_ = classical_model(self.chosen_, self.random_state).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X):
        check_is_fitted(self, "model_")
        return self.model_.predict_proba(validate_data(self, X, dtype=np.float64, reset=False))

    def predict(self, X):
        check_is_fitted(self, "model_")
        return self.model_.predict(validate_data(self, X, dtype=np.float64, reset=False))


def unit_rows(X: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), in float32 or wider as given."""
    X = np.asarray(X, dtype=np.result_type(X, np.float32))
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return np.divide(X, norms, out=np.zeros_like(X), where=norms > 0)


def first_derivative(X: np.ndarray, window: int) -> np.ndarray:
    """The Savitzky-Golay (1964) first derivative of each row: a quadratic fitted over ``window`` points."""
    if window > X.shape[1]:
        raise ModelError(f"derivative window {window} is longer than the spectra ({X.shape[1]} points)")
    return savgol_filter(X, window, 2, deriv=1, axis=1).astype(X.dtype)


@dataclass(frozen=True)
class SpectralScore:
    """The spectra a robust library search compares, as unit rows (so a dot product is a cosine).

    Intensities are raised to ``power`` (negative values cut at 0 first), so that weak bands
    count beside the strongest one, as intensity weighting does in mass-spectral library search
    (Stein & Scott 1994); then, for ``window > 0``, replaced by their Savitzky-Golay first
    derivative, which drops what a baseline correction left and sharpens bands (the "first
    derivative correlation" of commercial search software). ``SpectralScore()`` is plain cosine.
    """

    power: float = 1.0
    window: int = 0

    def __post_init__(self):
        if not 0 < self.power <= 1 or not (self.window == 0 or (self.window >= 3 and self.window % 2 == 1)):
            raise ModelError(
                f"spectral score power {self.power}, window {self.window}: expected a power in (0, 1] and a "
                "window of 0 (no derivative) or an odd number of points from 3"
            )

    def __call__(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        if self.power != 1:
            X = np.clip(X, 0, None) ** np.float32(self.power)
        if self.window:
            X = first_derivative(X, self.window)
        return unit_rows(X)


class LibrarySearch(ClassifierMixin, BaseEstimator):
    """Rank the training (library) spectra by similarity to each query.

    Parameters
    ----------
    metric : {"cosine", "pearson", "hqi", "derivative"}
        Cosine similarity; Pearson correlation (cosine of mean-centred spectra); the hit quality
        index, the squared cosine used by commercial Raman libraries; or first-derivative
        correlation (Pearson correlation of Savitzky-Golay first derivatives over
        :data:`DERIVATIVE_WINDOW` points), the commercial search for spectra with baseline left.

    ``predict_proba`` gives, per class, the best similarity among that class's library spectra
    (normalised to sum to one), so top-k accuracy ranks classes by their best match.
    """

    def __init__(self, metric: str = "cosine"):
        self.metric = metric

    def fit(self, X, y, meta: pd.DataFrame | None = None):
        if self.metric not in METRICS:
            raise ModelError(f"unknown metric {self.metric!r}: expected one of {METRICS}")
        X, y = validate_data(self, X, y, dtype=np.float64)
        with warnings.catch_warnings():  # a library holds few spectra per class: that is no regression target
            warnings.filterwarnings("ignore", "The number of unique classes", UserWarning)
            check_classification_targets(y)
        self.classes_, self.library_labels_ = np.unique(y, return_inverse=True)
        self.library_ = self._unit(X)
        self.library_meta_ = None if meta is None else meta.reset_index(drop=True)
        return self

    def _unit(self, X: np.ndarray) -> np.ndarray:
        if self.metric == "derivative":
            X = first_derivative(X, DERIVATIVE_WINDOW)
        if self.metric in ("pearson", "derivative"):
            X = X - X.mean(axis=1, keepdims=True)
        return unit_rows(X)

    def similarity(self, X) -> np.ndarray:
        """``(n_queries, n_library)`` similarities."""
        check_is_fitted(self, "library_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        sim = self._unit(X) @ self.library_.T
        return sim**2 if self.metric == "hqi" else sim

    def class_scores(self, X) -> np.ndarray:
        """``(queries, classes)``: each class's best library similarity."""
        return best_per_class(self.similarity(X), self.library_labels_, len(self.classes_))

    def predict_proba(self, X):
        """Class scores clipped at 0 and normalised to sum to 1 (a ranking, not a calibrated probability)."""
        return normalised(self.class_scores(X))

    def predict(self, X):
        best = np.argmax(self.class_scores(X), axis=1)
        return self.classes_[best]

    def search(self, X, k: int = 5) -> list[pd.DataFrame]:
        """For each query, the ``k`` best library matches: index, label, similarity and metadata."""
        sim = self.similarity(X)
        k = min(k, sim.shape[1])
        best = np.argsort(-sim, axis=1, kind="stable")[:, :k]
        results = []
        for row, index in zip(sim, best, strict=False):
            table = pd.DataFrame(
                {"library_index": index, "label": self.classes_[self.library_labels_[index]], "similarity": row[index]}
            )
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

    def __init__(self, elements=DEFAULT_ELEMENTS, base="lr", threshold="youden", val_fraction=0.15, random_state=None):
        self.elements = elements
        self.base = base
        self.threshold = threshold
        self.val_fraction = val_fraction
        self.random_state = random_state

    def fit(self, X, Y, groups=None):
        """One ``base`` classifier per column of ``Y``; thresholds on a validation split (whole
        groups held out when ``groups`` is given).
        """
        check_rule(self.threshold)
        classical_model(self.base)  # an unknown base fails here, before any work
        X, Y = validate_data(self, X, Y, dtype=np.float64, multi_output=True)
        Y = check_presence(Y, self.elements)
        train, val = validation_split(len(X), self.val_fraction, self.random_state or 0, groups=groups)
        X_tr, X_val, Y_tr, Y_val = X[train], X[val], Y[train], Y[val]
        self.elements_ = list(self.elements)
        self.models_ = []
        for j in range(Y.shape[1]):
            single = Y_tr[:, j].min() == Y_tr[:, j].max()
            self.models_.append(
                float(Y_tr[0, j]) if single else classical_model(self.base, self.random_state).fit(X_tr, Y_tr[:, j])
            )
        self.thresholds_ = choose_thresholds(Y_val, self._scores(X_val), self.threshold)
        return self

    def _scores(self, X) -> np.ndarray:
        return np.column_stack(
            [np.full(len(X), m) if isinstance(m, float) else m.predict_proba(X)[:, 1] for m in self.models_]
        )

    def predict_proba(self, X):
        check_is_fitted(self, "models_")
        return self._scores(validate_data(self, X, dtype=np.float64, reset=False))

    def predict(self, X):
        return (self.predict_proba(X) >= self.thresholds_).astype(int)


class FormulaVote(BaseEstimator):
    """Elements by a vote of the nearest references' formulas: each element's score is the
    similarity-weighted share of the ``k`` most similar training spectra (cosine) whose mineral
    contains it. The library-search baseline for element identification; thresholds are chosen on
    a validation split (whole groups where ``fit`` is given them), as for the other identifiers.
    """

    def __init__(self, elements=DEFAULT_ELEMENTS, k=5, threshold="youden", val_fraction=0.15, random_state=None):
        self.elements = elements
        self.k = k
        self.threshold = threshold
        self.val_fraction = val_fraction
        self.random_state = random_state

    def fit(self, X, Y, groups=None):
        """Keep the references; choose thresholds on validation queries against the others."""
        check_rule(self.threshold)
        if not isinstance(self.k, (int, np.integer)) or self.k < 1:
            raise ModelError(f"k {self.k!r}: expected a whole number of neighbours >= 1")
        X, Y = validate_data(self, X, Y, dtype=np.float64, multi_output=True)
        Y = check_presence(Y, self.elements)
        train, val = validation_split(len(X), self.val_fraction, self.random_state or 0, groups=groups)
        self.elements_ = list(self.elements)
        scores = np.zeros(Y[val].shape)
        if len(val):
            self.library_, self.presence_ = LibrarySearch("cosine").fit(X[train], np.arange(len(train))), Y[train]
            scores = self._scores(X[val])
        self.thresholds_ = choose_thresholds(Y[val], scores, self.threshold)
        self.library_, self.presence_ = LibrarySearch("cosine").fit(X, np.arange(len(X))), Y
        return self

    def _scores(self, X) -> np.ndarray:
        similarity = np.clip(self.library_.similarity(X), 0, None)
        k = min(self.k, similarity.shape[1])
        nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        weights = np.take_along_axis(similarity, nearest, axis=1)
        votes = np.einsum("qk,qke->qe", weights, self.presence_[nearest].astype(np.float64))
        return votes / np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)

    def predict_proba(self, X):
        """Per element, the weighted share of the nearest references that contain it."""
        check_is_fitted(self, "library_")
        return self._scores(validate_data(self, X, dtype=np.float64, reset=False))

    def predict(self, X):
        """0/1 per element: the vote at or above the element's threshold."""
        return (self.predict_proba(X) >= self.thresholds_).astype(int)
