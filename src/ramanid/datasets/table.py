"""A user's own labelled spectra as a SpectraSet: a wide CSV, a folder of spectrum files (every
format :mod:`ramanid.io.files` reads) with a sheet of labels, or a ``.npy`` matrix with its axis.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ramanid.errors import DatasetError
from ramanid.io.calibration import AxisCorrection
from ramanid.io.files import SUFFIXES, read_spectrum_files
from ramanid.io.tables import read_npy, read_wide_csv
from ramanid.preprocessing.grid import AutoGrid, Grid, parse_grid
from ramanid.preprocessing.resample import coverage, resample_spectrum
from ramanid.spectra import SpectraSet

WIDE = (".csv", ".tsv", ".csv.gz", ".tsv.gz")


def build_table(
    source: str | Path,
    *,
    label: str | None = None,
    group: str | None = None,
    labels: str | Path | None = None,
    axis: str | Path | None = None,
    grid: str | Grid | AutoGrid | None = None,
    method: str = "linear",
    laser_nm: float | None = None,
    calibration: AxisCorrection | None = None,
) -> SpectraSet:
    """Read a user's spectra.

    Parameters
    ----------
    source
        A wide CSV (``.csv``, ``.tsv``, optionally ``.gz``: shifts as numeric column titles, every
        other column metadata), a folder of spectrum files in any format ``ramanid read`` reads
        (a file of several spectra, a map or a series, gives one row each), or a ``.npy`` matrix.
    label, group : str, optional
        Metadata columns copied to ``label`` and ``group`` (so ``--task label:label`` and
        ``--split grouped:group`` work whatever the sheet calls them). A missing label is an
        error naming the row.
    labels : path, optional
        For a folder: a CSV with a ``file`` column (names relative to the folder) and the label and
        group columns. Every file needs a row, no file may appear twice, and every row's file
        must exist.
    axis : path, optional
        For ``.npy``: the shift axis (``.npy``).
    grid : optional
        For files on different axes: ``START:STOP:POINTS`` or ``auto:SHARE:POINTS``; default, the
        range every file covers (``auto:1.0``) with the median number of points in it.
    """
    source = Path(source)
    name = source.name.lower()
    if source.is_dir():
        spectra = _folder(source, labels, grid, method, laser_nm, calibration)
    elif name.endswith(".npy"):
        if axis is None:
            raise DatasetError(f"{source}: a .npy matrix needs its shift axis: give --axis AXIS.npy")
        spectra = read_npy(source, axis)
    elif name.endswith(WIDE):
        spectra = read_wide_csv(source)
    else:
        raise DatasetError(f"{source}: expected a wide CSV ({', '.join(WIDE)}), a folder of spectra or a .npy matrix")
    for wanted, column in ((label, "label"), (group, "group")):
        if wanted is None:
            continue
        if wanted not in spectra.meta:
            raise DatasetError(f"{source}: no column {wanted!r}; the table has {list(spectra.meta.columns)}")
        values = spectra.meta[wanted]
        missing = values.isna() | (values.astype(str).str.strip() == "")
        if missing.any():
            raise DatasetError(
                f"{source}: row {int(np.flatnonzero(missing)[0]) + 1} has no {wanted!r} "
                f"({int(missing.sum())} rows without one)"
            )
        spectra.meta[column] = values.astype(str).str.strip()
    spectra.info = {
        "source": str(source),
        "kind": "table",
        "label": label,
        "group": group,
        "method": method,
        "preprocess": None,
    }
    return spectra


def _folder(folder: Path, labels, grid, method: str, laser_nm, calibration) -> SpectraSet:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())
    sheet = None
    if labels is not None:
        sheet = _sheet(Path(labels), folder)
        files = [p for p in files if p.resolve() != Path(labels).resolve()]
    if not files:
        raise DatasetError(f"{folder}: no spectrum files ({', '.join(sorted(SUFFIXES))})")
    spectra, names = [], []
    for path in files:
        read, skipped = read_spectrum_files([path], laser_nm, calibration)
        if skipped:
            raise DatasetError(skipped[0].reason)
        spectra += read
        names += [str(path.relative_to(folder))] * len(read)
    meta = pd.DataFrame({"file": names})
    if len(spectra) > len(files):  # files of several spectra (maps, series): which one of the file each row is
        meta["spectrum"] = [s.source for s in spectra]
    if sheet is not None:
        unlabelled = sorted(set(names) - set(sheet.index))
        if unlabelled:
            raise DatasetError(f"{labels}: no row for {unlabelled[:3]} ({len(unlabelled)} files without a label)")
        meta = pd.concat([meta, sheet.loc[names].reset_index(drop=True)], axis=1)
    starts, stops = [s.shifts[0] for s in spectra], [s.shifts[-1] for s in spectra]
    if grid is None:
        lo, hi = max(starts), min(stops)
        points = int(np.median([np.sum((s.shifts >= lo) & (s.shifts <= hi)) for s in spectra]))
        grid = AutoGrid(1.0, max(points, 2))
    grid = parse_grid(grid) if isinstance(grid, str) else grid
    grid = grid.resolve(starts, stops) if isinstance(grid, AutoGrid) else grid
    meta["coverage"] = [coverage(s.shifts, grid.axis) for s in spectra]
    matrix = np.stack([resample_spectrum(s.shifts, s.intensities, grid.axis, method) for s in spectra])
    return SpectraSet(grid.axis, matrix, meta)


def _sheet(path: Path, folder: Path) -> pd.DataFrame:
    """The labels sheet indexed by file name, with clear errors naming the row."""
    try:
        sheet = pd.read_csv(path, dtype=str)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not a readable CSV sheet ({exc})") from exc
    if "file" not in sheet:
        raise DatasetError(f"{path}: expected a 'file' column naming each spectrum file; have {list(sheet.columns)}")
    sheet["file"] = sheet["file"].str.strip()
    duplicated = sheet["file"].duplicated()
    if duplicated.any():
        row = int(np.flatnonzero(duplicated)[0])
        raise DatasetError(f"{path}, line {row + 2}: {sheet['file'][row]!r} appears twice")
    for row, name in enumerate(sheet["file"]):
        if not (folder / name).is_file():
            raise DatasetError(f"{path}, line {row + 2}: no file {name!r} in {folder}")
    return sheet.set_index("file")
