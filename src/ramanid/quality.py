"""How good a measured spectrum is, before any answer: its signal-to-noise ratio, the share of
its signal that is background, and how much of a model's range it covers.

- The noise is the standard deviation of the point-to-point noise, from the median absolute
  deviation of second differences, which bands and backgrounds (smooth over a few points) hardly
  move (a robust form of the DER_SNR estimate of Stoehr et al. 2008).
- The background is a morphological opening (a rolling minimum, then a rolling maximum, over
  a window much wider than a band; the top-hat baseline of Sternberg 1986 and rolling-ball
  baselines), smoothed: it follows broad fluorescence and the steep edge of a filter.
- The signal-to-noise ratio is the strongest band over the noise. The band is measured above a
  narrower opening (:data:`BAND_CM1`), which keeps bands but not the broad rise a background
  makes where the envelope cannot follow it (the shoulder of a filter's cut), on the spectrum
  smoothed by a short Savitzky-Golay filter (so that the noise itself does not raise the band or
  lower the envelope).

The estimates are cheap (a few filters, vectorised over a batch), so every spectrum gets one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import savgol_filter

from ramanid.preprocessing.base import noise_sd
from ramanid.preprocessing.baseline import opening_envelope

#: the window of the lower envelope, in cm-1: wider than any band
ENVELOPE_CM1 = 150.0
#: the window of the opening the strongest band is measured above, in cm-1: wider than a band
#: broadened to 15 cm-1 FWHM, narrow enough that what a strong background leaves above the wide
#: envelope is not read as a band; on the degradation protocol's noisy copies of reference
#: spectra, the window whose band heights are off the true ones by more than 1.5x least often
#: (``benchmarks/bench_quality.py``)
BAND_CM1 = 75.0
#: points of the Savitzky-Golay smoothing the band height and envelope are measured on
SMOOTHING = 9
#: below this signal-to-noise ratio an answer is not trusted: ``poor`` (the identifier's
#: accuracy falls steeply below it on the degradation protocol's validation spectra). A strong
#: background alone does not make a spectrum poor: once arPLS removes it
#: (:func:`ramanid.preprocessing.baseline.fitted_input`), validation copies whose background is
#: over 99.5% of the signal are named right 84% of the time (``benchmarks/RESULTS.md``)
POOR_SNR = 5.0
#: ... and below this ratio under a strong background (:data:`STRONG_BACKGROUND`): there the ratio
#: as read flatters, and a library identifier's validation copies read at SNR 5-10 under a
#: background over 80% of their signal are named right 27-28% of the time (folds 0 and 1), as
#: those read below 5 (28-30%), against 67-68% for the other copies of SNR 5-10
#: (``benchmarks/RESULTS.md``)
POOR_SNR_UNDER_BACKGROUND = 10.0
#: the largest signal-to-noise ratio an answer states (a noise-free spectrum has no finite one)
SNR_SHOWN = 1e6
#: a spectrum's range must be above this to be a signal (float32 keeps ~1e-38, and preprocessing divides)
MIN_SIGNAL = 1e-30
#: the bins of the signal-to-noise ratio that calibration conditions on (lower edges)
SNR_BINS = (0.0, 5.0, 10.0, 20.0, 50.0)
#: how a model's calibration blocks are keyed (``ood.keyed_by`` in its folder): by the
#: signal-to-noise bin of each spectrum as read, and again where the background is strong within
#: :data:`BACKGROUND_SPLIT_SNR` (models from this version on); by that bin alone (models of
#: 2026-12-05); by that bin and again where the background is strong, at any ratio (models of
#: 2026-12-04 and 05); by the bin of each input (older models). Keyed with a background, a
#: folder has two blocks per bin: the bin's, then the bin's strong-background spectra's.
KEYED_MIDDLE_BACKGROUND = "snr as read, background at snr 5-50"
KEYED_AS_READ, KEYED_WITH_BACKGROUND, KEYED_BY_INPUT = "snr as read", "snr as read, background", "snr of input"
#: a background above this share of the signal is strong: models keyed with a background
#: calibrate such spectra in blocks of their own
STRONG_BACKGROUND = 0.8
#: the signal-to-noise ratios as read (from, to) within which :data:`KEYED_MIDDLE_BACKGROUND`
#: calibrates a strong background apart: there, under a background, a known mineral scores
#: further from its references than under noise alone (a handheld probe's SNR 20 against plain
#: SNR 20), and one threshold for both let most unknown minerals through; below and above, blocks
#: of their own gave more false alarms (``benchmarks/bench_calibration_keys.py``)
BACKGROUND_SPLIT_SNR = (5.0, 50.0)


@dataclass(frozen=True)
class Quality:
    """A spectrum's quality estimate; ``poor`` when it is too poor for a confident answer."""

    snr: float
    background_share: float
    coverage: float
    #: the Raman shift it was read from, past an edge filter's cut (:mod:`ramanid.preprocessing.edge`); None: no cut
    filter_edge_cm1: float | None = None

    @property
    def strong_background(self) -> bool:
        """Whether its background is over :data:`STRONG_BACKGROUND` of its signal."""
        return self.background_share > STRONG_BACKGROUND

    @property
    def poor(self) -> bool:
        return self.snr < POOR_SNR or (self.strong_background and self.snr < POOR_SNR_UNDER_BACKGROUND)

    @property
    def bin(self) -> int:
        """The index of its signal-to-noise bin in :data:`SNR_BINS`."""
        return snr_bin(self.snr)

    def as_dict(self) -> dict:
        """JSON-ready values; a signal-to-noise ratio beyond :data:`SNR_SHOWN` is given as that."""
        return {
            "snr": round(float(min(self.snr, SNR_SHOWN)), 2),
            "background_share": round(float(self.background_share), 4),
            "coverage": round(float(self.coverage), 4),
            "filter_edge_cm1": None if self.filter_edge_cm1 is None else round(float(self.filter_edge_cm1), 1),
            "poor": self.poor,
        }


