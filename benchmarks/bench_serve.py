"""Per-request time of ``ramanid serve`` with details (the web page's request), and how many times
each spectrum is prepared (resampled) and searched against the library in one request.

    python benchmarks/bench_serve.py --model identifier --files 20 --repeats 5

Runs whichever ramanid is on ``sys.path`` (run it once with ``PYTHONPATH=OLD_CHECKOUT/src`` to
time an older version on the same machine and model folder, and compare the two medians as a
ratio). The query files are 780 nm processed RRUFF spectra from the shared zip, written as
two-column CSV. Counting wraps ``resample_spectrum`` wherever ramanid imported it (one call per
spectrum per preparation) and the library searches: ``LibrarySearch.similarity`` and a library
identifier's ``similarity``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def query_files(folder: Path, count: int) -> list[Path]:
    from ramanid.io.rruff import read_rruff

    spectra, _ = read_rruff(
        SHARED / "rruff" / "excellent_unoriented.zip",
        lambda m: m.get("wavelength") == 780 and m.get("kind") == "processed",
        jobs=1,
    )
    paths = []
    for i, s in enumerate(spectra[::7][:count]):
        path = folder / f"query_{i:03d}.csv"
        np.savetxt(path, np.column_stack([s.shifts, s.intensities]), delimiter=",")
        paths.append(path)
    return paths


def count_calls() -> dict:
    """Wrap the preparation and search functions of whichever ramanid is loaded; returns the counters."""
    import importlib

    counts = {"prepared": 0, "searched": 0}

    def counting(function, key, rows):
        def wrapper(*args, **kwargs):
            counts[key] += rows(*args)
            return function(*args, **kwargs)

        return wrapper

    from ramanid.preprocessing import resample

    real = resample.resample_spectrum
    for name in ("ramanid.predict", "ramanid.bundle.inputs", "ramanid.serve", "ramanid.explain"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if getattr(module, "resample_spectrum", None) is real:
            module.resample_spectrum = counting(real, "prepared", lambda *a: 1)
    for name, cls in (("ramanid.search", "LibrarySearch"), ("ramanid.classical", "LibrarySearch")):
        try:
            owner = getattr(importlib.import_module(name), cls)
        except (ImportError, AttributeError):
            continue
        owner.similarity = counting(owner.similarity, "searched", lambda self, X, *a: len(X))
    from ramanid.training.identifier import LibraryIdentifier

    LibraryIdentifier.similarity = counting(LibraryIdentifier.similarity, "searched", lambda self, X, *a: len(X))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, type=Path, help="A model folder both versions read.")
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from starlette.testclient import TestClient

    import ramanid
    from ramanid.serve import create_app

    counts = count_calls()
    client = TestClient(create_app(args.model))
    with tempfile.TemporaryDirectory() as folder:
        paths = query_files(Path(folder), args.files)
        files = [("files", (p.name, p.read_bytes(), "text/csv")) for p in paths]
        assert client.post("/api/predict?details=1", files=files).status_code == 200  # warm up
        times = []
        for _ in range(args.repeats):
            counts.update(prepared=0, searched=0)
            start = time.perf_counter()
            answer = client.post("/api/predict?details=1", files=files)
            times.append(time.perf_counter() - start)
            assert answer.status_code == 200, answer.text
    median = statistics.median(times)
    print(f"ramanid {ramanid.__file__}")
    print(f"model {args.model}: one request of {args.files} files with details, {args.repeats} runs")
    print(f"per request: median {median * 1000:.0f} ms (min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f})")
    print(f"per file: {median / args.files * 1000:.1f} ms")
    print(
        f"per spectrum: prepared {counts['prepared'] / args.files:g} times, "
        f"searched against the library {counts['searched'] / args.files:g} times"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
