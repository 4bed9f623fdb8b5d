"""How a library identifier's calibration blocks should be keyed, judged on its own validation
specimens only (issue 24): by signal-to-noise bin alone, or also by the strength of the background.

    python benchmarks/bench_calibration_keys.py --model DIR

``--model`` is an identifier saved by ``bench_degradation.py --save DIR`` (same ``--fold`` and
``--seed``). Its validation spectra are degraded as ``train_identifier`` degrades them (the same
generator, so the same copies), the half that chose the per-bin spectral scores is set aside, and
the calibration half is split again by specimen: each half fits every key's temperatures, conformal
scores and unknown thresholds (as ``train_identifier`` sets them), the other is judged on them, per
condition of the degradation protocol (averaged over the two directions), for two draws of the
halves. Copies of minerals with no reference on another specimen play the unknown minerals. Then
what each block holds, keyed by the file's signal-to-noise bin alone and as a model keys them
(``ramanid.quality.calibration_keys``, kept). The keys are chosen by the worst condition's false
alarms and coverage, then the unknown minerals caught. No test query of the degradation protocol
is read.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import RRUFF_ZIP, cpu_flags, machine

from ramanid import confidence as conf
from ramanid.bundle import load_bundle
from ramanid.cli import IDENTIFIER_PREPROCESS
from ramanid.datasets.rruff import build_rruff
from ramanid.deploy import (
    IDENTIFIER_TEMPERATURE,
    MIN_PER_BIN,
    calibrate,
    degraded_validation,
    held_out_scores,
    unknown_threshold,
)
from ramanid.evaluation.degradation import measurable
from ramanid.evaluation.splits import specimen_holdout
from ramanid.preprocessing import steps_of
from ramanid.quality import KEYED_MIDDLE_BACKGROUND, SNR_BINS, calibration_keys
from ramanid.training.identifier import input_snr_bins


def calibration_copies(spectra, val, copies: int = 12, seed: int = 0):
    """The calibration half of ``train_identifier``'s degraded validation copies, with each copy's
    condition, background share, bin as read and calibration block."""
    rng = np.random.default_rng(seed)  # the draws of deploy._quality_calibration, in its order
    X, rows, quality, conditions, _ = degraded_validation(
        spectra, val, steps_of(spectra.info.get("preprocess", "minmax")), copies, rng, filter_edge=True
    )
    specimens = np.unique(spectra.meta["rruff_id"].astype(str), return_inverse=True)[1]
    held = np.unique(specimens[rows])
    calibrating = ~np.isin(specimens[rows], rng.permutation(held)[: len(held) // 2])
    background = np.array([q.background_share for q in quality])
    raw_bins = np.array([q.bin for q in quality])
    keys = calibration_keys(input_snr_bins(X), quality)  # as a model of this version keys them
    return (
        X[calibrating],
        rows[calibrating],
        conditions[calibrating],
        background[calibrating],
        raw_bins[calibrating],
        keys[calibrating],
        specimens,
    )


#: draws of the specimen halves that judge each keying (one draw moved the worst condition by 0.03)
HALVINGS = 2
#: the fewest known copies a block of one specimen half is fitted on: each half holds half the
#: calibration copies a model has, so a block falls back to the whole set where it would in the model
LEAST = MIN_PER_BIN // 2


def judged(keys, fit, test, scores, codes, known, conditions) -> dict:
    """Per condition of the ``test`` rows: (coverage of the 95% sets, false alarms, unknown caught,
    expected calibration error of the top-1)."""
    unknown_score, measured = 1 - scores.max(axis=1), measurable(conditions)
    whole, _ = calibrate(scores[fit], codes[fit], known[fit], IDENTIFIER_TEMPERATURE)
    whole_threshold = unknown_threshold(unknown_score[fit], known[fit], measured[fit], LEAST)
    covered = np.zeros(len(scores), dtype=bool)
    flagged = np.zeros(len(scores), dtype=bool)
    top = np.zeros(len(scores))
    fitted = {}  # a strong background's block with too few copies takes its bin's, as in the model
    for key in np.unique(keys):
        inside = fit & (keys == key)
        if (inside & known).sum() >= LEAST:
            block = calibrate(scores[inside], codes[inside], known[inside], IDENTIFIER_TEMPERATURE)[0]
            threshold = unknown_threshold(unknown_score[inside], known[inside], measured[inside], LEAST)
        else:
            block, threshold = fitted.get(key - len(SNR_BINS), (whole, whole_threshold))
        fitted[key] = block, threshold
        rows = np.flatnonzero(test & (keys == key))
        proba = conf.calibrated(scores[rows], block["temperature"])
        sets = conf.answer_sets(proba, conf.conformal_quantile(block["conformal_scores"], 0.95))
        covered[rows] = [codes[r] in s for r, s in zip(rows, sets, strict=True)]
        top[rows] = proba.max(axis=1)
        flagged[rows] = unknown_score[rows] > threshold
    right = np.argmax(scores, axis=1) == codes
    return {
        c: (
            covered[m & known].mean(),
            flagged[m & known].mean(),
            flagged[m & ~known].mean(),
            conf.top1_calibration_error(top[m & known], right[m & known]),
        )
        for c in sorted(set(conditions))
        if ((m := test & (conditions == c)) & known).sum() and (m & ~known).sum()
    }


class ScoredCopies(NamedTuple):
    """A saved identifier's calibration copies, scored against its library without their own specimen."""

    X: np.ndarray
    rows: np.ndarray
    conditions: np.ndarray
    background: np.ndarray
    raw_bins: np.ndarray
    keys: np.ndarray
    specimens: np.ndarray
    scores: np.ndarray
    known: np.ndarray
    codes: np.ndarray


