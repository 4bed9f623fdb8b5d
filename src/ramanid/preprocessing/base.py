"""The shared base of every preprocessing step: a row-wise scikit-learn transformer."""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ramanid.errors import SpectrumFormatError


def as_spectra(X, name: str = "X") -> np.ndarray:
    """A 2-D float array (float32 kept, anything else float64); NaN or inf is an error naming the row."""
    X = np.asarray(X)
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim != 2:
        raise SpectrumFormatError(name, f"expected spectra as an (n, points) matrix, got shape {X.shape}")
    if X.dtype != np.float32:
        X = X.astype(np.float64)
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        raise SpectrumFormatError(
            name, f"spectrum {int(np.flatnonzero(bad)[0])} holds NaN or infinite values "
            f"({int(bad.sum())} such spectra): clean or drop them before preprocessing"
        )
    return X


class SpectrumTransformer(TransformerMixin, BaseEstimator):
    """A step that treats each spectrum (row) on its own.

    Subclasses implement :meth:`_transform_rows` on a float64 copy; the base class checks the
    input, never modifies it, and returns the input's float dtype (float32 stays float32).
    """

    def fit(self, X, y=None):
        X = as_spectra(X)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        check_is_fitted(self, "n_features_in_")
        X = as_spectra(X)
        if X.shape[1] != self.n_features_in_:
            raise SpectrumFormatError(
                "X", f"spectra have {X.shape[1]} points; this step was fitted on {self.n_features_in_}"
            )
        return self._transform_rows(X.astype(np.float64)).astype(X.dtype, copy=False)

    def _transform_rows(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        return tags
