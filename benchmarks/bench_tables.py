"""Biological and food sets from wide CSVs: every model under the set's random protocol and, where
the set has groups, its grouped one (issue 13).

    python benchmarks/bench_tables.py [--sets ecoli cancer raspberry] [--models lr svm ramannet]

Sets (../shared/data, see its README): E. coli growth phase (3 classes, replicate cultures:
random 5-fold and leave-one-culture-out, `grouped:group` with 3 folds); cancer-cell SERS, COOH
(12 classes; RamanBench task `cancer_cell_cooh`: random 80/20 x 3 seeds, here stratified 5-fold);
raspberry origin (5 classes, random 5-fold). Each model runs with the spectra as distributed
(`none`) and with `--preprocess auto` (the steps picked by inner cross-validation on each
training part). Balanced accuracy, mean ± sd over folds (ddof=1), and wall time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter

import torch

sys.path.insert(0, os.path.dirname(__file__))
from _common import SHARED, cpu_flags, machine

from ramanid.datasets.table import build_table
from ramanid.evaluation.protocol import run_cv
from ramanid.training.factory import Options

SETS = {
    "ecoli": (SHARED / "ecoli_growth_phase" / "ecoli_growth_phase.csv.gz", "replicate"),
    "cancer": (SHARED / "cancer_cells_sers" / "cancer_cells_sers_cooh.csv.gz", None),
    "raspberry": (SHARED / "raspberry_origin" / "raspberry_origin.csv.gz", None),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS))
    parser.add_argument("--models", nargs="+", default=["lr", "svm", "rf", "mlp", "ramannet"])
    parser.add_argument("--preprocess", nargs="+", default=["none", "auto"])
    parser.add_argument("--epochs", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(f"machine: {machine()}, torch {torch.__version__}\ncpu: {cpu_flags()}")
    for name in args.sets:
        path, group = SETS[name]
        spectra = build_table(path, label="label", group=group)
        protocols = [("stratified", 5)] + ([("grouped:group", spectra.meta["group"].nunique())] if group else [])
        print(
            f"\n{name}: {len(spectra)} spectra x {len(spectra.shifts)} points, {spectra.meta['label'].nunique()} "
            f"classes" + (f", groups: {group}" if group else "")
        )
        print(
            f"  {'protocol':16s} {'preprocess':10s} {'model':10s} {'balanced accuracy':>18s} {'wall':>7s}  chosen steps"
        )
        for split, folds in protocols:
            for steps in args.preprocess:
                for model in args.models:
                    start = time.perf_counter()
                    result = run_cv(
                        spectra,
                        task="label:label",
                        models=[model],
                        split=split,
                        folds=folds,
                        options=Options(epochs=args.epochs, preprocess=None if steps == "none" else steps),
                        log=lambda _: None,
                    )
                    wall = time.perf_counter() - start
                    data = result["models"][model]
                    s = data["summary"]["balanced_accuracy"]
                    chosen = Counter(f.get("preprocess") for f in data["folds"]) if steps == "auto" else ""
                    print(
                        f"  {split:16s} {steps:10s} {model:10s} {s['mean']:8.3f} ± {s['std']:.3f} {wall:6.0f}s  "
                        f"{dict(chosen) if chosen else ''}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
