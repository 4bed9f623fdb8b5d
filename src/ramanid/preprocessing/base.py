"""The shared base of every preprocessing step: a row-wise scikit-learn transformer."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import validate_data

from ramanid.errors import PreprocessingError, RamanIdError, SpectrumFormatError


def _checked(step: BaseEstimator, X, reset: bool) -> np.ndarray:
    """A 2-D float matrix (float32 kept, anything else float64), through scikit-learn's
    ``validate_data`` (which also checks the number of points against ``fit``); NaN or inf is a
    :class:`~ramanid.errors.SpectrumFormatError` naming the first such spectrum.
    """
    try:
        X = validate_data(step, X, reset=reset, dtype=[np.float64, np.float32], ensure_all_finite=False)
    except ValueError as exc:
        raise SpectrumFormatError("X", f"{type(step).__name__}: {exc}") from exc
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        raise SpectrumFormatError(
            "X",
            f"spectrum {int(np.flatnonzero(bad)[0])} holds NaN or infinite values "
            f"({int(bad.sum())} such spectra): clean or drop them before preprocessing",
        )
    return X


def check_setting(step: str, name: str, value, low: float, high: float, whole: bool = False) -> None:
    """Raise :class:`~ramanid.errors.PreprocessingError` unless ``value`` is a (whole, for
    ``whole``) number from ``low`` to ``high``: a setting out of range could exhaust memory or time.
    """
    number = isinstance(value, (int, np.integer)) or (not whole and isinstance(value, (float, np.floating)))
    if isinstance(value, bool) or not number or not (np.isfinite(value) and low <= value <= high):
        kind = "a whole number" if whole else "a number"
        raise PreprocessingError(f"{step} {name}={value!r}: expected {kind} from {low:g} to {high:g}")


def check_window(step: str, name: str, points: int, n_points: int) -> None:
    """Refuse a window of ``points`` points that does not fit in spectra of ``n_points``."""
    if points >= n_points:
        raise PreprocessingError(f"{step} {name} spans {points} points: the spectra have only {n_points}")


class SpectrumTransformer(TransformerMixin, BaseEstimator):
    """A step that treats each spectrum (row) on its own.

    Subclasses implement :meth:`_transform_rows` on a float64 copy, and :meth:`_check_params`
    where a parameter can be wrong; the base class checks the parameters in ``fit`` (as
    scikit-learn does) and the input, never modifies the input, returns the input's float dtype
    (float32 stays float32), and reports a failure of the algorithm as a
    :class:`~ramanid.errors.PreprocessingError` naming the step.
    """

    def _check_params(self) -> None:
        """Raise :class:`~ramanid.errors.PreprocessingError` for a parameter that cannot work."""

    def fit(self, X, y=None):
        """Check the parameters and remember the number of points."""
        self._check_params()
        _checked(self, X, reset=True)
        return self

    def transform(self, X):
        """The transformed spectra, as a new array. A step learns nothing, so it may transform
        without ``fit``; after ``fit``, the number of points must match.
        """
        self._check_params()
        X = _checked(self, X, reset=False)
        try:
            out = self._transform_rows(X.astype(np.float64))
        except RamanIdError:
            raise
        except (ValueError, TypeError, np.linalg.LinAlgError) as exc:
            raise PreprocessingError(
                f"preprocessing step {self.describe()} failed on spectra of {X.shape[1]} points: {exc}"
            ) from exc
        return out.astype(X.dtype, copy=False)

    def describe(self) -> str:
        """The step and its settings, for a message (its shift axis left out)."""
        settings = ", ".join(f"{k}={v!r}" for k, v in self.get_params(deep=False).items() if k != "shifts")
        return f"{type(self).__name__}({settings})"

    def _transform_rows(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        return tags


def noise_sd(y: np.ndarray) -> np.ndarray:
    """The point-to-point noise standard deviation of each row of ``y`` (last axis)."""
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))
    second = np.diff(y, n=2, axis=-1)
    mad = np.median(np.abs(second - np.median(second, axis=-1, keepdims=True)), axis=-1)
    return 1.4826 * mad / np.sqrt(6.0)  # a second difference of white noise has variance 6 sigma^2
