"""Read a user's spectrum files of any supported format: RRUFF .txt, two-column text/CSV, wide CSV,
a RRUFF zip, or a folder of them. Bad files are reported and skipped, never dropped silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from ramanid.errors import RamanIdError, SpectrumFormatError
from ramanid.io.rruff import Skipped, parse_rruff, read_rruff
from ramanid.io.tables import MAX_FILE_BYTES, read_two_column, read_wide_csv
from ramanid.spectra import Spectrum

SUFFIXES = {".txt", ".csv", ".tsv", ".dat", ".xy"}


def read_spectrum_files(paths: Iterable[str | Path]) -> tuple[list[Spectrum], list[Skipped]]:
    """Every spectrum in ``paths`` (files, folders, RRUFF zips), in order, and the files skipped."""
    spectra, skipped = [], []
    for path in map(Path, paths):
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix.lower() in SUFFIXES)
            if not files:
                skipped.append(Skipped(str(path), f"{path}: no spectrum files ({', '.join(sorted(SUFFIXES))})"))
            sub, bad = read_spectrum_files(files)
            spectra += sub
            skipped += bad
        elif path.suffix.lower() == ".zip":
            try:
                sub, bad = read_rruff(path)
            except RamanIdError as exc:
                sub, bad = [], [Skipped(str(path), str(exc))]
            if not sub and not bad:
                bad = [Skipped(str(path), f"{path}: no spectrum files (.txt) in the zip")]
            spectra += sub
            skipped += bad
        else:
            try:
                spectra += read_one(path)
            except RamanIdError as exc:
                skipped.append(Skipped(str(path), str(exc)))
    return spectra, skipped


def read_one(path: Path) -> list[Spectrum]:
    """The spectra in one file."""
    if not path.is_file():
        raise SpectrumFormatError(str(path), "no such file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise SpectrumFormatError(str(path), f"{path.stat().st_size:,} bytes: larger than any spectrum file")
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if head.lstrip().startswith(b"##"):
        return [parse_rruff(path.read_bytes(), str(path))]
    first = head.decode("latin-1").splitlines()[0] if head.strip() else ""
    if path.suffix.lower() == ".csv" and len(first.split(",")) > 3:
        table = read_wide_csv(path)
        return [
            Spectrum(table.shifts, row, {**record, "file": f"{path}[{i}]"})
            for i, (row, record) in enumerate(zip(table.intensities, table.meta.to_dict("records"), strict=False))
        ]
    return [read_two_column(path)]
