"""A map on the web page: the time of ``POST /api/map`` (upload, read, every pixel, summary) and
of one ``POST /api/map/pixel``, for a synthetic map written as wide CSV with x and y columns.

    python benchmarks/bench_page_map.py --model DIR [--side 40]

The map's pixels are six 780 nm processed RRUFF spectra of the shared zip in bands of columns,
with 1% noise. Maps up to ``serve.FULL_BASELINE_PIXELS`` pixels get the model's own baseline
removal, larger ones the one-pass baseline; the answer says which.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import RRUFF_ZIP, cpu_flags, machine


def map_csv(side: int) -> bytes:
    from ramanid.io.rruff import read_rruff
    from ramanid.preprocessing.resample import resample_spectrum

    spectra, _ = read_rruff(RRUFF_ZIP, lambda m: m.get("wavelength") == 780 and m.get("kind") == "processed", jobs=1)
    axis = np.linspace(100, 1400, 1024)
    rows = np.array([resample_spectrum(s.shifts, s.intensities, axis) for s in spectra[:6]])
    rng = np.random.default_rng(0)
    lines = ["x,y," + ",".join(f"{v:.2f}" for v in axis)]
    for i in range(side * side):
        y = rows[(i % side) * 6 // side] + rng.normal(0, 0.01 * rows.max(), 1024)
        lines.append(f"{i % side},{i // side}," + ",".join(f"{v:.4g}" for v in y))
    return ("\n".join(lines) + "\n").encode()


def main() -> None:
    from starlette.testclient import TestClient

    from ramanid.serve import Limits, create_app

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--side", type=int, default=40)
    args = parser.parse_args()
    data = map_csv(args.side)
    print(f"# {machine()}; {cpu_flags()}")
    with TestClient(create_app(args.model, Limits(timeout_s=600)), base_url="http://127.0.0.1") as client:
        start = time.perf_counter()
        mapped = client.post("/api/map", files=[("map", ("map.csv", data))])
        seconds = time.perf_counter() - start
        body = mapped.json()
        print(
            f"{args.side} x {args.side} map, {len(data) / 2**20:.1f} MB CSV: HTTP {mapped.status_code} in {seconds:.1f} s, "
            f"baseline {body.get('baseline')}, {len(body.get('phase', []))} pixels, {len(mapped.content) // 1024} KB"
        )
        start = time.perf_counter()
        pixel = client.post(f"/api/map/pixel?token={body['token']}&pixel=7")
        print(f"a pixel's card: HTTP {pixel.status_code} in {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
