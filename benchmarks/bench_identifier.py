"""The library identifier against classical library search, on protocols that hold out what a user's
spectrum differs in (issue 10).

    python benchmarks/bench_identifier.py [--epochs 60] [--folds 5] [--protocols laser kind specimen] [--lr]

Data: every spectrum of the shared RRUFF zip (all lasers, raw and processed, every mineral, singletons
included), 1024 points over 100-1400 cm-1, despiked, arPLS baseline removed, min-max scaled. Protocols:

1. laser: references at 532 nm, queries of the same minerals at 780/785 nm; and the reverse.
2. kind: processed references, raw queries of the same minerals; and the reverse.
3. specimen: 5-fold grouped by RRUFF id, so a query's specimen is never among the references;
   queries whose mineral has no reference left are counted apart (no method can name them).

In every protocol the identifier's network is trained on the references only, and its spectral
score and alpha are chosen on held-out specimens of the references. Classical search (cosine,
Pearson, HQI, first-derivative correlation) runs on the same preprocessed references, and on
min-max-only spectra as a practitioner without baseline removal would. Top-1 and top-5 over
minerals, and top-1 by the number of references per mineral.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
from sklearn.model_selection import GroupKFold

sys.path.insert(0, os.path.dirname(__file__))
from _common import RRUFF_ZIP, cpu_flags, machine

from ramanid.datasets.rruff import build_rruff
from ramanid.search import LibrarySearch
from ramanid.training.baselines import classical_model
from ramanid.training.identifier import LibraryIdentifier

PREPROCESS = "despike, arpls, minmax"


def ranks(scores: np.ndarray, classes: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The 1-based rank of the true class of each query (ties counted against it)."""
    position = {c: i for i, c in enumerate(classes)}
    true = scores[np.arange(len(truth)), [position[t] for t in truth]]
    return 1 + (scores > true[:, None]).sum(axis=1) + ((scores == true[:, None]).sum(axis=1) - 1)


def summary(rank: np.ndarray, per_mineral: np.ndarray) -> dict:
    out = {"n": int(len(rank)), "top1": float(np.mean(rank == 1)), "top5": float(np.mean(rank <= 5))}
    for name, (low, high) in {"refs_1": (1, 1), "refs_2_4": (2, 4), "refs_5plus": (5, 10**9)}.items():
        mask = (per_mineral >= low) & (per_mineral <= high)
        out[name] = float(np.mean(rank[mask] == 1)) if mask.any() else float("nan")
        out[f"n_{name}"] = int(mask.sum())
    return out


