"""ReZeroNet (issue 26): ``rezero_cnn`` beside RamanNet and LR, in one run.

    python benchmarks/bench_rezero.py --speed [--jobs 2]   # epochs/s and 3-fold wall time on 2,000 spectra
    python benchmarks/bench_rezero.py --accuracy     # the shared sets, RamanBench's protocol and ours

Speed: 2,000 RRUFF spectra (raw and processed, 1,024 points, the most populous minerals) under stratified
3-fold cross-validation, each network with its registry's recipe (at most ``--epochs`` epochs,
early stopping on a validation split of the training part), float32 and, where the CPU has it
natively, bfloat16; epochs per second are the epochs run over the folds' wall time (training
and scoring), summed over folds.
Accuracy: cancer-cell SERS COOH (RamanBench's task ``cancer_cell_cooh``: random 80/20 x 3
seeds, as the leaderboard; ``bench_tables.py`` has its stratified 5-fold), E. coli growth phase
(stratified 5-fold and leave one culture out) and raspberry origin (stratified 5-fold): balanced
accuracy, mean ± sd over folds, spectra as distributed and with ``snv``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from _common import RRUFF_ZIP, cpu_flags, machine
from bench_tables import SETS

from ramanid.datasets.rruff import build_rruff
from ramanid.datasets.table import build_table
from ramanid.evaluation.protocol import run_cv
from ramanid.evaluation.splits import Split
from ramanid.training.factory import Options
from ramanid.training.trainer import native_bfloat16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--speed", action="store_true")
    parser.add_argument("--accuracy", action="store_true")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--models", nargs="+", default=["rezero_cnn", "ramannet"])
    parser.add_argument("--jobs", type=int, default=1, help="Speed: folds side by side, as 'ramanid cv --jobs'.")
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(f"machine: {machine()}, torch {torch.__version__}\ncpu: {cpu_flags()}")
    if args.speed:
        speed(args.models, args.epochs, args.jobs)
    if args.accuracy:
        accuracy([*args.models, "lr"], args.epochs)


def speed(models: list[str], epochs: int, jobs: int = 1) -> None:
    spectra = build_rruff(RRUFF_ZIP, wavelengths=None, kind="all", min_per_mineral=10).spectra
    minerals = spectra.meta["mineral"].to_numpy()
    names, counts = np.unique(minerals, return_counts=True)
    keep, total = [], 0
    for name in names[np.argsort(-counts)]:
        rows = np.flatnonzero(minerals == name)
        keep += rows.tolist()
        total += len(rows)
        if total >= 2000:
            break
    subset = spectra.subset(np.sort(keep)[:2000])
    print(f"\nspeed: {len(subset)} spectra x {len(subset.shifts)} points, {subset.meta['mineral'].nunique()} minerals")
    precisions = ["float32"] + (["bfloat16"] if native_bfloat16(torch.device("cpu")) else [])
    for precision in precisions:
        for model in models:
            start = time.perf_counter()
            result = run_cv(
                subset,
                task="mineral",
                models=[model],
                split="stratified",
                folds=3,
                options=Options(epochs=epochs, precision=precision),
                n_jobs=jobs,
                log=lambda _: None,
            )
            wall = time.perf_counter() - start
            folds = result["models"][model]["folds"]
            run = sum(f.get("epochs_run", 0) for f in folds)
            fold_s = sum(f["wall_s"] for f in folds)
            s = result["models"][model]["summary"]["accuracy"]
            print(
                f"  {model:12s} {precision:9s} --jobs {jobs} accuracy {s['mean']:.3f} ± {s['std']:.3f}  3 folds {wall:6.1f} s  "
                f"epochs run {run:4d}  {run / max(fold_s, 1e-9):6.2f} epochs/s",
                flush=True,
            )


def accuracy(models: list[str], epochs: int) -> None:
    protocols = {
        "cancer": [("RamanBench 80/20 x 3", Split("repeated-holdout", 3, 0, None, 0.2))],
        "ecoli": [("stratified 5-fold", None), ("leave one culture out", Split("grouped", 3, 0, "group"))],
        "raspberry": [("stratified 5-fold", None)],
    }
    for name, runs in protocols.items():
        path, group = SETS[name]
        spectra = build_table(path, label="label", group=group)
        print(f"\n{name}: {len(spectra)} spectra x {len(spectra.shifts)} points")
        for label, split in runs:
            for steps in ("none", "snv"):
                for model in models:
                    start = time.perf_counter()
                    result = run_cv(
                        spectra,
                        task="label:label",
                        models=[model],
                        split=split or Split("stratified", 5),
                        options=Options(epochs=epochs, preprocess=None if steps == "none" else steps),
                        log=lambda _: None,
                    )
                    s = result["models"][model]["summary"]["balanced_accuracy"]
                    print(
                        f"  {label:22s} {steps:5s} {model:12s} {s['mean']:.3f} ± {s['std']:.3f}"
                        f"  {time.perf_counter() - start:6.0f} s",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
