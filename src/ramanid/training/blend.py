"""A network's element probabilities blended with the formula vote of the nearest references.

The two see different things: the network learns band shapes shared by minerals with an element,
the vote reads the formulas of the most similar known minerals. Their weighted mean, with the
weight and the vote's neighbours chosen on held-out minerals, is a blend in the sense of stacked
generalisation (Wolpert 1992) restricted to one weight.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils.validation import check_is_fitted

from ramanid.classical import FormulaVote
from ramanid.validation import choose_thresholds, macro_roc_auc

#: the network's share of the blend, chosen among these on the validation split
WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
#: the vote's neighbours, chosen among these with the weight
NEIGHBOURS = (5, 20, 40)
#: ``--model NETWORK+vote`` names a blend
VOTE_SUFFIX = "+vote"


class NetworkAndVote(BaseEstimator):
    """Element probabilities: ``weight`` x the network's + (1 - ``weight``) x the formula vote's.

    The network is fitted once, with its own validation split (whole minerals when ``fit`` is
    given them); on that split, never trained on, the vote of the other training spectra is
    scored, and the weight and ``k`` with the best macro ROC AUC are kept, then the thresholds of
    the blend. The vote then takes every training spectrum as a reference. Without a validation
    split (fewer than 10 spectra) nothing can be chosen and the first candidate, the vote alone
    with the fewest neighbours, is kept.
    """

    def __init__(self, network, weights=WEIGHTS, neighbours=NEIGHBOURS, threshold="youden"):
        self.network = network
        self.weights = weights
        self.neighbours = neighbours
        self.threshold = threshold

    def fit(self, X, Y, groups=None):
        """Fit the network, choose the blend on its validation split, keep every reference."""
        self.network_ = clone(self.network).fit(X, Y, groups=groups)
        self.elements_ = self.network_.elements_
        X, Y = np.asarray(X), np.asarray(Y)
        val = self.network_.validation_index_
        train = np.setdiff1d(np.arange(len(X)), val)
        network = self.network_.predict_proba(X[val])
        votes = {k: FormulaVote(self.elements_, k=k, val_fraction=0).fit(X[train], Y[train]) for k in self.neighbours}
        votes = {k: vote.predict_proba(X[val]) for k, vote in votes.items()}
        blends = {(w, k): w * network + (1 - w) * votes[k] for k in self.neighbours for w in self.weights}
        scores = {choice: macro_roc_auc(Y[val], blend) for choice, blend in blends.items()}
        self.weight_, k = max(scores, key=lambda choice: np.nan_to_num(scores[choice], nan=-np.inf))
        self.chosen_ = f"network weight {self.weight_}, vote k={k}"
        self.thresholds_ = choose_thresholds(Y[val], blends[self.weight_, k], self.threshold)
        self.vote_ = FormulaVote(self.elements_, k=k, val_fraction=0).fit(X, Y)
        self.validation_index_ = val
        return self

    def predict_proba(self, X):
        """Per element, the blended probability."""
        check_is_fitted(self, "vote_")
        return self.weight_ * self.network_.predict_proba(X) + (1 - self.weight_) * self.vote_.predict_proba(X)

    def predict(self, X):
        """0/1 per element: the blend at or above the element's threshold."""
        return (self.predict_proba(X) >= self.thresholds_).astype(int)
