"""How well each baseline step recovers a spectrum from under a fluorescence background (issue 24).

    python benchmarks/bench_baselines.py [--spectra 300] [--seed 1]

Data: a seeded sample of the shared RRUFF zip's processed spectra (every laser; smooth, their own
baseline already removed), on the identifier's grid (1024 points over 100-1400 cm-1), min-max
scaled. Each gets the degradation protocol's backgrounds (:mod:`ramanid.evaluation.degradation`:
broad, sloped or curved, 1, 5 and 20 times its strongest band; seeded), alone and under noise
at a signal-to-noise ratio of 50. Each baseline step of ramanid runs (then despiking before it
and min-max after, as ``despike, STEP, minmax``) on the clean and the degraded spectrum; the
figure is the cosine between the two outputs: its median, and the share of spectra below 0.9
(a background visibly left in place). ``arpls, no noise floor`` is pybaselines' arPLS on the
spectrum itself, as ramanid ran it before it fitted against a noise floor.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import RRUFF_ZIP, cpu_flags, machine

from ramanid.bundle.inputs import fitted_pipeline
from ramanid.datasets.rruff import build_rruff
from ramanid.evaluation.degradation import Condition, degrade
from ramanid.preprocessing import baseline, steps_of
from ramanid.spectra import Spectrum

STEPS = ("arpls", "arpls, no noise floor", "airpls", "asls", "snip", "opening")
BACKGROUNDS = {f"fluorescence {k}x": {"fluorescence": k} for k in (1, 5, 20)}
BACKGROUNDS.update({f"fluorescence {k}x, SNR 50": {"fluorescence": k, "noise": 50} for k in (5, 20)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spectra", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"machine: {machine()}; cpu flags: {cpu_flags()}")
    built = build_rruff(RRUFF_ZIP, wavelengths=None, kind="processed", min_per_mineral=1).spectra
    rng = np.random.default_rng(args.seed)
    clean = built.intensities[rng.choice(len(built), min(args.spectra, len(built)), replace=False)].astype(np.float64)
    degraded = {}
    for name, factors in BACKGROUNDS.items():
        draws = np.random.default_rng(args.seed + 1)
        condition = Condition(name, tuple(factors.items()))
        degraded[name] = np.stack([degrade(Spectrum(built.shifts, x, {}), condition, draws).intensities for x in clean])
    print(f"{len(clean)} processed spectra; cosine to the clean spectrum's output: median / share below 0.9")
    print(f"{'step':24s} " + " ".join(f"{name:>26s}" for name in BACKGROUNDS) + "   ms/spectrum")
    for step in STEPS:
        floor = baseline.ARPLS_NOISE_FLOOR
        baseline.ARPLS_NOISE_FLOOR = 0.0 if step.endswith("no noise floor") else floor
        try:
            pipeline = fitted_pipeline(steps_of(f"despike, {step.split(',')[0]}, minmax"), built.shifts)
            reference = pipeline.transform(clean)
            cells, start = [], time.perf_counter()
            for Y in degraded.values():
                out = pipeline.transform(Y)
                cosine = (out * reference).sum(1) / np.linalg.norm(out, axis=1) / np.linalg.norm(reference, axis=1)
                cells.append(f"{np.median(cosine):.3f} / {np.mean(cosine < 0.9):.2f}")
            ms = 1000 * (time.perf_counter() - start) / (len(clean) * len(degraded))
        finally:
            baseline.ARPLS_NOISE_FLOOR = floor
        print(f"{step:24s} " + " ".join(f"{c:>26s}" for c in cells) + f"   {ms:.2f}", flush=True)


if __name__ == "__main__":
    main()
