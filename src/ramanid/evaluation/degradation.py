"""What real measurements add to a clean spectrum, as a seeded protocol of factors and levels.

Each factor acts on a spectrum as measured, on its own axis, before any preprocessing, so that a
degraded spectrum goes through ``predict`` as a user's file would:

- ``noise``: shot and read noise at a signal-to-noise ratio (the strongest band's height over
  the noise standard deviation at that band): half the variance is read noise, even over the
  spectrum, half shot noise, proportional to the signal and background;
- ``fluorescence``: a broad, sloped or curved background of 1x-20x the strongest band;
- ``edge``: the hump of an edge filter below 150-250 cm⁻¹, or its cut (the low shifts attenuated);
- ``lines``: one or two spurious sharp lines (instrument, room light, plasma lines);
- ``spikes``: cosmic-ray spikes, one point each;
- ``resolution``: the bands broadened to a Gaussian instrument function of 4-15 cm⁻¹ FWHM;
- ``offset``: a calibration offset of the shift axis;
- ``range``: a narrower measured range.

:data:`LEVELS` lists each factor's levels and :data:`COMBINATIONS` some realistic mixes; the
level ``0`` of :func:`degrade` is the clean spectrum. Randomness comes from a generator the
caller seeds per spectrum, so a protocol is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from ramanid.spectra import Spectrum

#: each factor's levels, in the order of increasing harm
LEVELS = {
    "noise": (50, 20, 10, 5, 3),  # signal-to-noise ratio
    "fluorescence": (1, 5, 20),  # background height / strongest band
    "edge": ("hump", "cut"),
    "lines": (1, 2),
    "spikes": (1, 3),
    "resolution": (4, 8, 15),  # FWHM, cm-1
    "offset": (1, 2.5, 5),  # cm-1, in either direction
    "range": ((150, 1300), (250, 1100)),  # cm-1 measured
}
#: where an edge filter's hump starts (cm-1)
EDGE_CM1 = 50.0
#: realistic measurements: several factors at once
COMBINATIONS = {
    "microscope, good": {"noise": 50, "fluorescence": 1, "spikes": 1, "offset": 1},
    "handheld 785 nm": {"noise": 20, "fluorescence": 5, "edge": "hump", "resolution": 8, "offset": 2.5},
    "short acquisition": {"noise": 10, "fluorescence": 5, "spikes": 3, "lines": 1},
    "poor sample": {"noise": 5, "fluorescence": 20, "edge": "cut", "offset": 2.5, "resolution": 8},
}


@dataclass(frozen=True)
class Condition:
    """One condition of the protocol: factors and their levels (empty: clean)."""

    name: str
    factors: tuple[tuple[str, object], ...] = ()

    @property
    def snr(self) -> float | None:
        """The condition's signal-to-noise ratio, where it sets one."""
        return dict(self.factors).get("noise")


def conditions(combinations: bool = True) -> list[Condition]:
    """The clean condition, every factor at every level alone, and the combinations."""
    found = [Condition("clean")]
    for factor, levels in LEVELS.items():
        found += [Condition(f"{factor} {LABELS[factor](level)}", ((factor, level),)) for level in levels]
    if combinations:
        found += [Condition(name, tuple(mix.items())) for name, mix in COMBINATIONS.items()]
    return found


def measurable(names) -> np.ndarray:
    """Whether each condition (by name) is one a measurement gives: a background (fluorescence, a
    filter's hump) comes with its shot noise, so the conditions with a background and no noise are
    not. arPLS reads such copies as if clean; a library identifier sets its unknown thresholds on
    the others (``benchmarks/RESULTS.md``, maps under a strong background).
    """
    factors = {c.name: dict(c.factors) for c in conditions()}

    def measured(name: str) -> bool:
        f = factors.get(name, {})
        return "noise" in f or not ("fluorescence" in f or f.get("edge") == "hump")

    return np.array([measured(str(name)) for name in names], dtype=bool)


def random_condition(rng: np.random.Generator) -> Condition:
    """One of the protocol's conditions (:func:`conditions`, clean included), drawn uniformly:
    the measurements a model is calibrated on when its validation spectra are degraded.
    """
    every = conditions()
    return every[rng.integers(len(every))]