def scored_copies(description: str) -> tuple[argparse.Namespace, ScoredCopies]:
    """The command line (``--model``, ``--fold``, ``--seed``) and the calibration copies of its model."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"machine: {machine()}; cpu flags: {cpu_flags()}")
    built = build_rruff(
        RRUFF_ZIP, wavelengths=None, kind="all", min_per_mineral=1, preprocess=IDENTIFIER_PREPROCESS
    ).spectra
    refs, _, _ = specimen_holdout(built.meta, args.fold, seed=args.seed)
    spectra, bundle = built.subset(refs), load_bundle(args.model)
    assert len(bundle.library) == len(refs), "--model was built on another split"
    identifier = bundle.estimator
    X, rows, conditions, background, raw_bins, keys, specimens = calibration_copies(
        spectra, np.asarray(bundle.info.validation["index"]), seed=args.seed
    )
    scores, known = held_out_scores(identifier, X, rows, specimens)
    codes = identifier.reference_class_[rows]
    return args, ScoredCopies(X, rows, conditions, background, raw_bins, keys, specimens, scores, known, codes)


def main() -> None:
    args, copies = scored_copies(__doc__.split("\n\n")[0])
    X, rows, conditions, background, raw_bins, model_keys, specimens, scores, known, codes = copies
    bins = input_snr_bins(X)
    keysets = {"signal-to-noise bin": bins}
    for cut in (0.5, 0.8, 0.9, 0.95):
        keysets[f"bin x background > {cut}"] = bins + len(SNR_BINS) * (background > cut)
    for high in (0.95, 0.98, 0.99):
        keysets[f"bin x background 0.8 / {high}"] = bins + len(SNR_BINS) * (
            (background > 0.8).astype(int) + (background > high)
        )
    keysets["signal-to-noise bin of the file as read"] = raw_bins
    for cut in (0.8, 0.9):
        strong = len(SNR_BINS) * (background > cut)
        keysets[f"bin of the file as read x background > {cut}"] = raw_bins + strong
        for low, high in ((0, 1), (1, 4), (2, 4), (3, 4), (2, 5), (3, 5)):
            within = (raw_bins >= low) & (raw_bins < high)
            span = f"SNR {SNR_BINS[low]:g}-{SNR_BINS[high] if high < len(SNR_BINS) else 'inf'}"
            keysets[f"... x background > {cut} at {span}"] = raw_bins + strong * within
    keysets[f"as a model keys them: {KEYED_MIDDLE_BACKGROUND} (kept)"] = model_keys
    owners = np.unique(specimens[rows])
    print(f"{len(X)} calibration copies, {int(known.sum())} of minerals with another reference")
    for draw in range(HALVINGS):
        rng = np.random.default_rng(args.seed + 5 + draw)
        half = np.isin(specimens[rows], rng.permutation(owners)[: len(owners) // 2])
        print(f"specimen halves, draw {draw + 1} of {HALVINGS}:")
        for name, keys in keysets.items():
            one = judged(keys, half, ~half, scores, codes, known, conditions)
            other = judged(keys, ~half, half, scores, codes, known, conditions)
            names = [c for c in one if c in other]
            mean = np.array([(np.array(one[c]) + np.array(other[c])) / 2 for c in names])
            off = np.abs(mean[:, 0] - 0.95)
            print(
                f"  {name:44s} coverage off 95%: mean {off.mean():.3f}, max {off.max():.3f} | false alarms: mean"
                f" {mean[:, 1].mean():.3f}, max {mean[:, 1].max():.3f} ({names[np.argmax(mean[:, 1])]},"
                f" {(mean[:, 1] > 0.1).sum()} over 10%) | unknown caught: mean {mean[:, 2].mean():.3f},"
                f" SNR 20 {mean[names.index('noise SNR 20'), 2]:.3f}"
                f" | ECE: mean {mean[:, 3].mean():.3f}, max {mean[:, 3].max():.3f} ({names[np.argmax(mean[:, 3])]})",
                flush=True,
            )
    for name, keys in (("the bin of the file as read", raw_bins), (f"{KEYED_MIDDLE_BACKGROUND} (kept)", model_keys)):
        print(f"blocks of {name}:")
        describe_blocks(keys, scores, codes, known, conditions)


def describe_blocks(keys, scores, codes, known, conditions) -> None:
    """What each block of ``keys`` holds: its known copies, their top-1, and its commonest conditions."""
    right = np.argmax(scores, axis=1) == codes
    for key in np.unique(keys):
        inside = (keys == key) & known
        if not inside.any():
            continue
        names, counts = np.unique(conditions[inside], return_counts=True)
        common = ", ".join(
            f"{names[i]} {counts[i] / inside.sum():.0%} (top-1 {right[inside & (conditions == names[i])].mean():.2f})"
            for i in np.argsort(-counts)[:5]
        )
        strong = " strong background" if key >= len(SNR_BINS) else ""
        print(
            f"block SNR {SNR_BINS[key % len(SNR_BINS)]:g}+{strong}: {int(inside.sum())} known,"
            f" top-1 {right[inside].mean():.2f}; {common}"
        )


if __name__ == "__main__":
    main()
