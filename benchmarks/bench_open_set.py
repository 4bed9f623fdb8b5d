"""Minerals absent from training: unknown scores, calibrated probabilities and conformal answer sets
(issue 11).

    python benchmarks/bench_open_set.py [--repeats 3] [--models classifier identifier]

Protocol, per repeat (seeded): 20% of the minerals are held out whole ("unknown"). The spectra of
the other minerals are split by specimen (RRUFF id): 80% train, 20% test ("known"; test spectra
of a mineral left without training spectra are dropped). The model trains on the train part; its
own validation split (held-out specimens of the train part) is the only data used to choose
anything: the temperature, the conformal thresholds, and each unknown score's operating
threshold (the score that 95% of known validation spectra stay below). Test: known test spectra
against every spectrum of the unknown minerals.

Models: ``classifier``, RamanNet on the default element-reference set (780 nm processed, 1024
points, min-max; 325 minerals); ``identifier``, the library identifier on all of RRUFF (despike,
arPLS, min-max; 1,797 minerals), whose logits are its class scores.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.model_selection import GroupShuffleSplit

sys.path.insert(0, os.path.dirname(__file__))
from _common import RRUFF_ZIP, cpu_flags, machine

from ramanid import confidence as conf
from ramanid.datasets.rruff import build_rruff
from ramanid.search import LibrarySearch
from ramanid.training.estimators import SpectrumClassifier
from ramanid.training.identifier import LibraryIdentifier

CONFIDENCES = (0.9, 0.95)


def split(labels, groups, seed, share=0.2):
    rng = np.random.default_rng(seed)
    minerals = np.unique(labels)
    unknown = rng.choice(minerals, size=round(share * len(minerals)), replace=False)
    known = np.flatnonzero(~np.isin(labels, unknown))
    train, test = next(GroupShuffleSplit(1, test_size=0.2, random_state=seed).split(known, groups=groups[known]))
    train, test = known[train], known[test]
    test = test[np.isin(labels[test], labels[train])]
    return train, test, np.flatnonzero(np.isin(labels, unknown))


def open_set_row(val_scores, known_scores, unknown_scores, known_correct) -> dict:
    truth = np.r_[np.zeros(len(known_scores)), np.ones(len(unknown_scores))]
    scores = np.r_[known_scores, unknown_scores]
    fpr, tpr, _ = roc_curve(truth, scores)
    threshold = np.quantile(val_scores, 0.95)  # 95% of known validation spectra accepted
    accepted = known_scores <= threshold
    return {
        "auroc": roc_auc_score(truth, scores),
        "fpr_at_95tpr": float(fpr[np.searchsorted(tpr, 0.95)]),
        "caught": float(np.mean(unknown_scores > threshold)),
        "false_alarms": float(np.mean(~accepted)),
        "accepted_accuracy": float(np.mean(known_correct[accepted])) if accepted.any() else float("nan"),
    }


def classifier_case(data, labels, groups, train, test, unknown, args):
    """RamanNet: logits, embeddings, library similarity; validation = its held-out specimens."""
    model = SpectrumClassifier(epochs=args.epochs, random_state=0).fit(data[train], labels[train], groups=groups[train])
    val = train[model.validation_index_]
    fit_rows = np.setdiff1d(train, val)
    logits = {name: model.logits(data[rows]) for name, rows in (("val", val), ("known", test), ("unknown", unknown))}
    embed = {name: model.transform(data[rows]) for name, rows in (("val", val), ("known", test), ("unknown", unknown))}
    ref_embed = model.transform(data[fit_rows])
    library = LibrarySearch("cosine").fit(data[fit_rows], labels[fit_rows])
    cosine = {
        name: 1 - library.similarity(data[rows]).max(axis=1)
        for name, rows in (("val", val), ("known", test), ("unknown", unknown))
    }
    scores = {
        "library cosine (today's similarity)": cosine,
        "max softmax (today's confidence)": {k: conf.msp_unknown(v) for k, v in logits.items()},
        "max logit": {k: conf.max_logit_unknown(v) for k, v in logits.items()},
        "energy": {k: conf.energy_unknown(v) for k, v in logits.items()},
        "nearest embedding (k=1)": {k: conf.nearest_unknown(v, ref_embed) for k, v in embed.items()},
        "class prototype": {k: conf.prototype_unknown(v, ref_embed, labels[fit_rows]) for k, v in embed.items()},
        "Mahalanobis": {k: conf.mahalanobis_unknown(v, ref_embed, labels[fit_rows]) for k, v in embed.items()},
    }
    classes = list(model.classes_)
    index = {c: i for i, c in enumerate(classes)}
    y = {"val": np.array([index[c] for c in labels[val]]), "known": np.array([index[c] for c in labels[test]])}
    return scores, logits, y, np.isin(labels[val], labels[fit_rows])


def identifier_case(data, labels, groups, train, test, unknown, args):
    """The library identifier: its class scores are the logits."""
    model = LibraryIdentifier(epochs=args.epochs, random_state=0).fit(data[train], labels[train], groups=groups[train])
    val_local = model.validation_index_
    val = train[val_local]
    rest = np.setdiff1d(np.arange(len(train)), val_local)
    classes = list(model.classes_)
    index = {c: i for i, c in enumerate(classes)}
    logits = {
        "val": model.best_per_class(model.similarity(data[val], references=rest), model.reference_class_[rest]),
        "known": model.class_scores(data[test]),
        "unknown": model.class_scores(data[unknown]),
    }
    logits["val"][~np.isfinite(logits["val"])] = -1.0  # classes with no training reference
    embed = {"val": model.embed(data[val]), "known": model.embed(data[test]), "unknown": model.embed(data[unknown])}
    library = LibrarySearch("cosine").fit(data[train], labels[train])
    scores = {
        "best identifier score": {k: -v.max(axis=1) for k, v in logits.items()},
        "library cosine": {
            "val": 1 - library.similarity(data[val])[:, rest].max(axis=1),  # not against themselves
            **{
                k: 1 - library.similarity(data[rows]).max(axis=1) for k, rows in (("known", test), ("unknown", unknown))
            },
        },
        "nearest embedding (k=1)": {
            k: conf.nearest_unknown(v, model.unit_embeddings_[rest if k == "val" else slice(None)])
            for k, v in embed.items()
        },
    }
    y = {"val": np.array([index[c] for c in labels[val]]), "known": np.array([index[c] for c in labels[test]])}
    return scores, logits, y, np.isin(labels[val], labels[train[rest]])


def evaluate(case, built, repeats, args):
    data = built.intensities
    labels = built.meta["mineral"].astype(str).to_numpy()
    groups = built.meta["rruff_id"].astype(str).to_numpy()
    rows = []
    for seed in range(repeats):
        train, test, unknown = split(labels, groups, seed)
        start = time.perf_counter()
        scores, logits, y, known_val = case(data, labels, groups, train, test, unknown, args)
        correct = np.argmax(logits["known"], axis=1) == y["known"]
        row = {
            "seed": seed,
            "train": len(train),
            "known": len(test),
            "unknown": len(unknown),
            "top1_known": float(correct.mean()),
            "wall_s": time.perf_counter() - start,
            "scores": {},
        }
        for name, s in scores.items():
            row["scores"][name] = open_set_row(s["val"][known_val], s["known"], s["unknown"], correct)
        # chosen as predict chooses it: the score best telling validation spectra of minerals the
        # network did not train on from the others, at its validation threshold
        chosen, _, _ = conf.choose_unknown_score({k: v["val"] for k, v in scores.items()}, ~known_val)
        row["scores"]["chosen on validation"], row["chosen"] = row["scores"][chosen], chosen
        row["val_unknown"] = int((~known_val).sum())
        logits["val"], y["val"] = logits["val"][known_val], y["val"][known_val]
        temperature = conf.fit_temperature(logits["val"], y["val"])
        raw, scaled = conf.calibrated(logits["known"], 1.0), conf.calibrated(logits["known"], temperature)
        row["temperature"] = temperature
        row["ece_before"] = conf.expected_calibration_error(raw, y["known"])
        row["ece_after"] = conf.expected_calibration_error(scaled, y["known"])
        calibration = conf.conformity_scores(conf.calibrated(logits["val"], temperature), y["val"])
        for level in CONFIDENCES:
            sets = conf.answer_sets(scaled, conf.conformal_quantile(calibration, level))
            row[f"coverage_{level}"] = float(np.mean([y["known"][i] in s for i, s in enumerate(sets)]))
            row[f"set_size_{level}"] = float(np.mean([len(s) for s in sets]))
        rows.append(row)
        print(
            f"  repeat {seed}: {len(train)} train, {len(test)} known test, {len(unknown)} unknown spectra; "
            f"known top-1 {row['top1_known']:.3f}; {row['wall_s']:.0f} s",
            flush=True,
        )
    return rows


def report(name, rows):
    def mean_sd(values):
        return f"{np.mean(values):.3f} ± {np.std(values, ddof=1) if len(values) > 1 else 0:.3f}"

    print(f"\n{name} ({len(rows)} repeats; mean ± sd over repeats, ddof=1)")
    print(
        f"  {'unknown score':38s} {'AUROC':>14s} {'FPR@95%TPR':>14s} {'caught':>14s} {'false alarms':>14s} "
        f"{'accepted top-1':>14s}"
    )
    for score in rows[0]["scores"]:
        cells = [
            mean_sd([r["scores"][score][k] for r in rows])
            for k in ("auroc", "fpr_at_95tpr", "caught", "false_alarms", "accepted_accuracy")
        ]
        print(f"  {score:38s} " + " ".join(f"{c:>14s}" for c in cells))
    print(
        f"  chosen on validation, per repeat: {[r['chosen'] for r in rows]} (validation spectra of minerals "
        f"left out of training: {[r['val_unknown'] for r in rows]})"
    )
    print(
        f"  known top-1 {mean_sd([r['top1_known'] for r in rows])}; temperature "
        f"{mean_sd([r['temperature'] for r in rows])}"
    )
    print(
        f"  ECE of top-1: before {mean_sd([r['ece_before'] for r in rows])}, "
        f"after temperature scaling {mean_sd([r['ece_after'] for r in rows])}"
    )
    for level in CONFIDENCES:
        print(
            f"  conformal (LAC) at {level:.0%}: coverage {mean_sd([r[f'coverage_{level}'] for r in rows])}, "
            f"average set size {mean_sd([r[f'set_size_{level}'] for r in rows])}"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--models", nargs="+", default=["classifier", "identifier"])
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(f"machine: {machine()}, torch {torch.__version__}\ncpu: {cpu_flags()}")
    start = time.perf_counter()
    if "classifier" in args.models:
        built = build_rruff(RRUFF_ZIP).spectra
        print(f"\nclassifier: RamanNet on {len(built)} spectra of {built.meta['mineral'].nunique()} minerals (780 nm)")
        report("classifier (RamanNet, 780 nm set)", evaluate(classifier_case, built, args.repeats, args))
    if "identifier" in args.models:
        built = build_rruff(
            RRUFF_ZIP, wavelengths=None, kind="all", min_per_mineral=1, preprocess="despike, arpls, minmax"
        ).spectra
        print(f"\nidentifier on {len(built)} spectra of {built.meta['mineral'].nunique()} minerals (all of RRUFF)")
        report("library identifier (all of RRUFF)", evaluate(identifier_case, built, args.repeats, args))
    print(f"\nwall time: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
