"""Named preprocessing presets and ``step,step`` strings -> scikit-learn pipelines."""
from __future__ import annotations

from sklearn.pipeline import Pipeline, make_pipeline as _sk_make_pipeline

from ramanid.errors import RamanIdError
from ramanid.preprocessing.normalize import METHODS as NORMALIZATIONS, Normalize


def _steps():
    return {name: (lambda n=name: Normalize(n)) for name in NORMALIZATIONS}


def make_pipeline(spec: str) -> Pipeline:
    """A pipeline from a comma-separated list of step names, e.g. ``"minmax"``."""
    steps = _steps()
    names = [s.strip() for s in str(spec).split(",") if s.strip()]
    unknown = [n for n in names if n not in steps]
    if unknown or not names:
        raise RamanIdError(f"unknown preprocessing {', '.join(unknown) or spec!r}: expected {sorted(steps)}")
    return _sk_make_pipeline(*(steps[n]() for n in names))
