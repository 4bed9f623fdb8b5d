"""Named steps, presets and step strings -> scikit-learn pipelines.

A step string is a comma-separated list of step names, each optionally with parameters:
``"despike, arpls(lam=1e5), savgol(window_length=15), vector"``. Values are read as numbers
where they look like numbers and as text otherwise; nothing is evaluated.

A saved model or set records its preprocessing as a structured spec, ``[[name, {parameter:
value}], ...]`` (:func:`steps_of`), which a step string, a preset, or a pipeline of ramanid's
steps all turn into, and which :func:`pipeline_from_spec` builds again. Every step learns nothing
from the spectra it is fitted on, so the spec is the whole fitted transform.
"""

from __future__ import annotations

import inspect
import re

import numpy as np
from sklearn.pipeline import Pipeline

from ramanid.errors import PreprocessingError
from ramanid.preprocessing.baseline import PARAMETERS as BASELINES
from ramanid.preprocessing.baseline import BaselineCorrection, OpeningBaseline
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
    "opening": OpeningBaseline,
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


def steps_of(spec) -> list[list]:
    """``spec`` as JSON-ready steps ``[[name, {parameter: value}], ...]``: from a step string or a
    preset, from such a list, or from a :class:`~sklearn.pipeline.Pipeline` of ramanid's steps.
    ``None``, ``""`` and ``"none"`` are no steps.
    """
    if spec is None or (isinstance(spec, str) and spec.strip() in ("", "none")):
        return []
    if isinstance(spec, str):
        return [[name, params] for name, params in parse_steps(spec)]
    if isinstance(spec, Pipeline):
        return [list(_step_spec(step)) for _, step in spec.steps]
    if isinstance(spec, (list, tuple)) and all(_is_step(item) for item in spec):
        for name, _ in spec:
            if name not in STEPS:
                raise PreprocessingError(f"unknown preprocessing step {name!r}: expected one of {sorted(STEPS)}")
        return [[str(name), dict(params)] for name, params in spec]
    raise PreprocessingError(
        f"preprocessing {str(spec)[:80]!r}: expected step names, a preset, [[name, {{parameters}}], ...] or a Pipeline"
    )


def describe_steps(steps) -> str:
    """Steps as the step string a user would type: ``"despike, arpls(lam=100000.0), minmax"``."""
    parts = [
        name + (f"({', '.join(f'{k}={v}' for k, v in params.items())})" if params else "")
        for name, params in steps_of(steps)
    ]
    return ", ".join(parts) or "none"


def pipeline_from_spec(spec, shifts=None, n_jobs=None) -> Pipeline:
    """A pipeline for spectra on the axis ``shifts``, from anything :func:`steps_of` reads.

    Steps that need the axis (resample, crop, baselines) get the axis they will see, that is
    ``shifts`` after the steps before them.
    """
    steps = steps_of(spec)
    if not steps:
        raise PreprocessingError(f"preprocessing {spec!r} has no steps: expected a preset {sorted(PRESETS)} or steps")
    pipeline_steps = []
    axis = None if shifts is None else np.asarray(shifts, dtype=np.float64)
    for index, (name, params) in enumerate(steps):
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


#: ``make_pipeline`` was the old name of :func:`pipeline_from_spec` (it shadowed scikit-learn's)
make_pipeline = pipeline_from_spec


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


#: parameters that are not part of a step's spec: the axis and the workers come from where it runs
_CONTEXT = ("shifts", "n_jobs")


def _step_spec(step) -> tuple[str, dict]:
    """``(name, parameters that differ from the defaults)`` of one of ramanid's step objects."""
    if isinstance(step, (BaselineCorrection, Normalize)):
        name, implied = step.method, ("method",)
    elif isinstance(step, Derivative):
        name, implied = f"deriv{step.order}", ("order",)
    else:
        name = {
            Resample: "resample",
            Crop: "crop",
            Despike: "despike",
            SavitzkyGolay: "savgol",
            OpeningBaseline: "opening",
        }.get(type(step))
        implied = ()
    if name is None:
        raise PreprocessingError(
            f"{step!r} is not one of ramanid's preprocessing steps {sorted(STEPS)}: it cannot be recorded"
        )
    defaults = {p.name: p.default for p in inspect.signature(type(step)).parameters.values()}
    params = {}
    for key, value in step.get_params().items():
        value = value.tolist() if isinstance(value, np.ndarray) else value
        if key not in _CONTEXT + implied and not (
            isinstance(value, type(defaults.get(key))) and value == defaults[key]
        ):
            params[key] = value
    return name, params


def _is_step(item) -> bool:
    return isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str) and isinstance(item[1], dict)
