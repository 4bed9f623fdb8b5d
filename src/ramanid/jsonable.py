"""Values as strict JSON: what every JSON ramanid writes (reports, model folders, answers) goes through."""

from __future__ import annotations

import math

import numpy as np


def json_ready(value):
    """``value`` with numpy scalars and arrays as Python values, tuples as lists, keys as text, and
    NaN or infinite numbers as None, so that ``json.dumps`` writes valid JSON (it would write
    ``NaN`` and ``Infinity``, which JSON has not).
    """
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, np.generic):
        return json_ready(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
