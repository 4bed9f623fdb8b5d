"""Preprocessing steps for Raman spectra, each a scikit-learn transformer.

Resample and crop; despike (Whitaker & Hayes 2018); baseline removal on pybaselines; Savitzky-Golay
smoothing and derivatives; min-max, max, area, vector and SNV normalisation; and named presets.
"""

from ramanid.preprocessing.baseline import BaselineCorrection, OpeningBaseline
from ramanid.preprocessing.despike import Despike
from ramanid.preprocessing.normalize import Normalize
from ramanid.preprocessing.presets import (
    PRESETS,
    STEPS,
    describe_steps,
    make_pipeline,
    output_shifts,
    parse_steps,
    pipeline_from_spec,
    steps_of,
)
from ramanid.preprocessing.resample import Crop, Resample, resample_spectrum
from ramanid.preprocessing.smooth import Derivative, SavitzkyGolay

__all__ = [
    "BaselineCorrection",
    "Crop",
    "Derivative",
    "Despike",
    "Normalize",
    "OpeningBaseline",
    "PRESETS",
    "Resample",
    "STEPS",
    "SavitzkyGolay",
    "describe_steps",
    "make_pipeline",
    "output_shifts",
    "parse_steps",
    "pipeline_from_spec",
    "resample_spectrum",
    "steps_of",
]
