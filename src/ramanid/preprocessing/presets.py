"""Named steps, presets and step strings -> scikit-learn pipelines.

A step string is a comma-separated list of step names, each optionally with parameters:
``"despike, arpls(lam=1e5), savgol(window_length=15), vector"``. Values are read as numbers
where they look like numbers and as text otherwise; nothing is evaluated.
"""

from __future__ import annotations

import re

import numpy as np
from sklearn.pipeline import Pipeline

from ramanid.errors import PreprocessingError
from ramanid.preprocessing.baseline import PARAMETERS as BASELINES
from ramanid.preprocessing.baseline import BaselineCorrection
from ramanid.preprocessing.despike import Despike
from ramanid.preprocessing.normalize import METHODS as NORMALIZATIONS
from ramanid.preprocessing.normalize import Normalize
from ramanid.preprocessing.resample import Crop, Resample
from ramanid.preprocessing.smooth import Derivative, SavitzkyGolay

STEPS = {
    "resample": Resample,
    "crop": Crop,
    "despike": Despike,
    "savgol": SavitzkyGolay,
    "deriv1": lambda **kw: Derivative(order=1, **kw),
    "deriv2": lambda **kw: Derivative(order=2, **kw),
    **{name: (lambda name=name, **kw: BaselineCorrection(name, **kw)) for name in BASELINES},
    **{name: (lambda name=name, **kw: Normalize(name, **kw)) for name in NORMALIZATIONS},
}

PRESETS = {
    # the element-identification reference: 1024 points over 100-1400 cm-1, then min-max
    "reference": "resample(grid=100:1400:1024), minmax",
    # despike -> arpls baseline -> Savitzky-Golay -> vector normalisation
    "robust": "despike, arpls, savgol, vector",
}

_STEP = re.compile(r"\s*([a-z0-9_]+)\s*(?:\(([^()]*)\))?\s*(?:,|$)")


def parse_steps(spec: str) -> list[tuple[str, dict]]:
    """``"a(x=1), b"`` -> ``[("a", {"x": 1}), ("b", {})]``; presets are expanded."""
    spec = PRESETS.get(str(spec).strip(), str(spec))
    steps, pos = [], 0
    while pos < len(spec):
        match = _STEP.match(spec, pos)
        if not match or match.end() == pos:
            raise PreprocessingError(
                f"cannot read preprocessing {spec!r} at {spec[pos:]!r}: expected name(key=value, ...)"
            )
        name, args = match.group(1), match.group(2)
        if name in PRESETS:
            steps += parse_steps(PRESETS[name])
        elif name not in STEPS:
            raise PreprocessingError(
                f"unknown preprocessing step {name!r}: expected a preset {sorted(PRESETS)} or a step {sorted(STEPS)}"
            )
        else:
            steps.append((name, _parse_args(name, args or "")))
        pos = match.end()
    if not steps:
        raise PreprocessingError(f"empty preprocessing {spec!r}: expected a preset {sorted(PRESETS)} or steps")
    return steps


def make_pipeline(spec: str, shifts=None, n_jobs=None) -> Pipeline:
    """A pipeline for spectra on the axis ``shifts``, from a preset name or a step string.

    Steps that need the axis (resample, crop, baselines) get the axis they will see, that is
    ``shifts`` after the steps before them.
    """
    pipeline_steps = []
    axis = None if shifts is None else np.asarray(shifts, dtype=np.float64)
    for index, (name, params) in enumerate(parse_steps(spec)):
        try:
            step = STEPS[name](**params)
        except TypeError as exc:
            raise PreprocessingError(f"preprocessing step {name!r}: {exc}") from exc
        step._check_params()  # a bad parameter fails now, before any spectrum is read
        available = step.get_params()
        if "shifts" in available and available["shifts"] is None and axis is not None:
            step.set_params(shifts=axis.tolist())
        if "n_jobs" in available and n_jobs is not None:
            step.set_params(n_jobs=n_jobs)
        if hasattr(step, "output_shifts") and axis is not None:
            axis = step.output_shifts(axis)
        pipeline_steps.append((f"{index}_{name}", step))
    return Pipeline(pipeline_steps)


def output_shifts(pipeline: Pipeline, shifts) -> np.ndarray:
    """The shift axis a pipeline's output is on, given the axis of its input."""
    axis = np.asarray(shifts, dtype=np.float64)
    for _, step in pipeline.steps:
        if hasattr(step, "output_shifts"):
            axis = step.output_shifts(axis)
    return axis


def _parse_args(name: str, text: str) -> dict:
    args = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise PreprocessingError(f"preprocessing step {name!r}: cannot read {item!r}, expected key=value")
        args[key.strip()] = number_or_text(value.strip())
    return args


def number_or_text(text: str):
    """``text`` read as an int, else a float, else kept as text (never evaluated)."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
