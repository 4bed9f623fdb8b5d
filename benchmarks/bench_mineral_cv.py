"""Mineral top-1/5/10 accuracy of every model under the RamanNet paper's RRUFF protocol.

    python benchmarks/bench_mineral_cv.py [--models ramannet lr ...] [--epochs 300]

Data: raw RRUFF spectra of every wavelength, minerals with at least 10 spectra (67 minerals,
1,061 spectra in the shared zip), linear resampling onto 1024 points over 100-1400 cm-1,
min-max scaling. Protocol: 5-fold stratified cross-validation (shuffled, seed 0); every model
sees the same folds. Neural models hold 10% of each training fold out for early stopping.
Folds are NOT grouped by RRUFF sample: spectra of one specimen at other wavelengths can sit
on both sides, as in the paper (the evaluation issue adds grouped folds).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
from sklearn.metrics import top_k_accuracy_score
from sklearn.model_selection import StratifiedKFold

sys.path.insert(0, os.path.dirname(__file__))
from _common import RRUFF_ZIP, machine  # noqa: E402

from ramanid.classical import classical_model  # noqa: E402
from ramanid.datasets.rruff import build_rruff  # noqa: E402
from ramanid.training.estimators import SpectrumClassifier  # noqa: E402

NEURAL = ("ramannet", "attention_resnet", "liu2017_cnn", "ho2019_resnet", "mlp")
CLASSICAL = ("lr", "svm", "knn", "rf", "pca_lr", "library")


def make(name: str, epochs: int):
    if name in NEURAL:
        return SpectrumClassifier(model=name, epochs=epochs, patience=30, random_state=0)
    return classical_model(name, random_state=0)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=list(CLASSICAL) + ["ramannet", "mlp", "attention_resnet",
                                                                            "liu2017_cnn"])
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--min-per-mineral", type=int, default=10)
    parser.add_argument("--log", default=None, help="append one JSON line per model here")
    args = parser.parse_args()
    torch.set_num_threads(2)
    spectra = build_rruff(RRUFF_ZIP, wavelengths=None, kind="raw", min_per_mineral=args.min_per_mineral).spectra
    X, y = spectra.intensities, spectra.meta["mineral"].to_numpy()
    labels = np.unique(y)
    folds = list(StratifiedKFold(args.folds, shuffle=True, random_state=0).split(X, y))
    print(f"machine: {machine()}, torch {torch.__version__}")
    print(f"data: {len(X)} spectra, {len(labels)} minerals; {args.folds}-fold stratified, seed 0; "
          f"neural epochs <= {args.epochs}")
    print(f"{'model':18s} {'top-1':>14s} {'top-5':>14s} {'top-10':>14s} {'wall':>8s}")
    for name in args.models:
        start, scores = time.perf_counter(), []
        for train, test in folds:
            model = make(name, args.epochs).fit(X[train], y[train])
            proba = model.predict_proba(X[test])
            # classes missing from a training fold get probability 0
            full = np.zeros((len(test), len(labels)))
            full[:, np.searchsorted(labels, model.classes_)] = proba
            scores.append([top_k_accuracy_score(y[test], full, k=k, labels=labels) for k in (1, 5, 10)])
        scores = np.array(scores)
        wall = time.perf_counter() - start
        cells = " ".join(f"{m:.3f} ± {s:.3f}" for m, s in zip(scores.mean(0), scores.std(0)))
        print(f"{name:18s} {cells} {wall:7.0f}s", flush=True)
        if args.log:
            with open(args.log, "a") as fh:
                fh.write(json.dumps({"model": name, "folds": args.folds, "min_per_mineral": args.min_per_mineral,
                                     "epochs": args.epochs, "top1": scores[:, 0].tolist(),
                                     "top5": scores[:, 1].tolist(), "top10": scores[:, 2].tolist(),
                                     "wall_s": wall}) + "\n")


if __name__ == "__main__":
    main()
