"""Reading instrument files: ramanid's readers against the format packages' own reads of the same
files, in the same run, as a ratio (target: at most 1.2x the package's time).

    python benchmarks/bench_formats.py --copies 1000 --repeats 3

For each single-spectrum binary format, a folder of ``--copies`` copies of one shared file is read
by ``ramanid.io.files.read_spectrum_files`` (content sniffing, the package's read, conversion to
Raman shift, metadata) and by the package alone (rosettasciio's ``file_reader``, spc-io, brukeropus;
for delimited text, ``pandas.read_csv`` told the separator and the comment mark);
then each shared map is read whole, as one block with its coordinates (``read_blocks``, what a
map is read with), and by the package. The minimum of ``--repeats`` runs is kept.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import shutil
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "formats"
SINGLE = {
    "Renishaw WiRE .wdf": "wire/sp.wdf",
    "Horiba LabSpec XML": "jobinyvon/jobinyvon_test_spec_3s_cm-1.xml",
    "TriVista .tvf (with --laser)": "trivista/spec_1s_1acc_1frame_average.tvf",
    "Galactic SPC": "spc/RAMAN.SPC",
    "Bruker OPUS (refused as infrared after reading)": "opus/test.0000",
    "Open Specy CSV (delimited text; pandas.read_csv)": "openspecy/raman_hdpe.csv",
    "LabSpec text, '#' header (delimited text; pandas.read_csv)": "labspec/LiNbWO6-0-H.txt",
}
MAPS = {
    "WiRE Streamline map, 49 x 45": "wire/Streamline.wdf",
    "WiRE map, 20 x 20": "renishaw/renishaw_test_map2.wdf",
    "WiRE line scan, 235": "wire/line.wdf",
    "TriVista map, 9 x 9 (with --laser)": "trivista/map.tvf",
    "LabSpec XML map, 3 x 2": "jobinyvon/jobinyvon_test_map_x3-y2.xml",
}


def package_reader(path: Path):
    """The format package's own read of one file."""
    suffix = path.suffix.lower()
    if suffix in (".wdf", ".xml", ".tvf"):
        import importlib

        module = {".wdf": "rsciio.renishaw", ".xml": "rsciio.jobinyvon", ".tvf": "rsciio.trivista"}[suffix]
        return importlib.import_module(module).file_reader(str(path))
    if suffix in (".csv", ".txt"):  # text: pandas told the separator and the header, which ramanid finds itself
        import pandas as pd

        return pd.read_csv(path, sep="," if suffix == ".csv" else "\t", comment="#", encoding="latin-1")
    if suffix == ".spc":
        from spc_io import SPC

        with open(path, "rb") as fh, contextlib.redirect_stdout(io.StringIO()):
            return [(s.xarray, s.yarray) for s in SPC.from_bytes_io(fh)]
    from brukeropus import read_opus

    opus = read_opus(str(path))
    return [getattr(opus, k).y for k in opus.data_keys]


def ramanid_reader(path: Path):
    """What ``predict`` reads a file with: its spectra, each with its metadata."""
    from ramanid.io.files import read_spectrum_files

    return read_spectrum_files([path], laser_nm=785.0)


def ramanid_blocks(path: Path):
    """What a map is read with: one block of every pixel on one axis, with its coordinates."""
    from ramanid.io.files import read_blocks

    return read_blocks(path, laser_nm=785.0)


def timed(function, paths: list[Path], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for path in paths:
            function(path)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("rsciio").setLevel(logging.ERROR)
    for path in (SHARED / p for p in [*SINGLE.values(), *MAPS.values()]):  # warm every import once
        package_reader(path)
        ramanid_reader(path)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, relative in SINGLE.items():
            source = SHARED / relative
            copies = []
            for i in range(args.copies):
                copy = Path(folder) / f"{i:04d}{source.suffix}"
                shutil.copyfile(source, copy)
                copies.append(copy)
            package = timed(package_reader, copies, args.repeats)
            ours = timed(ramanid_reader, copies, args.repeats)
            rows.append((f"{args.copies} x {name}", package, ours))
            for copy in copies:
                copy.unlink()
    for name, relative in MAPS.items():
        path = [SHARED / relative]
        rows.append(
            (name, timed(package_reader, path, args.repeats * 3), timed(ramanid_blocks, path, args.repeats * 3))
        )
    print(f"{'what':58s} {'package':>10s} {'ramanid':>10s} {'ratio':>7s}")
    for name, package, ours in rows:
        print(f"{name:58s} {package * 1000:8.1f}ms {ours * 1000:8.1f}ms {ours / package:6.2f}x")


if __name__ == "__main__":
    main()
