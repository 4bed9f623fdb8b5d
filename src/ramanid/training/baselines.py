"""Classical baselines with the estimators' interface, for cross-validation and honest comparisons.

- ``lr``: standardise, logistic regression.
- ``svm``: standardise, ANOVA-F feature selection (the best 30% of points), RBF SVM, as in the
  COVID serum reference (Yin et al. 2021).
- ``knn``: k nearest neighbours by cosine distance.
- ``rf``: random forest.
- ``pca_lr``: standardise, PCA, logistic regression.
- ``gbm_pca``: standardise, PCA, histogram gradient boosting; ``vote``: soft vote of lr, svm and
  gbm_pca.
- ``lgbm``: LightGBM on the spectrum itself (Ke et al. 2017).
- ``minirocket``: MiniRocket random-convolution features (Dempster et al. 2021, from ``aeon``),
  standardised, with a ridge classifier whose penalty is chosen by leave-one-out, as published.
- ``auto``: one of lr, svm, minirocket, gbm_pca and lgbm, chosen by inner cross-validation within
  a time budget (:class:`AutoClassifier`).
- ``stack``: a logistic regression on the inner out-of-fold probabilities of lr, svm, minirocket
  and lgbm (:class:`StackedClassifier`).
- ``library``: :class:`~ramanid.search.LibrarySearch` as a classifier.
- For elements: :class:`ClassicalElementIdentifier` (one classifier per element) and
  :class:`FormulaVote` (the formulas of the nearest references).
"""

from __future__ import annotations

import time

import numpy as np
from scipy.special import softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.decomposition import PCA
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier, VotingClassifier
from sklearn.feature_selection import SelectPercentile, VarianceThreshold, f_classif
from sklearn.linear_model import LogisticRegression, RidgeClassifierCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ramanid.chemistry import DEFAULT_ELEMENTS
from ramanid.errors import ModelError
from ramanid.holdout import (
    DEFAULT_RULE,
    ThresholdedMixin,
    best_on_inner_folds,
    check_rule,
    choose_thresholds,
    inner_splits,
    validation_split,
)
from ramanid.search import LibrarySearch, SpectralScore, unit_rows
from ramanid.targets import check_presence
from ramanid.training.saved import is_finite, is_whole

#: the classical baselines :func:`classical_model` builds
CLASSICAL = (
    "lr",
    "svm",
    "knn",
    "rf",
    "pca_lr",
    "gbm_pca",
    "lgbm",
    "minirocket",
    "vote",
    "auto",
    "stack",
    "library",
    "formula_vote",
)
#: classical models for elements only
ELEMENTS_ONLY = ("formula_vote",)
#: what ``vote`` averages
VOTE_MEMBERS = ("lr", "svm", "gbm_pca")
#: what ``auto`` chooses among, cheapest first (a budget that runs out leaves the dearest untried)
AUTO_CANDIDATES = ("lr", "svm", "minirocket", "gbm_pca", "lgbm")
#: what ``stack`` combines
STACK_MEMBERS = ("lr", "svm", "minirocket", "lgbm")
#: the penalties the ridge classifier of ``minirocket`` chooses among (Dempster et al. 2021)
RIDGE_ALPHAS = tuple(np.logspace(-3, 3, 10))


def classical_model(name: str, random_state: int | None = 0, **params):
    """A scikit-learn classifier by name: one of :data:`CLASSICAL`.

    ``gbm_pca`` is histogram gradient boosting (scikit-learn's LightGBM-style booster; Ke et al.
    2017) on the principal components holding 99% of the variance; ``vote`` averages the
    probabilities of :data:`VOTE_MEMBERS`; ``auto`` picks one of :data:`AUTO_CANDIDATES` by inner
    cross-validation on the training data (within ``budget`` seconds, where given); ``stack``
    combines :data:`STACK_MEMBERS`.
    """
    makers = {
        "lr": lambda: make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=params.get("max_iter", 2000), C=params.get("C", 1.0))
        ),
        "svm": lambda: make_pipeline(
            StandardScaler(),
            VarianceThreshold(),  # constant points have no F statistic (scikit-learn warns on each fit)
            SelectPercentile(f_classif, percentile=params.get("percentile", 30)),
            # Platt scaling on 5 inner folds, as SVC(probability=True) did before scikit-learn 1.9
            CalibratedClassifierCV(SVC(C=params.get("C", 10.0), random_state=random_state), ensemble=False),
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
        "lgbm": lambda: _lightgbm(random_state),
        "minirocket": lambda: make_pipeline(
            _minirocket(random_state), StandardScaler(), RidgeSoftmax(alphas=RIDGE_ALPHAS)
        ),
        "vote": lambda: VotingClassifier(
            [(name, classical_model(name, random_state)) for name in VOTE_MEMBERS], voting="soft"
        ),
        "auto": lambda: AutoClassifier(AUTO_CANDIDATES, budget=params.get("budget"), random_state=random_state),
        "stack": lambda: StackedClassifier(STACK_MEMBERS, random_state=random_state),
        "library": lambda: LibrarySearch(metric=params.get("metric", "cosine")),
    }
    if name not in makers:
        raise ModelError(f"unknown classical model {name!r}: expected one of {sorted(makers)}")
    return makers[name]()