def estimate(
    shifts: np.ndarray, y: np.ndarray, coverage: np.ndarray | float = 1.0, filter_edge: float | None = None
) -> list[Quality]:
    """The quality of each row of ``y`` (spectra on the axis ``shifts``, not yet normalised), read
    from ``filter_edge`` (cm-1) past an edge filter's cut where one was found.
    """
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))
    if not len(y):
        return []
    step = float(np.median(np.diff(shifts)))
    noise = noise_sd(y)
    smooth = savgol_filter(y, min(SMOOTHING, y.shape[-1] // 2 * 2 - 1), 2, axis=-1) if y.shape[-1] > 5 else y
    envelope = opening_envelope(smooth, ENVELOPE_CM1 / max(step, 1e-9))
    bands = (smooth - opening_envelope(smooth, BAND_CM1 / max(step, 1e-9))).max(axis=-1)
    snr = np.divide(bands, noise, out=np.full(len(y), np.inf), where=noise > 0)
    total = np.abs(y).sum(axis=-1)
    background = np.divide(np.clip(envelope, 0, None).sum(axis=-1), total, out=np.zeros(len(y)), where=total > 0)
    coverage = np.broadcast_to(np.asarray(coverage, dtype=np.float64), (len(y),))
    return [
        Quality(float(s), float(min(b, 1.0)), float(c), filter_edge)
        for s, b, c in zip(snr, background, coverage, strict=True)
    ]


def without_signal(y: np.ndarray) -> np.ndarray:
    """For each row of ``y``, whether it holds no signal at all: zero, constant (to rounding),
    too small to survive float32, or a straight line. Such a spectrum gets no answer; a noisy
    one does (flagged ``poor``), since pure noise cannot be told from a band at SNR 3 here.
    """
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))
    spread = np.ptp(y, axis=-1) if y.shape[-1] else np.zeros(len(y))
    size = np.abs(y).max(axis=-1, initial=0)
    flat = (spread <= MIN_SIGNAL) | (spread <= 1e-9 * size)
    # a straight line written to text with 6 significant digits still bends by ~1e-5 of its range
    line = np.abs(np.diff(y, n=2, axis=-1)).max(axis=-1, initial=0) <= 1e-4 * np.maximum(spread, MIN_SIGNAL)
    return flat | line


def snr_bin(snr: float) -> int:
    """The bin of :data:`SNR_BINS` a signal-to-noise ratio falls in."""
    return int(np.searchsorted(SNR_BINS, snr, side="right") - 1)


def block_name(block: int) -> str:
    """A calibration block (:func:`calibration_keys`) as a user reads it: "SNR 5+", "SNR 5+ strong background"."""
    n = len(SNR_BINS)
    return f"SNR {SNR_BINS[block % n]:g}+" + " strong background" * (block >= n)


def calibration_keys(
    snr_bins: np.ndarray, quality: list[Quality] | None, keyed_by: str = KEYED_MIDDLE_BACKGROUND
) -> np.ndarray:
    """The calibration block of each input: the signal-to-noise bin of its spectrum as read (its
    quality estimate), moved past all of :data:`SNR_BINS` where its background is strong, for
    models keyed with a background (:data:`KEYED_MIDDLE_BACKGROUND`: only within
    :data:`BACKGROUND_SPLIT_SNR`). Models keyed :data:`KEYED_BY_INPUT`, or inputs without quality
    estimates: ``snr_bins``, the bins of the inputs themselves.

    The spectrum as read, not the input: an input's ratio is its maximum, 1 after min-max
    scaling, over its noise, and what baseline removal leaves of a strong background can be that
    maximum. Judged on a library identifier's validation copies across specimens
    (``benchmarks/bench_calibration_keys.py``, ``benchmarks/RESULTS.md``), a strong background's
    own blocks at every ratio flag more known spectra in the worst condition than none; within
    :data:`BACKGROUND_SPLIT_SNR` they flag about as many (within a copy), cover and calibrate the
    worst condition better and catch more unknown minerals.
    """
    if quality is None or keyed_by == KEYED_BY_INPUT:
        return np.asarray(snr_bins, dtype=int)
    bins = np.array([q.bin for q in quality], dtype=int)
    if keyed_by == KEYED_AS_READ:
        return bins
    strong = np.array([q.strong_background for q in quality], dtype=bool)
    if keyed_by == KEYED_MIDDLE_BACKGROUND:
        low, high = BACKGROUND_SPLIT_SNR
        from_snr = np.asarray(SNR_BINS)[bins]
        strong &= (from_snr >= low) & (from_snr < high)
    return bins + len(SNR_BINS) * strong
