"""COVID-19 serum (Yin et al. 2021), the RamanNet paper's protocol: 50 repeats of a random 70/30
split (stratified; 10% of each training part held out for early stopping), for three binary
tasks. Prints accuracy, sensitivity and specificity (mean ± std over the repeats).

    python benchmarks/bench_covid.py [--repeats 50] [--models ramannet svm lr]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import COVID_DIR, machine  # noqa: E402

from ramanid.datasets.covid_serum import load_covid_serum  # noqa: E402
from ramanid.evaluation.protocol import run_cv
from ramanid.targets import Task
from ramanid.training.factory import Options  # noqa: E402

# (negative, positive): sensitivity is measured on the positive class
TASKS = {
    "healthy vs COVID-19": ("Healthy", "COVID-19"),
    "suspected vs COVID-19": ("Suspected", "COVID-19"),
    "healthy vs suspected": ("Healthy", "Suspected"),
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--models", nargs="+", default=["ramannet", "svm", "lr"])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()
    spectra = load_covid_serum(COVID_DIR)
    print(f"machine: {machine()}")
    print(
        f"data: {len(spectra)} serum spectra, {spectra.intensities.shape[1]} points; "
        f"{args.repeats} x stratified 70/30; neural epochs <= {args.epochs}"
    )
    print(f"{'task':24s} {'model':10s} {'accuracy':>14s} {'sensitivity':>14s} {'specificity':>14s} {'wall':>6s}")
    for task, (negative, positive) in TASKS.items():
        subset = spectra.select(label=[negative, positive])
        start = time.perf_counter()
        result = run_cv(
            subset,
            task=Task.parse("label:label", positive=positive),
            models=args.models,
            split="repeated-holdout",
            folds=args.repeats,
            options=Options(epochs=args.epochs),
            n_jobs=args.jobs,
            log=lambda _: None,
        )
        wall = time.perf_counter() - start
        for model, data in result["models"].items():
            s = data["summary"]
            cells = " ".join(
                f"{s[k]['mean']:.3f} ± {s[k]['std']:.3f}" for k in ("accuracy", "sensitivity", "specificity")
            )
            print(f"{task:24s} {model:10s} {cells} {wall:5.0f}s", flush=True)


if __name__ == "__main__":
    main()
