"""Building the full-library identifier, and using it: latency of one spectrum, a folder of 1,000
files, bundle size (issue 10).

    python benchmarks/bench_identifier_speed.py [--epochs 60] [--out /tmp/identifier] [--skip-build]

The build is `ramanid library build --source ZIP --out DIR` (all lasers, raw and processed, every
mineral). Latency: one spectrum file already read, through `predict_spectra` (resampling,
preprocessing, embedding, scoring against every reference), in a warm process, median of 200.
Throughput: 1,000 two-column CSV files in a folder, read and identified, as `ramanid predict DIR
FOLDER` does. Beside it, in the same process: the identifier's own scoring of one preprocessed
spectrum (spectral score, embedding, both against every reference), against plain cosine search
of the same library, as a ratio (the machines are shared and noisy).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from click.testing import CliRunner

sys.path.insert(0, os.path.dirname(__file__))
from _common import RRUFF_ZIP, cpu_flags, machine

from ramanid.bundle import load_bundle
from ramanid.cli import main as cli
from ramanid.io.files import read_spectrum_files
from ramanid.io.rruff import read_rruff
from ramanid.predict import predict_spectra
from ramanid.search import unit_rows


def wall_ms(run, inputs) -> np.ndarray:
    """Wall time of ``run(x)`` for each of ``inputs``, in milliseconds."""
    times = []
    for x in inputs:
        tick = time.perf_counter()
        run(x)
        times.append(time.perf_counter() - tick)
    return 1e3 * np.array(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "ramanid-identifier"))
    parser.add_argument("--skip-build", action="store_true", help="Measure the identifier already in --out.")
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(f"machine: {machine()}, torch {torch.__version__}\ncpu: {cpu_flags()}")
    if not args.skip_build:
        start = time.perf_counter()
        result = CliRunner().invoke(
            cli, ["library", "build", "--source", str(RRUFF_ZIP), "--epochs", str(args.epochs), "--out", args.out]
        )
        build_s = time.perf_counter() - start
        assert result.exit_code == 0, result.output
        print(next(line for line in result.output.splitlines() if line.startswith("trained on")))
        print(f"build, all of RRUFF, 2 cores: {build_s:.0f} s ({build_s / 60:.1f} min)")
    size = sum(p.stat().st_size for p in Path(args.out).iterdir())
    print(f"bundle size: {size / 2**20:.1f} MB ({', '.join(p.name for p in sorted(Path(args.out).iterdir()))})")

    bundle = load_bundle(args.out)
    spectra, _ = read_rruff(RRUFF_ZIP, lambda m: m.get("wavelength") == 785 and m.get("kind") == "raw")
    predict_spectra(bundle, spectra[:2])  # warm: the identifier's reference embeddings are computed once
    times = wall_ms(lambda s: predict_spectra(bundle, [s]), spectra[:200])
    print(
        f"latency, one spectrum against {len(bundle.library)} references: median {np.median(times):.1f} ms, "
        f"95th percentile {np.quantile(times, 0.95):.1f} ms"
    )
    identifier, query = bundle.estimator, bundle.library[:1]
    scoring = np.median(wall_ms(lambda _: identifier.similarity(query), range(200)))
    cosine = np.median(wall_ms(lambda _: unit_rows(query) @ identifier.unit_spectra_.T, range(200)))
    print(
        f"scoring one preprocessed spectrum: identifier {scoring:.2f} ms, plain cosine search {cosine:.2f} ms "
        f"(ratio {scoring / cosine:.1f})"
    )

    with tempfile.TemporaryDirectory() as folder:
        for i in range(1000):
            s = spectra[i % len(spectra)]
            np.savetxt(
                Path(folder) / f"spectrum_{i:04d}.csv",
                np.column_stack([s.shifts, s.intensities]),
                delimiter=",",
                fmt="%.4f",
            )
        tick = time.perf_counter()
        files, skipped = read_spectrum_files([folder])
        answers, refused = predict_spectra(bundle, files)
        took = time.perf_counter() - tick
    print(
        f"folder of 1,000 files: {took:.1f} s ({1000 / took:.0f} files/s); {len(answers)} answered, "
        f"{len(skipped) + len(refused)} skipped"
    )


if __name__ == "__main__":
    main()
