"""How well each baseline step recovers a spectrum from under a fluorescence background, and which
spectra a map's one-pass baseline may keep (issues 24 and 30).

    python benchmarks/bench_baselines.py [--spectra 300] [--seed 1]

Data: a seeded sample of the processed spectra (every laser; smooth, their own baseline already
removed) of the references of fold 0 of the degradation protocol's split (no held-out specimen),
on the identifier's grid (1024 points over 100-1400 cm-1), min-max scaled. Each gets the
protocol's backgrounds (:mod:`ramanid.evaluation.degradation`: broad, sloped or curved; seeded)
of 0.3 to 20 times its strongest band, without noise and at a signal-to-noise ratio of 50.

1. Each baseline step runs as ``despike, STEP, minmax`` on the clean and on the degraded
   spectrum; the figure is the cosine between the two outputs: its median, and the share of
   spectra below 0.9 (a background visibly left in place). ``arpls, no noise floor`` is
   pybaselines' arPLS on the spectrum itself, as ramanid ran it before it fitted against a floor.
2. For a map's fast baseline: each degraded spectrum's background share (its quality estimate),
   and for each cut, the opening's and arPLS's median cosine (to the clean spectrum's arPLS
   output) on the spectra at or below the cut. ``ramanid.bundle.inputs.FAST_BASELINE_MAX_BACKGROUND``
   is the highest cut at which the opening stays within 0.01 of arPLS there.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import sampled_references

from ramanid.bundle.inputs import FAST_BASELINE_MAX_BACKGROUND, fitted_pipeline
from ramanid.cli import IDENTIFIER_PREPROCESS
from ramanid.evaluation.degradation import Condition, degrade
from ramanid.preprocessing import baseline, steps_of
from ramanid.quality import estimate
from ramanid.spectra import Spectrum

STEPS = ("arpls", "arpls, no noise floor", "airpls", "asls", "snip", "opening")
LEVELS = (0, 0.3, 1, 2, 5, 10, 20)
CUTS = (0.8, 0.9, 0.95, 0.97, 0.98, 0.99)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def main() -> None:
    args, built, chosen = sampled_references(__doc__.split("\n\n")[0])
    clean = built.intensities[chosen].astype(np.float64)
    degraded = {}
    for level in LEVELS:
        for snr in (None, 50):
            factors = (("fluorescence", level),) * bool(level) + (("noise", snr),) * bool(snr)
            draws = np.random.default_rng(args.seed + 1)
            degraded[level, snr] = np.stack(
                [degrade(Spectrum(built.shifts, x, {}), Condition("", factors), draws).intensities for x in clean]
            )
    shown = [(k, s) for k, s in degraded if k in (1, 5, 20) and (s is None or k > 1)]
    names = [f"{k}x" + (f", SNR {s}" if s else "") for k, s in shown]
    print(f"\n1. {len(clean)} processed spectra; cosine to the clean spectrum's output: median / share below 0.9")
    print(f"{'step':24s} " + " ".join(f"{n:>14s}" for n in names) + "   ms/spectrum")
    for step in STEPS:
        floor = baseline.ARPLS_NOISE_FLOOR
        baseline.ARPLS_NOISE_FLOOR = 0.0 if step.endswith("no noise floor") else floor
        try:
            pipeline = fitted_pipeline(steps_of(f"despike, {step.split(',')[0]}, minmax"), built.shifts)
            reference = pipeline.transform(clean)
            cells, start = [], time.perf_counter()
            for key in shown:
                similar = cosine(pipeline.transform(degraded[key]), reference)
                cells.append(f"{np.median(similar):.3f} / {np.mean(similar < 0.9):.2f}")
            ms = 1000 * (time.perf_counter() - start) / (len(clean) * len(shown))
        finally:
            baseline.ARPLS_NOISE_FLOOR = floor
        print(f"{step:24s} " + " ".join(f"{c:>14s}" for c in cells) + f"   {ms:.2f}", flush=True)

    fast = fitted_pipeline(steps_of(IDENTIFIER_PREPROCESS.replace("arpls", "opening")), built.shifts)
    slow = fitted_pipeline(steps_of(IDENTIFIER_PREPROCESS), built.shifts)
    truth = slow.transform(clean)
    share, opening, arpls = [], [], []
    print("\n2. background share (quality estimate) and cosine to the clean spectrum's arPLS output")
    for (level, snr), Y in degraded.items():
        share.append([q.background_share for q in estimate(built.shifts, Y)])
        opening.append(cosine(fast.transform(Y), truth))
        arpls.append(cosine(slow.transform(Y), truth))
        print(
            f"  background {level:4}x{f', SNR {snr}' if snr else '':9s} share (10/50/90%) "
            + " ".join(f"{v:.3f}" for v in np.quantile(share[-1], (0.1, 0.5, 0.9)))
            + f" | opening {np.median(opening[-1]):.3f} / {np.mean(opening[-1] < 0.9):.2f}"
            + f" | arpls {np.median(arpls[-1]):.3f} / {np.mean(arpls[-1] < 0.9):.2f}"
        )
    share, opening, arpls = (np.concatenate(v) for v in (share, opening, arpls))
    for cut in CUTS:
        kept = share <= cut
        mark = "   <- FAST_BASELINE_MAX_BACKGROUND" if cut == FAST_BASELINE_MAX_BACKGROUND else ""
        print(
            f"  cut {cut}: opening keeps {kept.mean():.2f} of the spectra; there opening {np.median(opening[kept]):.3f},"
            f" arpls {np.median(arpls[kept]):.3f}; above it opening {np.median(opening[~kept]):.3f},"
            f" arpls {np.median(arpls[~kept]):.3f}{mark}"
        )


if __name__ == "__main__":
    main()
