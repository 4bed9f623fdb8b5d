"""Readers for tables of spectra: one spectrum per text file, wide CSV (one spectrum per row,
shifts as column titles), and ``.npy`` matrices.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
from pathlib import Path

import numpy as np
import pandas as pd

from ramanid.errors import SpectrumFormatError
from ramanid.io.text import decode, reject_non_spectrum
from ramanid.spectra import SpectraSet, Spectrum, check_shifts

#: a spectrum file larger than this is refused unread
MAX_FILE_BYTES = 2**30
#: a text file larger than this is refused unread: text is read whole, at about 5 bytes of memory
#: a byte (an 80 MB map of 10,000 spectra peaks at 0.6 GB); a larger map is streamed from .npy
MAX_TEXT_BYTES = 2**29
#: a wide table's title row has at least this many shifts (in order), half its titles or more
WIDE_MIN_SHIFTS = 4


def read_two_column(path: str | Path, laser_nm: float | None = None) -> Spectrum:
    """The one spectrum of a text file: columns of shift and intensity in any dialect, under any
    header (:func:`ramanid.io.textfiles.read_text_spectra`); a file of several is refused.
    """
    from ramanid.io.textfiles import read_text_spectra

    path = Path(path)
    spectra = read_text_spectra(_read_text(path), str(path), laser_nm)
    if len(spectra) != 1:
        raise SpectrumFormatError(str(path), f"holds {len(spectra)} spectra: expected one per file")
    return spectra[0]


def wide_separator(text: str) -> str | None:
    """The separator of a wide table (shifts as the titles of its first row), or None for text
    of another layout.
    """
    line = next((line for line in text.split("\n") if line.strip()), "")
    if line.lstrip().startswith("#"):
        return None
    for sep in (",", ";", "\t"):
        titles = [t.strip().strip('"') for t in line.split(sep)]
        shifts = np.array([v for v in map(as_float, titles) if v is not None])
        steps = np.diff(shifts)
        ordered = len(shifts) >= WIDE_MIN_SHIFTS and ((steps > 0).all() or (steps < 0).all())
        if ordered and len(shifts) >= 0.5 * len(titles):
            return sep
    return None


def read_wide_csv(path: str | Path, allow_missing: bool = False) -> SpectraSet:
    """One spectrum per row; the columns whose titles are numbers are the shifts
    (:func:`wide_table`). Every other column (labels, sample ids, ...) goes to the metadata.
    """
    path = Path(path)
    text = _read_text(path)  # decoded (UTF-16 included) and decompressed once, then parsed by pandas
    suffix = Path(path.stem).suffix if path.suffix.lower() in _COMPRESSED else path.suffix  # t.tsv.gz: .tsv
    sep = wide_separator(text) or ("\t" if suffix.lower() in (".tsv", ".tab") else ",")
    comma = sep != "," and any("," in line for line in text.split("\n", 3)[1:3])
    try:  # the other columns are text: labels "1", "1.0" and "01" stay three, "None" and "NaN" are names
        titles = pd.read_csv(io.StringIO(text), sep=sep, engine="c", nrows=0).columns
        names = {title: str for title in titles if as_float(title) is None}
        table = pd.read_csv(
            io.StringIO(text),
            sep=sep,
            engine="c",
            decimal="," if comma else ".",
            dtype=names,
            keep_default_na=False,
            na_values=[""],
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise SpectrumFormatError(str(path), f"not a readable CSV table ({exc})") from exc
    return wide_table(table, str(path), f"pandas, decimal {'comma' if comma else 'point'}", allow_missing)


def wide_table(table: pd.DataFrame, source: str, reader: str = "pandas", allow_missing: bool = False) -> SpectraSet:
    """A table of one spectrum per row as a set: the columns titled by numbers are the shifts, the
    others metadata. A value that is not a number is an error naming its line, unless
    ``allow_missing`` (a map's unmeasured pixel), where it is NaN.
    """
    if table.empty:
        raise SpectrumFormatError(source, "the table has a header but no rows of spectra", line=2)
    shift_columns = [c for c in table.columns if as_float(c) is not None]
    if len(shift_columns) < 2:
        raise SpectrumFormatError(
            source, "expected a header row whose spectrum columns are Raman shifts (numbers)", line=1
        )
    shifts = np.array([as_float(c) for c in shift_columns])
    values = table[shift_columns].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any() and not allow_missing:
        row = int(np.flatnonzero(bad)[0])
        raise SpectrumFormatError(source, "a spectrum value is empty, not a number, NaN or inf", line=row + 2)
    order = np.argsort(shifts)
    check_shifts(shifts[order], f"{source} (header)")
    meta = table.drop(columns=shift_columns)
    meta.insert(0, "file", source)
    meta["format"], meta["reader"] = "wide CSV (shifts as column titles)", reader
    return SpectraSet(shifts[order], values[:, order], meta)


def read_npy(
    intensities: str | Path,
    shifts: str | Path | np.ndarray,
    labels: str | Path | None = None,
    label_names: dict | list | None = None,
) -> SpectraSet:
    """A ``(n, p)`` ``.npy`` matrix with its ``(p,)`` shift axis (a file or an array), and
    optional ``(n,)`` labels.

    Loaded with ``allow_pickle=False``: an object array is refused, never unpickled.
    ``label_names`` maps integer labels to names (a list, or a dict such as COVID's ``label.json``).
    """
    X = _load_array(intensities)
    source = "the given axis" if isinstance(shifts, np.ndarray) else str(shifts)
    axis = check_shifts(shifts if isinstance(shifts, np.ndarray) else _load_array(shifts), source)
    if X.ndim != 2 or X.shape[1] != len(axis):
        raise SpectrumFormatError(str(intensities), f"shape {X.shape} does not match {len(axis)} shifts in {source}")
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        raise SpectrumFormatError(str(intensities), f"row {int(np.flatnonzero(bad)[0])} holds NaN or inf")
    meta = pd.DataFrame({"file": [f"{intensities}[{i}]" for i in range(len(X))]})
    if labels is not None:
        y = _load_array(labels).ravel()
        if len(y) != len(X):
            raise SpectrumFormatError(str(labels), f"{len(y)} labels for {len(X)} spectra")
        meta["label_id"] = y.astype(int)
        if label_names is not None:
            items = label_names.items() if isinstance(label_names, dict) else enumerate(label_names)
            names = {int(k): str(v) for k, v in items}
            meta["label"] = [names.get(int(v), str(int(v))) for v in y]
    return SpectraSet(axis, X, meta)


def _load_array(path: str | Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError as exc:
        raise SpectrumFormatError(str(path), "no such file") from exc
    except (ValueError, OSError, EOFError) as exc:
        raise SpectrumFormatError(str(path), f"not a numeric .npy array ({exc})") from exc


def check_text_size(path: Path) -> None:
    """Refuse a text file too large to read whole (:data:`MAX_TEXT_BYTES`), before reading it."""
    size = path.stat().st_size
    if size > MAX_TEXT_BYTES:
        raise SpectrumFormatError(
            str(path),
            f"a text file of {size / 2**20:,.0f} MB; text is read whole, up to {MAX_TEXT_BYTES / 2**20:,.0f} MB: "
            "save a larger map as .npy ('ramanid map' streams it)",
        )


#: compressed text a table may come in, by extension
_COMPRESSED = {".gz": (gzip.open, "gzip"), ".bz2": (bz2.open, "bzip2"), ".xz": (lzma.open, "xz")}


def _read_text(path: Path) -> str:
    """A text file's text (decompressed for ``.gz``, ``.bz2`` and ``.xz``), at most :data:`MAX_TEXT_BYTES`."""
    opener, kind = _COMPRESSED.get(path.suffix.lower(), (open, None))
    try:
        check_text_size(path)
        with opener(path, "rb") as fh:
            data = fh.read(MAX_TEXT_BYTES + 1)
    except OSError as exc:
        what = f"not a {kind} file ({exc})" if kind and not isinstance(exc, FileNotFoundError) else None
        raise SpectrumFormatError(str(path), what or f"cannot read the file ({exc.strerror})") from exc
    except (EOFError, lzma.LZMAError) as exc:
        raise SpectrumFormatError(str(path), f"a damaged {kind} file ({exc})") from exc
    if len(data) > MAX_TEXT_BYTES:
        raise SpectrumFormatError(str(path), f"decompresses to over {MAX_TEXT_BYTES / 2**20:,.0f} MB of text")
    text = decode(data)
    reject_non_spectrum(text, str(path))
    return text


def as_float(value) -> float | None:
    """``value`` as a finite float, or None."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None
