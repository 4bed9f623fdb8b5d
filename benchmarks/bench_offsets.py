"""The calibration offset `predict` reports (issue 24): held-out specimens' spectra read with their
axis moved by a known offset, and the offset each was scored moved back by (``offset_cm1``).

    python benchmarks/bench_offsets.py --model DIR [--fold F] [--offsets -5 -2.5 -1 0 1 2.5 5]

Data: the degradation protocol's split (``bench_degradation.py``): the processed spectra of fold
``--fold``'s held-out specimens of known minerals, as read from their files, each read with its
axis moved by every offset (an instrument reading that much high), answered by ``--model``, an
identifier saved by ``bench_degradation.py --save`` on the same fold. For each offset: the share of
spectra an offset was estimated for (SNR 20 or more), the median and scatter of what was
reported, the share within one point of the model's axis of the truth, the share read 0 (not
moved), and the top-1 accuracy.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import cpu_flags, held_out_spectra, machine

from ramanid.bundle import load_bundle
from ramanid.predict import predict_spectra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="Saved by bench_degradation.py --save.")
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--offsets", type=float, nargs="+", default=[-5, -2.5, -1, 0, 1, 2.5, 5])
    args = parser.parse_args()
    print(f"machine: {machine()}; cpu flags: {cpu_flags()}")
    bundle = load_bundle(args.model)
    known = held_out_spectra(bundle, args.fold, args.seed)
    step = float(np.mean(np.diff(bundle.shifts)))
    print(f"{len(known)} processed spectra of held-out specimens; model axis step {step:.3f} cm-1")
    print("| offset (cm-1) | estimated | median reported | 10-90% reported | within a point | read 0 | top-1 |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for offset in args.offsets:
        start = time.perf_counter()
        moved = [replace(s, shifts=s.shifts + offset) for s in known]
        answers, _ = predict_spectra(bundle, moved, top=1, nearest=0)
        truth = {s.source: s.meta["mineral"] for s in known}
        reported = np.array([np.nan if a.offset_cm1 is None else a.offset_cm1 for a in answers])
        estimated = reported[np.isfinite(reported)]
        right = np.mean([a.top[0][0] == truth[a.file] for a in answers])
        low, high = np.quantile(estimated, [0.1, 0.9])
        print(
            f"| {offset:+g} | {len(estimated) / len(answers):.3f} | {np.median(estimated):+.2f} | {low:+.2f} to {high:+.2f}"
            f" | {np.mean(np.abs(estimated - offset) <= step + 1e-6):.3f} | {np.mean(estimated == 0):.3f}"
            f" | {right:.3f} |  ({len(answers)} spectra, {time.perf_counter() - start:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