def evaluate(name, refs, queries, data, plain, labels, groups, args) -> dict:
    """Every method on one split: references ``refs``, queries ``queries`` (positions)."""
    known = queries[np.isin(labels[queries], labels[refs])]
    minerals, counts = np.unique(labels[refs], return_counts=True)
    per_mineral = dict(zip(minerals, counts, strict=True))
    n_refs = np.array([per_mineral[m] for m in labels[known]])
    rows = {}
    start = time.perf_counter()
    identifier = LibraryIdentifier(epochs=args.epochs, random_state=0).fit(
        data[refs], labels[refs], groups=groups[refs]
    )
    fit_s = time.perf_counter() - start
    scores = identifier.class_scores(data[known])
    spectral = identifier.spectral_
    rows["ramanid identifier"] = {
        **summary(ranks(scores, identifier.classes_, labels[known]), n_refs),
        "alpha": identifier.alpha_,
        "spectral": f"power {spectral.power:g}, window {spectral.window}",
        "fit_s": fit_s,
    }
    estimate, identifier.offset_estimate_ = identifier.offset_estimate_, None  # the same model without it
    rows["ramanid, no offset estimate"] = summary(
        ranks(identifier.class_scores(data[known]), identifier.classes_, labels[known]), n_refs
    )
    identifier.offset_estimate_ = estimate
    for alpha, label in ((1.0, "ramanid embedding only"), (0.0, "ramanid spectral score only")):
        scores = identifier.best_per_class(identifier.similarity(data[known], alpha), identifier.reference_class_)
        rows[label] = summary(ranks(scores, identifier.classes_, labels[known]), n_refs)
    for metric in ("cosine", "pearson", "hqi", "derivative"):
        search = LibrarySearch(metric).fit(data[refs], labels[refs])
        rows[f"{metric} (same preprocessing)"] = summary(
            ranks(search.class_scores(data[known]), search.classes_, labels[known]), n_refs
        )
    if args.lr:  # the plain classifier baseline: one class per mineral of the references
        start = time.perf_counter()
        lr = classical_model("lr").fit(data[refs], labels[refs])
        rows["logistic regression"] = {
            **summary(ranks(lr.predict_proba(data[known]), lr.classes_, labels[known]), n_refs),
            "fit_s": time.perf_counter() - start,
        }
    for metric in ("cosine", "pearson", "hqi", "derivative"):
        search = LibrarySearch(metric).fit(plain[refs], labels[refs])
        rows[f"{metric} (min-max only)"] = summary(
            ranks(search.class_scores(plain[known]), search.classes_, labels[known]), n_refs
        )
    print(
        f"\n{name}: {len(refs)} references of {len(minerals)} minerals; {len(known)} queries answerable "
        f"({len(queries) - len(known)} of {len(queries)} have no reference of their mineral)"
    )
    print(f"  {'method':32s} {'top-1':>6s} {'top-5':>6s} {'1 ref':>6s} {'2-4':>6s} {'5+':>6s}")
    for method, row in rows.items():
        print(
            f"  {method:32s} {row['top1']:6.3f} {row['top5']:6.3f} {row['refs_1']:6.3f} {row['refs_2_4']:6.3f} "
            f"{row['refs_5plus']:6.3f}"
            + (f"   alpha {row['alpha']}, {row['spectral']}, fit {row['fit_s']:.0f} s" if "alpha" in row else "")
        )
    return {
        "protocol": name,
        "references": int(len(refs)),
        "queries": int(len(known)),
        "unanswerable": int(len(queries) - len(known)),
        "methods": rows,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--protocols", nargs="+", default=["laser", "kind", "specimen"])
    parser.add_argument("--log", default=None, help="write every figure here as JSON")
    parser.add_argument("--lr", action="store_true", help="add logistic regression (slow: 1,800 classes)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(f"machine: {machine()}, torch {torch.__version__}\ncpu: {cpu_flags()}")
    start = time.perf_counter()
    built = build_rruff(RRUFF_ZIP, wavelengths=None, kind="all", min_per_mineral=1, preprocess=PREPROCESS).spectra
    plain = build_rruff(RRUFF_ZIP, wavelengths=None, kind="all", min_per_mineral=1).spectra
    assert (built.meta["file"].to_numpy() == plain.meta["file"].to_numpy()).all()
    meta = built.meta
    labels, groups = meta["mineral"].astype(str).to_numpy(), meta["rruff_id"].astype(str).to_numpy()
    print(
        f"data: {len(built)} spectra of {len(np.unique(labels))} minerals, {len(np.unique(groups))} specimens; "
        f"preprocessing {PREPROCESS!r}; built in {time.perf_counter() - start:.0f} s; epochs {args.epochs}"
    )
    X, P = built.intensities, plain.intensities
    wavelength, kind = meta["wavelength"].to_numpy(), meta["kind"].to_numpy()
    results = []
    if "laser" in args.protocols:
        green, red = np.flatnonzero(wavelength == 532), np.flatnonzero(np.isin(wavelength, (780, 785)))
        results.append(evaluate("laser 532 -> 780/785", green, red, X, P, labels, groups, args))
        results.append(evaluate("laser 780/785 -> 532", red, green, X, P, labels, groups, args))
    if "kind" in args.protocols:
        processed, raw = np.flatnonzero(kind == "processed"), np.flatnonzero(kind == "raw")
        results.append(evaluate("processed refs -> raw queries", processed, raw, X, P, labels, groups, args))
        results.append(evaluate("raw refs -> processed queries", raw, processed, X, P, labels, groups, args))
    if "specimen" in args.protocols:
        folds = GroupKFold(args.folds, shuffle=True, random_state=0).split(X, labels, groups)
        for i, (train, test) in enumerate(folds):
            results.append(evaluate(f"specimen fold {i + 1}/{args.folds}", train, test, X, P, labels, groups, args))
        specimen = [r for r in results if r["protocol"].startswith("specimen")]
        print("\nspecimen, all folds (mean top-1 / top-5 over folds):")
        for method in specimen[0]["methods"]:
            top1 = [r["methods"][method]["top1"] for r in specimen]
            top5 = [r["methods"][method]["top5"] for r in specimen]
            print(f"  {method:32s} {np.mean(top1):.3f} +- {np.std(top1, ddof=1):.3f}  top-5 {np.mean(top5):.3f}")
    print(f"\nwall time: {time.perf_counter() - start:.0f} s")
    if args.log:
        with open(args.log, "w") as fh:
            json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
