"""Saved classical models against a saved network (issue 26): ``train`` on the E. coli cultures
(validation on a whole held-out culture), then load the folder and predict every spectrum.

    python benchmarks/bench_saved_classical.py [--models lr auto minirocket ramannet]

Prints, per model: the validation accuracy ``train`` reports (one culture it did not train on),
the wall time to train and save, to load the folder, and to predict the 536 spectra through
``predict_prepared`` (scores, calibration, answer sets, unknown flag, nearest references), with
the ratio of each time to the network's in the same run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, os.path.dirname(__file__))
from _common import SHARED, cpu_flags, machine

from ramanid.bundle import load_bundle
from ramanid.datasets.table import build_table
from ramanid.deploy import train_bundle
from ramanid.predict import predict_prepared
from ramanid.targets import Task
from ramanid.training.factory import Options


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["lr", "auto", "minirocket", "lgbm", "ramannet"])
    parser.add_argument("--epochs", type=int, default=200)
    args = parser.parse_args()
    print(f"machine: {machine()}, torch {torch.__version__}\ncpu: {cpu_flags()}")
    spectra = build_table(SHARED / "ecoli_growth_phase" / "ecoli_growth_phase.csv.gz", label="label", group="replicate")
    X, names = spectra.intensities, [f"cell{i}" for i in range(len(spectra))]
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            lines = []
            start = time.perf_counter()
            bundle = train_bundle(
                spectra,
                task=Task.parse("label:label"),
                model=model,
                options=Options(epochs=args.epochs, preprocess="snv" if model == "ramannet" else None),
                seed=0,
                folder=Path(tmp) / model,
                log=lines.append,
            )
            trained = time.perf_counter() - start
            start = time.perf_counter()
            bundle = load_bundle(bundle.path)
            loaded = time.perf_counter() - start
            start = time.perf_counter()
            predict_prepared(bundle, X, names, top=3)
            predicted = time.perf_counter() - start
            validation = bundle.info.validation
            chosen = next((line for line in lines if line.startswith("model chosen")), "")
            rows[model] = (
                validation["metrics"]["accuracy"],
                validation["n_spectra"],
                trained,
                loaded,
                predicted,
                chosen,
            )
    reference = rows.get("ramannet")
    print(
        f"\n{'model':12s} {'validation acc':>14s} {'train s':>8s} {'load s':>7s} {'predict s':>9s}  ratios to ramannet"
    )
    for model, (accuracy, n, trained, loaded, predicted, chosen) in rows.items():
        ratio = (
            f"train {trained / reference[2]:.3f}, load {loaded / reference[3]:.2f}, predict {predicted / reference[4]:.2f}"
            if reference
            else ""
        )
        print(f"{model:12s} {accuracy:8.3f} ({n}) {trained:8.1f} {loaded:7.2f} {predicted:9.2f}  {ratio}  {chosen}")


if __name__ == "__main__":
    main()
