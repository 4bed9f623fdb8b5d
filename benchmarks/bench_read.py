"""Reading and building RRUFF: time against the decompression floor and a naive parser.

    python benchmarks/bench_read.py

Prints, for the 11,080 files of the shared zip: the floor (decompressing the members only,
serial and with 2 processes), ramanid's read-and-parse (1 and 2 processes), a naive
per-line ``float()`` reader, the default 780 nm build, and the peak memory of builds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from concurrent.futures import ProcessPoolExecutor

sys.path.insert(0, os.path.dirname(__file__))
from _common import RRUFF_ZIP, machine, timer  # noqa: E402

from ramanid.datasets.rruff import build_rruff  # noqa: E402
from ramanid.io.rruff import read_rruff  # noqa: E402


def decompress(names):
    with zipfile.ZipFile(RRUFF_ZIP) as zf:
        return sum(len(zf.read(n)) for n in names)


def naive(names):
    """What one writes first: decode, split lines, float() each field."""
    count = 0
    with zipfile.ZipFile(RRUFF_ZIP) as zf:
        for name in names:
            xs, ys = [], []
            for line in zf.read(name).decode("utf-8", "replace").splitlines():
                if line.startswith("##") or not line.strip():
                    continue
                try:
                    x, y = line.split(",")
                    xs.append(float(x))
                    ys.append(float(y))
                except ValueError:
                    pass
            count += len(xs)
    return count


def peak_rss_mb(args):
    """Peak resident memory (MB) of a ``ramanid build`` run: (main process, largest worker).

    Call it before this process grows: Linux carries the peak RSS across fork and exec.
    """
    code = (
        "import resource, sys; from ramanid.cli import main; sys.argv = ['ramanid'] + sys.argv[1:]\n"
        "try:\n main()\nexcept SystemExit: pass\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,"
        " resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, file=sys.stderr)"
    )
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return tuple(float(v) for v in out.stderr.strip().splitlines()[-1].split())


def main():
    with tempfile.TemporaryDirectory() as tmp:
        rss_default = peak_rss_mb(["build", "rruff", "--source", str(RRUFF_ZIP), "--out", f"{tmp}/a.npz"])
        rss_all = peak_rss_mb(
            [
                "build",
                "rruff",
                "--source",
                str(RRUFF_ZIP),
                "--wavelength",
                "all",
                "--kind",
                "all",
                "--min-per-mineral",
                "1",
                "--out",
                f"{tmp}/b.npz",
            ]
        )
    names = sorted(zipfile.ZipFile(RRUFF_ZIP).namelist())
    t: dict[str, float] = {}
    with timer(t, "floor_1"):
        decompress(names)
    with timer(t, "floor_2"), ProcessPoolExecutor(2) as pool:
        list(pool.map(decompress, [names[i::16] for i in range(16)]))
    with timer(t, "ramanid_1"):
        spectra, skipped = read_rruff(RRUFF_ZIP, jobs=1)
    assert len(spectra) == len(names) and not skipped
    del spectra
    with timer(t, "ramanid_2"):
        spectra, _ = read_rruff(RRUFF_ZIP, jobs=2)
    del spectra
    with timer(t, "naive_1"):
        naive(names)
    with timer(t, "build_780"):
        build_rruff(RRUFF_ZIP)
    print(f"machine: {machine()}")
    print(f"files: {len(names)}")
    print(f"floor, decompress only, 1 process:  {t['floor_1']:6.1f} s")
    print(f"floor, decompress only, 2 processes: {t['floor_2']:6.1f} s")
    print(
        f"ramanid read+parse, 1 process:      {t['ramanid_1']:6.1f} s  ({t['ramanid_1'] / t['floor_1']:.2f}x the 1-process floor)"
    )
    print(
        f"ramanid read+parse, 2 processes:    {t['ramanid_2']:6.1f} s  ({t['ramanid_2'] / t['floor_2']:.2f}x the 2-process floor, "
        f"{t['ramanid_2'] / t['floor_1']:.2f}x the 1-process floor)"
    )
    print(
        f"naive float() loop, 1 process:      {t['naive_1']:6.1f} s  (ramanid 2 processes is {t['naive_1'] / t['ramanid_2']:.1f}x faster)"
    )
    print(f"default 780 nm build (in process):  {t['build_780']:6.1f} s")
    print(
        f"peak RSS, default build:            {rss_default[0]:6.0f} MB main process, {rss_default[1]:.0f} MB largest worker"
    )
    print(f"peak RSS, all 11,080 files built:   {rss_all[0]:6.0f} MB main process, {rss_all[1]:.0f} MB largest worker")


if __name__ == "__main__":
    main()
