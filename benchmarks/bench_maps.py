"""Raman maps (issue 30): synthetic phase maps from held-out specimens' spectra, and the speed and
memory of ``ramanid map``.

    python benchmarks/bench_maps.py --model DIR [--size 40] [--maps 20] [--baseline model]  # accuracy
    python benchmarks/bench_maps.py --model DIR --speed [--side 100]         # pixels/s, 1 process and dask
    python benchmarks/bench_maps.py --model DIR --big [--side 1000] [--workers 2]  # peak RSS of a streamed map

``--model`` is an identifier trained on the references of the degradation protocol's split
(``bench_degradation.py --save DIR``). A synthetic map has 3-6 regions (the Voronoi cells of
random centres), each one held-out mineral; every pixel is a spectrum of a held-out specimen of
its region's mineral, pixels on a boundary are 50/50 mixtures of the two minerals, and every
pixel is degraded by ``--condition`` (any condition of the degradation protocol). Half of the
held-out specimens make validation maps, on which the neighbourhood step is chosen; the other half
make the test maps reported. A pixel is right when its phase is its region's mineral (either one
on a boundary). A map's regions are few specimens, so a figure moves in steps of a region: each is
given with a bootstrap 95% interval over the maps.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import RRUFF_ZIP, cpu_flags, held_out_spectra, machine

from ramanid.bundle import load_bundle
from ramanid.evaluation.degradation import Condition, conditions, degrade
from ramanid.io.rruff import read_rruff
from ramanid.maps import NEIGHBOURHOODS, MapData, MapOptions, majority_filter, map_answers, segment_phases, summary
from ramanid.preprocessing.resample import resample_spectrum
from ramanid.spectra import Spectrum

AXIS = np.linspace(100, 1400, 1100)


def synthetic_map(by_mineral: dict, size: int, rng, condition: Condition, index: int):
    """``(MapData, truth sets, true shares)`` of one synthetic map."""
    regions = int(rng.integers(3, 7))
    minerals = list(rng.choice(sorted(by_mineral), regions, replace=False))
    centres = rng.uniform(0, size, (regions, 2))
    y, x = np.divmod(np.arange(size * size), size)
    distance = np.hypot(x[:, None] + 0.5 - centres[None, :, 0], y[:, None] + 0.5 - centres[None, :, 1])
    order = np.argsort(distance, axis=1)
    first, second = order[:, 0], order[:, 1]
    boundary = distance[np.arange(len(x)), second] - distance[np.arange(len(x)), first] < 1.0
    rows, truth = [], []
    for p in range(len(x)):
        a = by_mineral[minerals[first[p]]]
        parts = [a[rng.integers(len(a))]]
        if boundary[p]:
            b = by_mineral[minerals[second[p]]]
            parts.append(b[rng.integers(len(b))])
        y_sum = sum(_scaled(s) for s in parts) / len(parts)
        measured = degrade(Spectrum(AXIS, y_sum, {}), condition, np.random.default_rng([index, p]))
        rows.append(resample_spectrum(measured.shifts, measured.intensities, AXIS))
        truth.append({minerals[first[p]], *([minerals[second[p]]] if boundary[p] else [])})
    shares = {m: float(np.mean(first == k)) for k, m in enumerate(minerals)}
    return (
        MapData(AXIS, np.array(rows), x.astype(float), y.astype(float), f"synthetic {index}", {"format": "map table"}),
        truth,
        shares,
    )


def _scaled(s: Spectrum) -> np.ndarray:
    y = resample_spectrum(s.shifts, s.intensities, AXIS)
    y = y - np.percentile(y, 1)
    return y / max(float(y.max()), 1e-12)


def scored(table, truth, shares) -> dict:
    phases = table["phase"].to_numpy()
    right = np.array([p in t for p, t in zip(phases, truth, strict=True)])
    found = summary(table).set_index("phase")["area_share"].to_dict()
    errors = [abs(found.get(m, 0.0) - s) for m, s in shares.items()]
    return {
        "pixel_accuracy": float(right.mean()),
        "share_error": float(np.mean(errors)),
        "unknown": float(np.mean(phases == "unknown")),
    }


def accuracy(args, bundle) -> None:
    spectra = held_out_spectra(bundle, args.fold, args.seed)
    specimens = sorted({s.meta["rruff_id"] for s in spectra})
    rng = np.random.default_rng(args.seed)
    validation_specimens = set(rng.permutation(specimens)[: len(specimens) // 2])
    by_name = {c.name: c for c in conditions()}
    if args.condition not in by_name:
        raise SystemExit(f"--condition {args.condition!r}: expected one of {sorted(by_name)}")
    condition = by_name[args.condition]
    results = {}
    for part in ("validation", "test"):
        by_mineral = {}
        for s in spectra:
            if (s.meta["rruff_id"] in validation_specimens) == (part == "validation"):
                by_mineral.setdefault(s.meta["mineral"], []).append(s)
        for k in range(args.maps):
            data, truth, shares = synthetic_map(by_mineral, args.size, rng, condition, 1000 * (part == "test") + k)
            start = time.perf_counter()
            options = MapOptions(fast_baseline=args.baseline == "fast")
            table = map_answers(bundle, data, options, progress=False)
            wall = time.perf_counter() - start
            majority = table.assign(phase=majority_filter(data, table))
            for neighbourhood, answered in (
                ("off", table),
                ("majority", majority),
                ("segments", majority.assign(phase=segment_phases(bundle, data, majority, options))),
            ):
                row = {**scored(answered, truth, shares), "pixels_per_s": len(data) / wall}
                results.setdefault((part, neighbourhood), []).append(row)
    chosen = max(NEIGHBOURHOODS, key=lambda n: np.mean([r["pixel_accuracy"] for r in results["validation", n]]))
    rows = []
    for (part, neighbourhood), found in results.items():
        per_map = [f["pixel_accuracy"] for f in found]
        row = {
            "maps": part,
            "neighbourhood": neighbourhood,
            **{k: float(np.mean([f[k] for f in found])) for k in found[0]},
            "pixel_accuracy_95": bootstrap_interval(per_map, args.seed),
        }
        rows.append(row)
        print(json.dumps(row))
    print(f"neighbourhood step chosen on the validation maps: {chosen}")
    if args.log:
        args.log.write_text(
            json.dumps(
                {"condition": args.condition, "baseline": args.baseline, "chosen": chosen, "rows": rows}, indent=1
            )
        )


#: bootstrap draws of the maps behind an interval
BOOTSTRAP = 2000


def bootstrap_interval(values, seed: int) -> list[float]:
    """The 2.5th and 97.5th percentiles of the mean of ``values`` resampled with replacement."""
    values = np.asarray(values, dtype=float)
    means = np.random.default_rng(seed).choice(values, (BOOTSTRAP, len(values))).mean(axis=1)
    return [round(float(q), 4) for q in np.percentile(means, [2.5, 97.5])]


def ramanid_map(model: Path, path: Path, axis: Path, out: Path, *extra: str) -> tuple[float, float, float, float]:
    """The wall time of ``ramanid map`` in its own process (start-up included), its mapping time
    (file to every pixel's answer, as it prints it), that process's peak RSS in GiB (its own,
    from ``wait4``: it counts this process's RSS at the fork), and the largest RSS any process it
    started reached (a dask worker's; sampled every 0.2 s; 0 when it started none).
    """
    start = time.perf_counter()
    command = [
        sys.executable,
        "-m",
        "ramanid.cli",
        "map",
        str(model),
        str(path),
        "--axis",
        str(axis),
        "--out",
        str(out),
    ]
    with tempfile.TemporaryFile() as said, tempfile.TemporaryFile() as errors:  # not pipes: they could fill
        child = subprocess.Popen([*command, *extra], stdout=said, stderr=errors)
        stop, descendants = threading.Event(), [0]
        sampler = threading.Thread(target=_largest_descendant, args=(child.pid, stop, descendants))
        sampler.start()
        _, status, usage = os.wait4(child.pid, 0)
        stop.set()
        sampler.join()
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode:
            errors.seek(0)
            raise RuntimeError(f"ramanid map failed ({child.returncode}): {errors.read()[-2000:].decode()}")
        said.seek(0)
        mapping = float(re.search(rb"pixels in ([0-9.]+) s", said.read()).group(1))
    return time.perf_counter() - start, mapping, usage.ru_maxrss / 2**20, descendants[0] / 2**30


def _largest_descendant(pid: int, stop: threading.Event, peak: list) -> None:
    """Keep in ``peak[0]`` the largest RSS (bytes) of any process below ``pid`` until ``stop``."""
    import psutil

    parent = psutil.Process(pid)
    while not stop.wait(0.2):
        try:
            for child in parent.children(recursive=True):
                peak[0] = max(peak[0], child.memory_info().rss)
        except psutil.Error:  # a process that ended between the listing and the reading
            continue


def speed(args, bundle) -> None:
    """File to pixels.csv for a ``--side`` x ``--side`` .npy map: ramanid map in one process (fast
    and model baselines) and on a local dask cluster of 2 workers, and per-spectrum predict on a
    sample, in one run.
    """
    spectra = read_rruff(RRUFF_ZIP, lambda m: m.get("kind") == "raw" and m.get("wavelength") == 532, jobs=1)[0][:300]
    rng = np.random.default_rng(0)
    rows = np.stack([resample_spectrum(s.shifts, s.intensities, AXIS) for s in spectra])
    n = args.side * args.side
    cube = rows[rng.integers(0, len(rows), n)] * rng.uniform(0.8, 1.2, (n, 1)) + rng.normal(0, 5, (n, len(AXIS)))
    with tempfile.TemporaryDirectory() as folder:
        path, axis = Path(folder) / "map.npy", Path(folder) / "axis.npy"
        np.save(path, cube.reshape(args.side, args.side, len(AXIS)).astype(np.float32))
        np.save(axis, AXIS)
        for label, extra in (
            ("1 process, fast baseline, a chunk per core (default)", []),
            ("1 process, fast baseline, one chunk at a time", ["--threads", "1"]),
            ("1 process, the model's arPLS", ["--baseline", "model"]),
            ("dask, 2 local workers, fast baseline", ["--workers", "2"]),
        ):
            wall, mapping, _, _ = ramanid_map(args.model, path, axis, Path(folder) / "out", *extra)
            print(
                f"{label}: {n} pixels in {wall:.1f} s = {n / wall:.0f} pixels/s whole run (start-up, model and "
                f"outputs included); mapping {mapping:.1f} s = {n / mapping:.0f} pixels/s"
            )
        files = []
        for i in range(200):
            file = Path(folder) / f"p{i}.csv"
            np.savetxt(file, np.column_stack([AXIS, cube[i]]), delimiter=",")
            files.append(str(file))
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "ramanid.cli", "predict", str(args.model), *files], check=True, capture_output=True
        )
        wall = time.perf_counter() - start
        print(f"per-spectrum predict: 200 files in {wall:.1f} s = {200 / wall:.0f} spectra/s (start-up included)")


def big(args) -> None:
    """A ``--side`` x ``--side`` map of 1024-point float32 spectra, streamed from an .npy file; the
    peak RSS of the ``ramanid map`` process. The file is written by another process, so that
    this one stays small (a child's peak RSS, as the kernel reports it, starts from its parent's).
    """
    with tempfile.TemporaryDirectory(dir=args.tmp) as folder:
        path, axis = Path(folder) / "big.npy", Path(folder) / "axis.npy"
        writer = [
            sys.executable,
            __file__,
            "--model",
            str(args.model),
            "--write-big",
            str(path),
            "--side",
            str(args.side),
        ]
        subprocess.run(writer, check=True)
        print(f"map file: {path.stat().st_size / 2**30:.2f} GiB")
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        extra = ["--workers", str(args.workers)] if args.workers else []
        wall, mapping, peak, worker = ramanid_map(args.model, path, axis, Path(folder) / "out", *extra)
        where = f"a local dask cluster of {args.workers} workers" if args.workers else "one process"
        print(
            f"{args.side}x{args.side} on {where}: {wall:.0f} s = {args.side**2 / wall:.0f} pixels/s whole run, mapping"
            f" {args.side**2 / mapping:.0f} pixels/s; peak RSS {peak:.2f} GiB (an upper bound: this process's peak"
            f" at the fork, {own:.2f} GiB, counts in it)"
            + (f"; largest worker {worker:.2f} GiB" if args.workers else "")
        )


def write_big(path: Path, side: int) -> None:
    """The big map's file (and its axis beside it), written row by row through a memory map."""
    spectra = read_rruff(RRUFF_ZIP, lambda m: m.get("kind") == "raw" and m.get("wavelength") == 532, jobs=1)[0][:200]
    axis = np.linspace(100, 1400, 1024)
    rows = np.stack([resample_spectrum(s.shifts, s.intensities, axis) for s in spectra]).astype(np.float32)
    cube = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(side, side, 1024))
    rng = np.random.default_rng(0)
    for r in range(side):
        cube[r] = rows[rng.integers(0, len(rows), side)] + rng.normal(0, 5, (side, 1024)).astype(np.float32)
    cube.flush()
    np.save(path.parent / "axis.npy", axis)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=40)
    parser.add_argument("--maps", type=int, default=20)
    parser.add_argument("--condition", default="microscope, good")
    parser.add_argument("--baseline", choices=["fast", "model"], default="fast", help="As ramanid map --baseline.")
    parser.add_argument("--speed", action="store_true")
    parser.add_argument("--side", type=int, default=None)
    parser.add_argument("--big", action="store_true")
    parser.add_argument("--workers", type=int, default=None, help="--big on a local dask cluster of N workers.")
    parser.add_argument("--tmp", default=None, help="Where the big map's file goes (it needs 4 GB).")
    parser.add_argument("--log", type=Path, default=None)
    parser.add_argument("--write-big", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write_big:
        write_big(args.write_big, args.side)
        return
    print(f"machine: {machine()}; cpu flags: {cpu_flags()}")
    if args.big:
        args.side = args.side or 1000
        big(args)
    elif args.speed:
        args.side = args.side or 100
        speed(args, load_bundle(args.model))
    else:
        accuracy(args, load_bundle(args.model))


if __name__ == "__main__":
    main()