def _lightgbm(random_state):
    from lightgbm import LGBMClassifier

    return LGBMClassifier(
        n_estimators=300,
        learning_rate=0.05,
        num_leaves=15,
        min_child_samples=5,
        colsample_bytree=0.5,
        random_state=random_state,
        # one thread: LightGBM's trees depend on its thread count, so these are the same on every
        # machine (about 2x slower on 2 cores; cv's --jobs runs folds side by side instead)
        n_jobs=1,
        verbose=-1,
    )


def _minirocket(random_state):
    from aeon.transformations.collection.convolution_based import MiniRocket

    return MiniRocket(random_state=random_state, n_jobs=1)


class RidgeSoftmax(RidgeClassifierCV):
    """scikit-learn's ``RidgeClassifierCV`` with ``predict_proba``: the softmax of its decision
    scores (scores to rank by, not calibrated probabilities; a saved model calibrates them).
    """

    def predict_proba(self, X) -> np.ndarray:
        scores = self.decision_function(X)
        if scores.ndim == 1:
            scores = np.column_stack([-scores, scores])
        return softmax(scores, axis=1)


class AutoClassifier(ClassifierMixin, BaseEstimator):
    """The candidate with the best inner cross-validated balanced accuracy on the training data,
    refitted on all of it; inner folds keep ``groups`` together where ``fit`` is given them.

    With a ``budget`` (seconds), candidates are tried in order until it is spent: one not yet
    started then is left out (``untried_``), and the best of those tried wins. ``chosen_`` names
    it, ``scores_`` holds every tried candidate's inner score and ``seconds_`` what its inner
    folds took.
    """

    def __init__(self, candidates=AUTO_CANDIDATES, folds: int = 3, budget=None, random_state=None):
        self.candidates = candidates
        self.folds = folds
        self.budget = budget
        self.random_state = random_state

    def fit(self, X, y, groups=None):
        from sklearn.metrics import balanced_accuracy_score

        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        splits = inner_splits(X, y, groups, self.folds, self.random_state or 0)
        start = time.perf_counter()

        def within_budget():
            for i, name in enumerate(self.candidates):
                if i and self.budget is not None and time.perf_counter() - start > self.budget:
                    return
                yield name

        self.seconds_ = {}

        def score(name, train, test):
            if len(np.unique(y[train])) < 2:
                return None
            began = time.perf_counter()
            model = classical_model(name, self.random_state).fit(X[train], y[train])
            accuracy = balanced_accuracy_score(y[test], model.predict(X[test]))
            self.seconds_[name] = self.seconds_.get(name, 0.0) + time.perf_counter() - began
            return accuracy

        self.chosen_, self.scores_ = best_on_inner_folds(within_budget(), score, splits)
        self.untried_ = [name for name in self.candidates if name not in self.scores_]
        self.model_ = classical_model(self.chosen_, self.random_state).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X):
        check_is_fitted(self, "model_")
        return self.model_.predict_proba(validate_data(self, X, dtype=np.float64, reset=False))

    def predict(self, X):
        check_is_fitted(self, "model_")
        return self.model_.predict(validate_data(self, X, dtype=np.float64, reset=False))


