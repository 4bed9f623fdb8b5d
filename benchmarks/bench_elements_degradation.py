"""Elements of minerals never seen, on degraded spectra (issue 29, item 1): saved element models
read the degradation protocol's spectra of held-out minerals as a user's files.

    python benchmarks/bench_elements_degradation.py [--model attention_resnet+vote --model formula_vote --model lr]
        [--epochs 10] [--fold 0] [--save DIR] [--log elements_degradation.json]

Data: every spectrum of the shared RRUFF zip (all lasers, raw and processed, single specimens
kept), built as ``ramanid build rruff --wavelength all --kind all --min-per-mineral 1`` builds it
for the library (despike, arPLS, min-max). Split: fold ``--fold`` of ``grouped:mineral``, 5 folds,
seed 0, the folds of ``ramanid cv --split grouped:mineral`` on that set, so no test mineral is
in training. Each model is trained as ``ramanid train --task elements`` trains it, on the
training minerals only (its thresholds and choices on minerals it holds out of them). The
queries are the test minerals' processed spectra as read from their files, degraded by each
condition of :mod:`ramanid.evaluation.degradation` (seeded per spectrum, the same spectra for
every model), then prepared by each model as ``predict`` prepares a file, and reported present
at the thresholds ``predict`` applies (each input's quality block's, where the model has them).
``--rechoose`` makes the saved models' choices per quality again with today's code, on
validation copies read as each folder reads spectra (``filter_edge`` in its ``bundle.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import RRUFF_ZIP, cpu_flags, machine

from ramanid.assess import evaluate_elements_degraded
from ramanid.bundle import load_bundle
from ramanid.chemistry import DEFAULT_ELEMENTS
from ramanid.cli import IDENTIFIER_PREPROCESS
from ramanid.datasets.rruff import build_rruff
from ramanid.deploy import element_quality_fields, train_bundle
from ramanid.evaluation.degradation import conditions
from ramanid.evaluation.splits import Split
from ramanid.io.rruff import read_rruff
from ramanid.targets import Task
from ramanid.training.factory import Options


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", default=None)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", type=Path, default=Path("elements_degradation_models"))
    parser.add_argument("--only", nargs="*", default=None, help="Condition names to run.")
    parser.add_argument("--log", type=Path, default=None)
    parser.add_argument(
        "--rechoose",
        action="store_true",
        help="Choose the saved models' thresholds and smoothing per quality again, with this code (no retraining).",
    )
    args = parser.parse_args()
    models = args.model or ["attention_resnet+vote", "formula_vote", "lr"]
    print(f"machine: {machine()}; cpu flags: {cpu_flags()}")
    start = time.perf_counter()
    built = build_rruff(
        RRUFF_ZIP, wavelengths=None, kind="all", min_per_mineral=1, preprocess=IDENTIFIER_PREPROCESS
    ).spectra
    task = Task.parse("elements", elements=DEFAULT_ELEMENTS)
    labelled, y = task.labelled(built, lambda *_: None)
    train, test = Split.parse("grouped:mineral", 5, seed=0).indices(labelled, y)[args.fold]
    test_minerals = set(labelled.meta["mineral"].iloc[test])
    print(
        f"training {len(train)} spectra of {labelled.meta['mineral'].iloc[train].nunique()} minerals; "
        f"test minerals {len(test_minerals)}"
    )
    bundles = {}
    for name in models:
        folder = args.save / name.replace("+", "_")
        if not (folder / "bundle.json").exists():
            t = time.perf_counter()
            train_bundle(
                labelled.subset(train),
                task=task,
                model=name,
                options=Options(epochs=args.epochs),
                seed=args.seed,
                folder=folder,
                log=lambda *_: None,
            )
            print(f"trained {name} in {time.perf_counter() - t:.0f} s")
        elif args.rechoose:
            rechoose(folder, labelled.subset(train), y[train], args.seed)
        bundles[name] = load_bundle(folder)
    files = set(labelled.meta["file"].iloc[test])
    queries, _ = read_rruff(RRUFF_ZIP, lambda m: m.get("kind") == "processed")
    queries = [s for s in queries if s.meta["file"] in files]
    print(f"queries: {len(queries)} processed spectra of {len({s.meta['mineral'] for s in queries})} test minerals")
    rows = []
    for condition in conditions():
        if args.only and condition.name not in args.only:
            continue
        t = time.perf_counter()
        row = evaluate_elements_degraded(bundles, queries, condition, seed=args.seed)
        row["wall_s"] = round(time.perf_counter() - t, 1)
        rows.append(row)
        cells = " | ".join(
            f"{name} {r['macro']:.3f} (" + " ".join(f"{e} {a:.2f}" for e, a in r["auc"].items()) + ")"
            for name, r in row["models"].items()
        )
        print(f"{condition.name:22s} {cells} | {row['wall_s']} s", flush=True)
    for row in rows:  # the share reported present, at the thresholds predict applies, against the true share
        if row["condition"] in ("clean", "noise SNR 20", "noise SNR 10", "noise SNR 5", "handheld 785 nm"):
            for name, r in row["models"].items():
                shares = " ".join(f"{e} {r['reported_share'][e]:.2f}/{r['true_share'][e]:.2f}" for e in r["auc"])
                print(f"{row['condition']}: {name} reported/true share present: {shares}")
    print(f"total {time.perf_counter() - start:.0f} s")
    if args.log:
        args.log.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=1))


def rechoose(folder: Path, spectra, Y, seed: int) -> None:
    """The saved element model in ``folder`` with its choices per quality block made again as
    ``train`` makes them now (:func:`ramanid.deploy.element_quality_fields`), on the same
    validation minerals: a change of that choice measured on the very same networks.
    """
    bundle = load_bundle(folder)
    val = np.asarray(bundle.info.validation["index"])
    t = time.perf_counter()
    fields = element_quality_fields(
        bundle.estimator,
        spectra,
        bundle.info.preprocess,
        spectra.intensities,
        Y,
        val,
        seed,
        print,
        bundle.info.filter_edge,
    )
    header_file = folder / "bundle.json"
    header = {k: v for k, v in json.loads(header_file.read_text()).items() if not k.startswith("element_")}
    header_file.write_text(json.dumps({**header, **fields}))
    print(f"chose {folder.name}'s thresholds per quality again in {time.perf_counter() - t:.0f} s")


if __name__ == "__main__":
    main()
