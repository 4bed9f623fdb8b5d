"""`ramanid cv --model auto` on a 2,500-spectrum set, timed as a user runs it (issue 26).

    python benchmarks/bench_auto.py [--folds 5] [--models lr auto] [--budget MINUTES] [--split grouped:group]

The set stands in for RamanBench's saliva COVID task (3 classes, 2,501 spectra), which is not in
the shared data: 2,500 RRUFF spectra (raw and processed, every laser, 1,024 points), a third each
of silicates, oxides and hydroxides, and phosphates (the anion group of the ideal formula), drawn
at random with a fixed seed. Each model runs as its own ``ramanid cv`` process on the same
folds (stratified, as the leaderboard splits; ``--split grouped:group`` keeps each specimen's
spectra on one side, the honest figure); the wall time is the whole command, start-up included,
and LR in the same run is the reference for the ratio. Printed: balanced accuracy, wall time, and what ``auto`` chose on
each training part with every candidate's inner score.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import RRUFF_ZIP, cpu_flags, machine
from bench_mixtures import chemical_class

from ramanid.datasets.rruff import build_rruff

CLASSES = ("silicate", "oxide or hydroxide", "phosphate")
SIZE = 2500


def stand_in_set(path: Path, seed: int = 0) -> None:
    """Write the 2,500-spectrum, 3-class RRUFF set to ``path``."""
    spectra = build_rruff(RRUFF_ZIP, wavelengths=None, kind="all", min_per_mineral=2).spectra
    labels = np.array([chemical_class(str(formula)) for formula in spectra.meta["chemistry"]])
    rng = np.random.default_rng(seed)
    sizes = [len(part) for part in np.array_split(np.arange(SIZE), len(CLASSES))]
    keep = [
        rng.choice(np.flatnonzero(labels == name), size, replace=False)
        for name, size in zip(CLASSES, sizes, strict=True)
    ]
    rows = np.sort(np.concatenate(keep))
    subset = spectra.subset(rows)
    subset.meta["label"] = labels[rows]
    subset.meta["group"] = subset.meta["rruff_id"]  # specimens, for a grouped split by hand
    subset.save(path)
    counts = subset.meta["label"].value_counts().to_dict()
    print(f"set: {len(subset)} spectra x {len(subset.shifts)} points, {counts}")


def run(data: Path, model: str, folds: int, budget: float | None, split: str, out: Path) -> float:
    ramanid = str(Path(sys.executable).parent / "ramanid")
    command = [ramanid, "cv", "--data", str(data), "--model", model, "--task", "label:label"]
    command += ["--split", split, "--folds", str(folds), "--out", str(out)]
    if budget is not None and model == "auto":
        command += ["--budget", str(budget)]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def report(model: str, wall: float, reference: float, out: Path) -> None:
    folds = json.loads((out / "results.json").read_text())["models"][model]["folds"]
    scores = [fold["metrics"]["balanced_accuracy"] for fold in folds]
    print(
        f"{model}: balanced accuracy {np.mean(scores):.3f} ± {np.std(scores, ddof=1):.3f}, "
        f"{wall:.0f} s ({wall / 60:.1f} min), {wall / reference:.1f}x lr"
    )
    for i, fold in enumerate(folds):
        if "model_chosen" in fold:
            print(
                f"  fold {i + 1}: chose {fold['model_chosen']} ({fold['wall_s']:.0f} s), inner scores "
                f"{fold.get('model_scores')}, seconds {fold.get('model_seconds')}, untried {fold.get('model_untried', [])}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--models", nargs="+", default=["lr", "auto"])
    parser.add_argument("--budget", type=float, help="minutes, passed to auto as --budget")
    parser.add_argument("--split", default="stratified", help="as ramanid cv --split")
    args = parser.parse_args()
    print(f"machine: {machine()}\ncpu: {cpu_flags()}")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "standin.npz"
        stand_in_set(data)
        walls = {}
        for model in ["lr", *[m for m in args.models if m != "lr"]]:
            out = Path(tmp) / model
            walls[model] = run(data, model, args.folds, args.budget, args.split, out)
            report(model, walls[model], walls["lr"], out)


if __name__ == "__main__":
    main()
