"""Instrument calibration of the Raman shift axis, from a standard measured on the instrument.

- ``silicon``: the first-order phonon band of crystalline silicon at 520.45 cm⁻¹ (the value of
  ASTM E1840 practice and of instrument makers' silicon check); its measured position gives an
  offset.
- ``polystyrene``: the bands of polystyrene tabulated in ASTM E1840-96 (2022), *Standard Guide
  for Raman Shift Standards for Spectrometer Calibration*; their measured positions give a
  linear (or, with ``degree=2``, quadratic) correction of the axis.

Each band position is the centre of a Lorentzian on a sloped background fitted by least squares
(:func:`scipy.optimize.curve_fit`) over a window around the band. The correction maps measured
shifts to true ones, ``true = c0 + c1 * measured (+ c2 * measured^2)``; it is saved as JSON
(``ramanid calibrate``) and applied as files are read (``--calibration instrument.json``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import curve_fit
from scipy.signal import find_peaks

from ramanid.atomic import atomic_write
from ramanid.errors import RamanIdError, SpectrumFormatError
from ramanid.spectra import Spectrum

#: band positions (cm-1) of each standard
STANDARDS = {
    "silicon": (520.45,),
    "polystyrene": (620.9, 795.8, 1001.4, 1031.8, 1155.3, 1450.5, 1583.1, 1602.3, 2852.4, 2904.5, 3054.3),
}
#: how far (cm-1) a measured band may lie from its reference position, and the fit's half window
SEARCH, HALF_WINDOW = 15.0, 12.0
#: a band must stand this many times above the noise to be measured
MIN_SNR = 5.0
FORMAT, VERSION = "ramanid.calibration", 1


@dataclass(frozen=True)
class AxisCorrection:
    """``true = polyval(measured, coefficients)`` (lowest order first), with how it was made."""

    coefficients: tuple[float, ...]
    standard: str = ""
    bands: tuple[tuple[float, float], ...] = ()
    residual_cm1: float = float("nan")
    source: str = ""
    extra: dict = field(default_factory=dict)

    def __call__(self, shifts: np.ndarray) -> np.ndarray:
        return np.polynomial.polynomial.polyval(np.asarray(shifts, dtype=np.float64), self.coefficients)

    def describe(self) -> str:
        c = self.coefficients
        if len(c) == 2 and c[1] == 1.0:
            return f"shift corrected by {c[0]:+.2f} cm-1 ({self.standard})"
        terms = " ".join(f"{v:+.6g}" + ("" if k == 0 else " x" if k == 1 else f" x^{k}") for k, v in enumerate(c))
        return f"shift corrected to {terms} ({self.standard})"

    def apply(self, spectrum: Spectrum) -> Spectrum:
        """The spectrum on the corrected axis, its metadata saying so."""
        shifts = self(spectrum.shifts)
        if not np.all(np.diff(shifts) > 0):
            raise SpectrumFormatError(spectrum.source, "the calibration does not keep the axis in order")
        return Spectrum(shifts, spectrum.intensities, {**spectrum.meta, "calibrated": self.describe()})

    def save(self, path: str | Path) -> Path:
        record = {
            "format": FORMAT,
            "version": VERSION,
            "standard": self.standard,
            "coefficients": list(self.coefficients),
            "bands": [{"reference": r, "measured": m} for r, m in self.bands],
            "residual_cm1": self.residual_cm1,
            "source": self.source,
        }
        with atomic_write(path) as tmp:
            Path(tmp).write_text(json.dumps(record, indent=1))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> AxisCorrection:
        """A correction saved by :meth:`save`, with a clear error for any other file."""
        try:
            record = json.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RamanIdError(f"{path}: not a calibration file written by 'ramanid calibrate' ({exc})") from exc
        coefficients = record.get("coefficients") if isinstance(record, dict) else None
        if (
            not isinstance(record, dict)
            or record.get("format") != FORMAT
            or not isinstance(coefficients, list)
            or not 1 <= len(coefficients) <= 3
            or not all(isinstance(c, (int, float)) and np.isfinite(c) for c in coefficients)
        ):
            raise RamanIdError(
                f"{path}: not a calibration file written by 'ramanid calibrate' "
                "(expected format 'ramanid.calibration' and 1 to 3 finite coefficients)"
            )
        return cls(tuple(float(c) for c in coefficients), str(record.get("standard", "")), source=str(path))


def band_centre(spectrum: Spectrum, reference: float) -> float | None:
    """The fitted centre of the band nearest ``reference`` (within :data:`SEARCH`), or None when
    the spectrum has no band there that a Lorentzian fits.
    """
    x, y = spectrum.shifts, np.asarray(spectrum.intensities, dtype=np.float64)
    near = np.flatnonzero((x >= reference - SEARCH) & (x <= reference + SEARCH))
    if len(near) < 3:
        return None
    # of the bands standing out in the search window, the one nearest the reference (the strongest
    # could be a neighbour: polystyrene's 1583 and 1602 cm-1 lie 19 cm-1 apart)
    around = np.flatnonzero((x >= reference - 2 * SEARCH) & (x <= reference + 2 * SEARCH))
    noise = noise_level(y)
    tops, _ = find_peaks(y[around], prominence=max(0.1 * np.ptp(y[around]), MIN_SNR * noise))
    tops = [around[t] for t in tops if around[t] in near]
    if not tops:
        return None
    peak = x[min(tops, key=lambda i: abs(x[i] - reference))]
    window = (x >= peak - HALF_WINDOW) & (x <= peak + HALF_WINDOW)
    if window.sum() < 6:
        return None
    xs, ys = x[window], y[window]
    height = ys.max() - ys.min()
    if height <= 0:
        return None
    start = (height, peak, 3.0, ys.min(), 0.0)
    try:
        (amplitude, centre, width, _, _), _ = curve_fit(_lorentzian, xs, ys, p0=start, maxfev=5000)
    except (RuntimeError, ValueError):
        return None
    if amplitude < MIN_SNR * noise or not abs(centre - reference) <= SEARCH or not 0.3 < abs(width) < 3 * HALF_WINDOW:
        return None
    return float(centre)


def noise_level(y: np.ndarray) -> float:
    """The standard deviation of a spectrum's point-to-point noise, from the median absolute
    deviation of its first differences (robust to bands, which are smooth over a few points).
    """
    steps = np.diff(np.asarray(y, dtype=np.float64))
    return float(1.4826 * np.median(np.abs(steps - np.median(steps))) / np.sqrt(2))


def fit_correction(spectrum: Spectrum, standard: str, degree: int = 1) -> AxisCorrection:
    """The axis correction that puts the standard's bands of ``spectrum`` at their reference
    positions: an offset for one band (silicon), a polynomial of ``degree`` for several.
    """
    if standard not in STANDARDS:
        raise RamanIdError(f"unknown standard {standard!r}: expected one of {sorted(STANDARDS)}")
    found = [(r, band_centre(spectrum, r)) for r in STANDARDS[standard]]
    found = [(r, m) for r, m in found if m is not None]
    if not found:
        raise RamanIdError(
            f"{spectrum.source}: no band of {standard} found within {SEARCH:g} cm-1 of "
            f"{', '.join(f'{r:g}' for r in STANDARDS[standard])} cm-1: is this a spectrum of {standard}?"
        )
    reference, measured = (np.array(v) for v in zip(*found, strict=True))
    if len(found) == 1 or degree == 0:
        coefficients = (float(np.mean(reference - measured)), 1.0)
    else:
        if len(found) < degree + 2:
            bands = ", ".join(f"{r:g}" for r in reference)
            raise RamanIdError(
                f"{spectrum.source}: {len(found)} bands of {standard} found ({bands}); "
                f"a correction of degree {degree} needs at least {degree + 2}"
            )
        coefficients = tuple(float(c) for c in np.polynomial.polynomial.polyfit(measured, reference, degree))
    correction = AxisCorrection(coefficients, standard, tuple(zip(reference.tolist(), measured.tolist(), strict=True)))
    residual = float(np.sqrt(np.mean((correction(measured) - reference) ** 2)))
    return AxisCorrection(coefficients, standard, correction.bands, residual, spectrum.source)


def _lorentzian(x, amplitude, centre, width, offset, slope):
    return amplitude / (1 + ((x - centre) / width) ** 2) + offset + slope * (x - centre)