def degrade(spectrum: Spectrum, condition: Condition, rng: np.random.Generator) -> Spectrum:
    """``spectrum`` as measured under ``condition``; factors apply in the order of a measurement
    (the sample's bands broadened, background and lines added, the filter, then the detector's
    noise and spikes, then the axis's calibration and range).
    """
    if not condition.factors:
        return Spectrum(spectrum.shifts, spectrum.intensities, {**spectrum.meta, "condition": condition.name})
    x = np.asarray(spectrum.shifts, dtype=np.float64)
    y = np.asarray(spectrum.intensities, dtype=np.float64)
    y = y - np.percentile(y, 1)
    height = max(float(y.max()), 1e-12)
    factors = dict(condition.factors)
    if "resolution" in factors:
        y = _broadened(x, y, float(factors["resolution"]))
    background = np.zeros_like(y)
    if "fluorescence" in factors:
        background += float(factors["fluorescence"]) * height * _fluorescence(x, rng)
    if "lines" in factors:
        for _ in range(int(factors["lines"])):
            centre, width = rng.uniform(x.min(), x.max()), rng.uniform(0.5, 1.5)
            y = y + rng.uniform(0.3, 1.0) * height * np.exp(-0.5 * ((x - centre) / width) ** 2)
    if factors.get("edge") == "hump":
        # the filter's edge passes light from about 50 cm-1, falling to 5% by 150-250 cm-1
        decay = (rng.uniform(150, 250) - EDGE_CM1) / 3.0
        background += rng.uniform(2, 8) * height * np.exp(-np.clip(x - EDGE_CM1, 0, None) / decay)
    signal = y + background
    if factors.get("edge") == "cut":
        cut = rng.uniform(150, 250)
        signal = signal / (1 + np.exp(-(x - cut) / 8.0))
    if "noise" in factors:
        sigma = height / float(factors["noise"])
        peak_total = float(signal[np.argmax(y)]) if np.isfinite(signal).all() else height
        shot = 0.5 * sigma**2 / max(peak_total, 1e-12)  # shot variance per unit of signal
        variance = 0.5 * sigma**2 + shot * np.clip(signal, 0, None)
        signal = signal + rng.normal(size=signal.shape) * np.sqrt(variance)
    if "spikes" in factors:
        for where in rng.integers(0, len(signal), int(factors["spikes"])):
            signal[where] += rng.uniform(1, 3) * height
    if "offset" in factors:
        x = x + float(factors["offset"]) * rng.choice([-1.0, 1.0])
    if "range" in factors:
        low, high = factors["range"]
        keep = (x >= low) & (x <= high)
        x, signal = x[keep], signal[keep]
    return Spectrum(x, signal, {**spectrum.meta, "condition": condition.name})


def _broadened(x: np.ndarray, y: np.ndarray, fwhm: float) -> np.ndarray:
    """``y`` convolved with a Gaussian of ``fwhm`` cm-1 (on the spectrum's mean spacing)."""
    step = float(np.median(np.diff(x)))
    return gaussian_filter1d(y, fwhm / 2.3548 / max(step, 1e-9), mode="nearest")


def _fluorescence(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A background of unit height: broad (a wide band beyond or inside the range), sloped or curved."""
    t = (x - x.min()) / max(np.ptp(x), 1e-9)
    shape = rng.choice(["broad", "sloped", "curved"])
    if shape == "broad":
        background = np.exp(-0.5 * ((t - rng.uniform(0.3, 1.5)) / rng.uniform(0.4, 1.0)) ** 2)
    elif shape == "sloped":
        background = 0.2 + t * rng.uniform(0.5, 1.0) if rng.uniform() < 0.5 else 1.2 - t * rng.uniform(0.5, 1.0)
    else:
        background = rng.uniform(0.2, 0.5) + (t - rng.uniform(0, 1)) ** 2
    return background / background.max()


#: how each factor's level reads in a condition's name
LABELS = {
    "noise": lambda level: f"SNR {level}",
    "fluorescence": lambda level: f"{level}x",
    "edge": str,
    "lines": lambda level: f"{level} line" + ("s" if level > 1 else ""),
    "spikes": lambda level: f"{level} spike" + ("s" if level > 1 else ""),
    "resolution": lambda level: f"{level} cm-1",
    "offset": lambda level: f"+-{level} cm-1",
    "range": lambda level: f"{level[0]}-{level[1]} cm-1",
}
