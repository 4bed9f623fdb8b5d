"""Which objective a calibration block's temperature should be fitted by, judged on a library
identifier's own validation specimens only (issue 24): the likelihood (Guo et al. 2017), the Brier
score, or the top-1 calibration error itself.

    python benchmarks/bench_temperature.py --model DIR [--fold F]

``--model`` is an identifier saved by ``bench_degradation.py --save DIR`` (same ``--fold`` and
``--seed``). Its calibration copies are those of ``bench_calibration_keys.py`` (the degraded
validation spectra ``train_identifier`` calibrated on, in its blocks); they are split by
specimen, each half fits every block's temperature by each objective and the other half is
judged on it: the top-1 calibration error (ECE) and the mean confidence less the accuracy, over
the whole half, per block and per condition of the degradation protocol with at least 100 copies
(ECE of fewer reads high by chance), averaged over the two directions. No test query of the degradation protocol is read.
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from bench_calibration_keys import scored_copies

from ramanid import confidence as conf
from ramanid.deploy import MIN_PER_BIN


def fit_temperature_ece(logits: np.ndarray, y: np.ndarray, steps: int = 49) -> float:
    """The temperature, on a grid of ``steps`` over 1e-3 to 1e2, with the smallest top-1 calibration error."""
    correct = np.argmax(logits, axis=1) == y
    grid = np.logspace(-3, 2, steps)
    errors = [conf.top1_calibration_error(conf.calibrated(logits, t).max(axis=1), correct) for t in grid]
    return float(grid[int(np.argmin(errors))])


OBJECTIVES = {"likelihood": conf.fit_temperature, "brier": conf.fit_temperature_brier, "ece": fit_temperature_ece}


def main() -> None:
    args, copies = scored_copies(__doc__.split("\n\n")[0])
    known, rows, specimens = copies.known, copies.rows, copies.specimens
    scores, codes, conditions = copies.scores[known], copies.codes[known], copies.conditions[known]
    keys = copies.keys[known]  # the blocks of ramanid.quality.calibration_keys
    owners = specimens[rows][known]
    held = np.unique(owners)
    half = np.isin(owners, np.random.default_rng(args.seed + 5).permutation(held)[: len(held) // 2])
    print(f"{len(scores)} calibration copies of minerals with another reference")
    for name, fit in OBJECTIVES.items():
        errors = [per_condition(fit, keys, a, ~a, scores, codes, conditions) for a in (half, ~half)]
        shared = sorted(set(errors[0]) & set(errors[1]))
        ece = {c: (np.array(errors[0][c]) + np.array(errors[1][c])) / 2 for c in shared}
        print(f"{name}: ECE (mean confidence - accuracy) of groups of at least 100 judged copies", flush=True)
        print("   " + "; ".join(f"{c} {e:.3f} ({gap:+.3f})" for c, (e, gap) in ece.items()))


def per_condition(fit, keys, fitting, judging, scores, codes, conditions) -> dict:
    """The top-1 ECE per condition of the ``judging`` rows, each block's temperature fitted by
    ``fit`` on its ``fitting`` rows (a block with too few takes the whole half's).
    """
    whole = fit(scores[fitting], codes[fitting])
    confidence, correct = np.zeros(len(scores)), np.argmax(scores, axis=1) == codes
    for key in np.unique(keys):
        inside = fitting & (keys == key)
        temperature = fit(scores[inside], codes[inside]) if inside.sum() >= MIN_PER_BIN else whole
        judged = judging & (keys == key)
        confidence[judged] = conf.calibrated(scores[judged], temperature).max(axis=1)
    groups = {"all": judging} | {f"block {k}": judging & (keys == k) for k in np.unique(keys)}
    groups |= {c: judging & (conditions == c) for c in sorted(set(conditions))}
    return {
        name: (conf.top1_calibration_error(confidence[m], correct[m]), confidence[m].mean() - correct[m].mean())
        for name, m in groups.items()
        if m.sum() >= 100
    }


if __name__ == "__main__":
    main()