class StackedClassifier(ClassifierMixin, BaseEstimator):
    """Stacked generalisation (Wolpert 1992): a logistic regression on the members' class
    probabilities, learnt from out-of-fold probabilities on inner folds of the training data
    (whole groups held out where ``fit`` is given them, so the weights say which member carries
    to a new culture or patient); then every member is refitted on all of it.
    """

    def __init__(self, members=STACK_MEMBERS, folds: int = 3, random_state=None):
        self.members = members
        self.folds = folds
        self.random_state = random_state

    def fit(self, X, y, groups=None):
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        out_of_fold = np.zeros((len(X), len(self.members) * len(self.classes_)))
        for train, test in inner_splits(X, y, groups, self.folds, self.random_state or 0):
            fitted = [classical_model(name, self.random_state).fit(X[train], y[train]) for name in self.members]
            out_of_fold[test] = self._features(fitted, X[test])
        self.final_ = LogisticRegression(max_iter=2000).fit(out_of_fold, y)
        self.members_ = [classical_model(name, self.random_state).fit(X, y) for name in self.members]
        return self

    def _features(self, fitted, X) -> np.ndarray:
        """Each member's probabilities of every class (0 for a class its training part lacked)."""
        columns = []
        for model in fitted:
            proba = np.zeros((len(X), len(self.classes_)))
            proba[:, np.searchsorted(self.classes_, model.classes_)] = model.predict_proba(X)
            columns.append(proba)
        return np.hstack(columns)

    def predict_proba(self, X):
        check_is_fitted(self, "final_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return self.final_.predict_proba(self._features(self.members_, X))

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class ClassicalElementIdentifier(ThresholdedMixin, BaseEstimator):
    """One classical classifier per element, with thresholds chosen on a validation split.

    The classical counterpart of :class:`~ramanid.training.estimators.ElementIdentifier`, for
    honest baselines: ``base`` is a name for :func:`classical_model` (``lr``, ``rf``, ...).
    """

    def __init__(
        self, elements=DEFAULT_ELEMENTS, base="lr", threshold=DEFAULT_RULE, val_fraction=0.15, random_state=None
    ):
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
        self.validation_index_ = val
        X_tr, X_val, Y_tr, Y_val = X[train], X[val], Y[train], Y[val]
        self.elements_ = list(self.elements)
        self.models_ = []
        for j in range(Y.shape[1]):
            single = Y_tr[:, j].min() == Y_tr[:, j].max()
            self.models_.append(
                float(Y_tr[0, j]) if single else classical_model(self.base, self.random_state).fit(X_tr, Y_tr[:, j])
            )
        self.thresholds_ = choose_thresholds(Y_val, self._scores(X_val), self.threshold, share=Y.mean(axis=0))
        return self

    def _scores(self, X) -> np.ndarray:
        return np.column_stack(
            [np.full(len(X), m) if isinstance(m, float) else m.predict_proba(X)[:, 1] for m in self.models_]
        )

    def predict_proba(self, X):
        check_is_fitted(self, "models_")
        return self._scores(validate_data(self, X, dtype=np.float64, reset=False))


def shares_of(weights: np.ndarray) -> np.ndarray:
    """Each row of ``weights`` divided by its sum (however small: a high power makes weights of
    1e-90), or zeros where nothing weighs.
    """
    total = weights.sum(axis=1, keepdims=True)
    return np.divide(weights, total, out=np.zeros_like(weights), where=total > 0)


class FormulaVote(ThresholdedMixin, BaseEstimator):
    """Elements by a vote of the nearest references' formulas: each element's score is the
    weighted share of the ``k`` most similar training spectra whose mineral contains it, each
    weighted by its similarity to the power ``power`` (a high power lets many neighbours vote
    while the closest count most). The library-search baseline for element identification;
    thresholds are chosen on a validation split (whole groups where ``fit`` is given them), as
    for the other identifiers.

    Similarity is the cosine of the spectra under
    :class:`~ramanid.search.SpectralScore` ``(intensity_power, derivative_window)``: intensities
    to ``intensity_power`` (below 1, weak bands count beside the strongest, Stein & Scott 1994),
    then a Savitzky-Golay first derivative over ``derivative_window`` points where it is not 0.
    The default, ``(1, 0)``, is the plain cosine of the spectra.
    """

    def __init__(
        self,
        elements=DEFAULT_ELEMENTS,
        k=5,
        threshold=DEFAULT_RULE,
        val_fraction=0.15,
        random_state=None,
        power=1,
        intensity_power=1.0,
        derivative_window=0,
    ):
        self.elements = elements
        self.k = k
        self.power = power
        self.intensity_power = intensity_power
        self.derivative_window = derivative_window
        self.threshold = threshold
        self.val_fraction = val_fraction
        self.random_state = random_state

    def fit(self, X, Y, groups=None):
        """Keep the references; choose thresholds on validation queries against the others."""
        check_rule(self.threshold)
        if not isinstance(self.k, (int, np.integer)) or self.k < 1:
            raise ModelError(f"k {self.k!r}: expected a whole number of neighbours >= 1")
        if not (is_finite(self.power) and 0 < self.power <= 1000):
            raise ModelError(f"power {self.power!r}: expected a number in (0, 1000]")
        X, Y = validate_data(self, X, Y, dtype=np.float64, multi_output=True)
        Y = check_presence(Y, self.elements)
        self._score()  # a bad score is refused before anything is fitted
        train, val = validation_split(len(X), self.val_fraction, self.random_state or 0, groups=groups)
        self.elements_ = list(self.elements)
        scores = np.zeros(Y[val].shape)
        if len(val):
            self.keep(X[train], Y[train])
            scores = self._scores(X[val])
        # the validation spectra become references below: their scores are these, against the others
        self.validation_index_, self.validation_scores_ = val, scores
        self.thresholds_ = choose_thresholds(Y[val], scores, self.threshold, share=Y.mean(axis=0))
        return self.keep(X, Y)

    def keep(self, X, Y) -> FormulaVote:
        """Vote with the references ``X``, whose element presence is ``Y``."""
        self.library_, self.presence_ = self._unit(X), Y
        return self

    def _score(self) -> SpectralScore | None:
        """The spectral score the similarities are cosines under; None for the plain cosine (and
        for a vote saved before it had one).
        """
        power, window = getattr(self, "intensity_power", 1.0), getattr(self, "derivative_window", 0)
        if not (is_finite(power) and is_whole(window, 0, 10**4)):
            raise ModelError(
                f"intensity_power {power!r}, derivative_window {window!r}: expected a number in (0, 1] "
                "and a whole number of points (0: no derivative)"
            )
        return None if (power, window) == (1, 0) else SpectralScore(float(power), int(window))

    def _unit(self, X) -> np.ndarray:
        """``X`` under the spectral score, each row of unit length, in float32: a neighbour's rank
        needs no more digits, and the library takes half the memory.
        """
        score = self._score()
        return unit_rows(np.asarray(X if score is None else score(X), dtype=np.float32))

    def similarity(self, X) -> np.ndarray:
        """``(queries, references)``: the cosines the vote reads, under its spectral score."""
        references = self.library_
        if isinstance(references, LibrarySearch):  # a vote saved before: its unit rows, in float64
            references = references.library_
        return self._unit(X) @ references.T

    def neighbours(self, X, similarity: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(positions, weights)``, each ``(queries, k)``: the references that vote for each
        spectrum, most similar first, and their weights (similarity, clipped at 0, to the power
        ``power``); ``similarity`` is :meth:`similarity` of ``X`` where it is at hand.
        """
        similarity = np.clip(self.similarity(X) if similarity is None else similarity, 0, None)
        k = min(self.k, similarity.shape[1])
        nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        power = getattr(self, "power", 1)  # a vote saved before it had one
        weights = np.take_along_axis(similarity, nearest, axis=1).astype(np.float64) ** power  # float32 underflows
        order = np.argsort(-weights, axis=1, kind="stable")
        return np.take_along_axis(nearest, order, axis=1), np.take_along_axis(weights, order, axis=1)

    def votes(self, nearest: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """``(queries, elements)``: the weighted share of references ``nearest`` (each query's,
        with its ``weights``) that hold each element.
        """
        return np.einsum("qk,qke->qe", shares_of(weights), self.presence_[nearest].astype(np.float64))

    def _scores(self, X) -> np.ndarray:
        return self.votes(*self.neighbours(X))

    def predict_proba(self, X):
        """Per element, the weighted share of the nearest references that contain it."""
        check_is_fitted(self, "library_")
        return self._scores(validate_data(self, X, dtype=np.float64, reset=False))


class MeanOfVotes:
    """The mean of formula votes that compare different kinds of spectra: each kind finds other
    neighbours (plain spectra weigh the strongest bands, square roots the weak ones too,
    derivatives the band shapes), and their mean errs less than any one of them on minerals never
    seen (``benchmarks/RESULTS.md``, "The blend's vote: a mean over kinds of spectra").
    """

    def __init__(self, votes: list[FormulaVote]):
        if not votes:
            raise ModelError("a mean of votes needs at least one vote")
        self.votes = list(votes)

    @property
    def elements_(self) -> list[str]:
        return self.votes[0].elements_

    @property
    def k(self) -> int:
        """Each vote's neighbours."""
        return self.votes[0].k

    def keep(self, X, Y) -> MeanOfVotes:
        """Every vote takes the references ``X``, whose element presence is ``Y``."""
        for vote in self.votes:
            vote.keep(X, Y)
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Per element, the mean of the votes' weighted shares."""
        return np.mean([vote.predict_proba(X) for vote in self.votes], axis=0)

    def voters(self, x) -> list[tuple[int, float, float]]:
        """``(reference, similarity, share)`` of every reference that votes for the one spectrum
        ``x`` (a row), largest share first: its share of the mean vote (the shares sum to 1, and
        each element's probability is the sum of the shares of the references that hold it) and
        its similarity averaged over the kinds of spectra.
        """
        shares, similarity = {}, np.zeros(len(self.votes[0].presence_))
        for vote in self.votes:
            cosines = vote.similarity(x[None, :])
            positions, weights = vote.neighbours(x[None, :], cosines)
            for i, weight in zip(positions[0], shares_of(weights)[0], strict=True):
                shares[int(i)] = shares.get(int(i), 0.0) + weight / len(self.votes)
            similarity += np.clip(cosines[0], 0, None) / len(self.votes)
        order = sorted(shares, key=lambda i: (-shares[i], i))
        return [(i, float(similarity[i]), shares[i]) for i in order]
