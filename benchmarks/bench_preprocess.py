"""The ``robust`` preset on 5,000 real raw RRUFF spectra on 1024 points.

    python benchmarks/bench_preprocess.py

Compares, in the same run: ramanid's pipeline with 1 and 2 worker processes, and a plain loop
that calls the libraries once per spectrum (Whitaker-Hayes despike, pybaselines' arpls
function, scipy's savgol_filter, L2 norm).
"""

from __future__ import annotations

import os
import sys

import numpy as np
from pybaselines.whittaker import arpls
from scipy.signal import savgol_filter

sys.path.insert(0, os.path.dirname(__file__))
from _common import RRUFF_ZIP, machine, timer  # noqa: E402

from ramanid.datasets.rruff import build_rruff  # noqa: E402
from ramanid.preprocessing import Despike, pipeline_from_spec  # noqa: E402


def plain_loop(X, shifts):
    out = np.empty_like(X)
    despike = Despike()
    for i, row in enumerate(X):
        row = despike.fit_transform(row[None])[0]
        row = row - arpls(row, x_data=shifts)[0]
        row = savgol_filter(row, 11, 3, mode="interp")
        out[i] = row / np.linalg.norm(row)
    return out


def main():
    raw = build_rruff(RRUFF_ZIP, wavelengths=None, kind="raw", min_per_mineral=1, preprocess="max").spectra
    X = raw.intensities[:5000].astype(np.float64)
    t: dict[str, float] = {}
    with timer(t, "loop"):
        expected = plain_loop(X, raw.shifts)
    for jobs in (1, 2):
        pipeline = pipeline_from_spec("robust", raw.shifts, n_jobs=jobs)
        with timer(t, f"ramanid_{jobs}"):
            out = pipeline.fit_transform(X)
        np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-9)
    n = len(X)
    print(f"machine: {machine()}")
    print(f"spectra: {n} raw RRUFF spectra, {X.shape[1]} points")
    print(f"plain per-spectrum loop:        {t['loop']:6.1f} s  {n / t['loop']:7.0f} spectra/s")
    for jobs in (1, 2):
        s = t[f"ramanid_{jobs}"]
        print(
            f"ramanid robust, {jobs} process(es): {s:6.1f} s  {n / s:7.0f} spectra/s  ({t['loop'] / s:.2f}x the loop)"
        )


if __name__ == "__main__":
    main()
