"""How well the quality estimate reads a spectrum's signal-to-noise ratio under what real
measurements add, and which window its band height is measured above (issue 24).

    python benchmarks/bench_quality.py [--spectra 300] [--seed 1]

Data: a seeded sample of the processed spectra of the references of fold 0 of the degradation
protocol's split (no held-out specimen), on the identifier's grid, each degraded by the protocol's
conditions that carry noise (:mod:`ramanid.evaluation.degradation`) and by noise with a strong
background, a filter's cut or hump, or broadened bands. The truth of each copy is known: its
strongest band (after broadening) and its noise (the condition's ratio).

1. The band height, measured above an opening of each window, over the true band height: the
   share of copies off by more than a factor 1.5 either way, and each condition's median.
   ``ramanid.quality.BAND_CM1`` is the window with the smallest share.
2. The estimate as ramanid reads a file (``ramanid.quality.estimate``): its signal-to-noise
   ratio over the true one, and the share of copies flagged ``poor``, per condition.
"""

from __future__ import annotations

import os
import sys

import numpy as np
from scipy.signal import savgol_filter

sys.path.insert(0, os.path.dirname(__file__))
from _common import sampled_references

from ramanid.evaluation.degradation import COMBINATIONS, Condition, degrade
from ramanid.preprocessing.baseline import opening_envelope
from ramanid.quality import SMOOTHING, estimate
from ramanid.spectra import Spectrum

WINDOWS = (50, 75, 100, 150)
OFF = 1.5


def conditions() -> list[Condition]:
    """Every condition with noise: the protocol's levels alone and combined, and noise with a background."""
    found = [Condition(f"SNR {snr}", (("noise", snr),)) for snr in (50, 20, 10, 5, 3)]
    for snr in (10, 5):
        for name, factors in (
            ("fluorescence 20x", (("fluorescence", 20),)),
            ("fluorescence 20x, edge cut", (("fluorescence", 20), ("edge", "cut"))),
            ("fluorescence 5x, edge hump", (("fluorescence", 5), ("edge", "hump"))),
            ("resolution 15 cm-1", (("resolution", 15),)),
        ):
            found.append(Condition(f"SNR {snr}, {name}", (("noise", snr), *factors)))
    return found + [Condition(name, tuple(mix.items())) for name, mix in COMBINATIONS.items()]


def true_band(spectrum: Spectrum, condition: Condition) -> float:
    """The strongest band of ``spectrum`` as ``condition`` measures it, before background and noise
    (above the floor :func:`degrade` takes out, broadened where the condition broadens)."""
    broadening = tuple(f for f in condition.factors if f[0] == "resolution")
    if broadening:
        return float(degrade(spectrum, Condition("", broadening), np.random.default_rng(0)).intensities.max())
    return float(np.max(spectrum.intensities - np.percentile(spectrum.intensities, 1)))


def main() -> None:
    args, built, chosen = sampled_references(__doc__.split("\n\n")[0])
    x = built.shifts
    step = float(np.median(np.diff(x)))
    clean = [Spectrum(x, built.intensities[i].astype(np.float64), {}) for i in chosen]
    heights = np.array([np.max(s.intensities - np.percentile(s.intensities, 1)) for s in clean])
    bands, ratios, poor = {}, {}, {}
    for condition in conditions():
        draws = np.random.default_rng(args.seed + 1)
        copies = [degrade(s, condition, draws) for s in clean]
        Y = np.stack([np.interp(x, c.shifts, c.intensities) for c in copies])
        true_bands = np.array([true_band(s, condition) for s in clean])
        smooth = savgol_filter(Y, SMOOTHING, 2, axis=-1)
        bands[condition.name] = {
            w: (smooth - opening_envelope(smooth, w / step)).max(axis=-1) / true_bands for w in WINDOWS
        }
        quality = estimate(x, Y)
        ratios[condition.name] = np.array([q.snr for q in quality]) / (condition.snr * true_bands / heights)
        poor[condition.name] = np.mean([q.poor for q in quality])
    print(f"\n1. band height above an opening of each window / true band height ({len(chosen)} spectra a condition)")
    print(f"{'condition':40s} " + " ".join(f"{f'{w} cm-1':>9s}" for w in WINDOWS))
    for name, by_window in bands.items():
        print(f"{name:40s} " + " ".join(f"{np.median(by_window[w]):9.2f}" for w in WINDOWS))
    off = {w: np.mean([np.mean(np.abs(np.log(b[w])) > np.log(OFF)) for b in bands.values()]) for w in WINDOWS}
    print(f"{f'share off by more than {OFF}x (mean)':40s} " + " ".join(f"{off[w]:9.3f}" for w in WINDOWS))
    print(f"window with the smallest share: {min(off, key=off.get)} cm-1")
    print(
        "\n2. ramanid.quality.estimate: measured / true signal-to-noise ratio (median, 10th-90th), share flagged poor"
    )
    for name, r in ratios.items():
        low, high = np.percentile(r, [10, 90])
        print(f"{name:40s} {np.median(r):5.2f} [{low:4.2f}, {high:4.2f}]  poor {poor[name]:.2f}")


if __name__ == "__main__":
    main()
