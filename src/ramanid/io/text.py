"""Numeric text parsing shared by every text reader: fast path in C, slow path that names bad lines."""

from __future__ import annotations

import io
import re
import warnings

import numpy as np
import pandas as pd

from ramanid.errors import SpectrumFormatError

_SEPARATORS = str.maketrans({",": " ", ";": " ", "\t": " "})
_HTML = re.compile(r"^\s*(<!doctype html|<html|<head)", re.IGNORECASE)
#: share of data rows that may be unreadable before a file counts as garbage, not a spectrum
MAX_BAD_ROW_SHARE = 0.05


def decode(data: bytes) -> str:
    """Text from bytes: UTF-16 (with or without a byte-order mark, as Windows software writes it),
    else UTF-8 if valid (a byte-order mark dropped), else latin-1 (RRUFF has both); line endings unified.
    """
    utf16 = utf16_codec(data)
    if utf16 is not None:
        try:
            text = data.decode(utf16)
        except UnicodeDecodeError:
            text = data.decode("latin-1")
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def utf16_codec(data: bytes) -> str | None:
    """``"utf-16"``, ``"utf-16-le"`` or ``"utf-16-be"`` for UTF-16 text (by its byte-order mark,
    or by the zero high bytes of ASCII text at odd or even positions), else None.
    """
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "utf-16"
    head = data[:2048]
    if len(head) < 8 or head.count(0) < len(head) // 3:
        return None
    odd, even = head[1::2].count(0), head[0::2].count(0)
    if odd > 0.9 * (len(head) // 2) and even == 0:
        return "utf-16-le"
    if even > 0.9 * (len(head) // 2) and odd == 0:
        return "utf-16-be"
    return None


def reject_non_spectrum(text: str, source: str) -> None:
    """Raise a clear error for empty files and for HTML pages saved under a spectrum's name."""
    if not text.strip():
        raise SpectrumFormatError(source, "the file is empty: expected rows of 'shift, intensity'")
    if _HTML.match(text[:200]):
        raise SpectrumFormatError(
            source, "this is an HTML page, not a spectrum: download the .txt data file instead", line=1
        )


def parse_xy(block: str, source: str, first_line: int = 1, skip_header: bool = False):
    r"""Parse rows of ``shift, intensity`` (comma, semicolon, tab or space separated).

    Parameters
    ----------
    block : str
        The data rows, ``\\n`` separated.
    source : str
        Name used in error messages.
    first_line : int
        Line number of the first row of ``block`` in its file, for messages.
    skip_header : bool
        Leading rows that are not numbers are column titles, not bad rows.

    Returns
    -------
    shifts, intensities : float64 arrays, sorted by shift, duplicates averaged
    skipped : int
        Rows that were not two numbers and were left out. More than
        :data:`MAX_BAD_ROW_SHARE` of the rows, or a NaN or infinite value, is an error.
    """
    lines = block.split("\n")
    rows = [i for i, line in enumerate(lines) if line.strip()]
    if skip_header:
        while rows and not _is_number(lines[rows[0]].translate(_SEPARATORS).split()[:1]):
            rows.pop(0)
    if not rows:
        raise SpectrumFormatError(source, "no numeric data rows: expected rows of 'shift, intensity'")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            values = np.fromstring("\n".join(lines[rows[0] :]).translate(_SEPARATORS), sep=" ")
        except (DeprecationWarning, ValueError):
            values = None
    if values is not None and values.size == 2 * len(rows):
        xy, bad = values.reshape(-1, 2), []
    else:
        xy, rows, bad = _parse_rows_slowly(lines, rows)
        if not len(xy) or len(bad) > MAX_BAD_ROW_SHARE * (len(rows) + len(bad)):
            index, text = bad[0]
            raise SpectrumFormatError(
                source,
                f"not a spectrum row: {text.strip()[:60]!r} ({len(bad)} of {len(rows) + len(bad)} rows "
                "unreadable); expected two numbers, 'shift, intensity'",
                line=first_line + index,
            )
    shifts, intensities = check_xy(xy, source, first_line + np.asarray(rows))
    return shifts, intensities, len(bad)


def parse_xy_many(blocks: list[bytes]) -> list[np.ndarray] | None:
    r"""Parse many clean ``shift, intensity`` blocks in one call of pandas' C parser.

    Returns one ``(rows, 2)`` array per block, or ``None`` when any block is not clean
    (blank lines, lone ``\\r`` line ends, other separators, non-numbers); the caller then
    parses block by block with :func:`parse_xy`, which names the bad line.
    """
    if not blocks or not all(blocks):
        return None
    counts = np.array([b.count(b"\n") + 1 for b in blocks])
    if sum(b.count(b"\r") for b in blocks) > counts.sum():
        return None
    try:
        table = pd.read_csv(
            io.BytesIO(b"\n".join(blocks)),
            header=None,
            names=["x", "y"],
            dtype=np.float64,
            engine="c",
            na_filter=False,
        ).to_numpy()
    except (ValueError, pd.errors.ParserError):
        return None
    # a blank line is skipped by the parser, so any blank line shows up as a short count
    if counts.sum() != len(table):
        return None
    return np.split(table, np.cumsum(counts)[:-1])


def check_xy(xy: np.ndarray, source: str, line_numbers: np.ndarray | int = 1):
    """Sorted, de-duplicated, finite shifts and intensities from a ``(rows, 2)`` array.

    ``line_numbers`` gives each row's line in its file, or the first row's line when rows
    are consecutive; it is only used in messages.
    """
    finite = np.isfinite(xy).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        line = line_numbers + row if np.isscalar(line_numbers) else line_numbers[row]
        raise SpectrumFormatError(source, "NaN or infinite value: expected finite numbers", line=int(line))
    if len(xy) < 2:
        raise SpectrumFormatError(source, f"only {len(xy)} data point: a spectrum needs at least 2")
    shifts, intensities = sort_unique(xy[:, 0], xy[:, 1])
    if len(shifts) < 2:
        raise SpectrumFormatError(source, "all rows have the same shift: a spectrum needs at least 2 shifts")
    return shifts, intensities


def sort_unique(shifts: np.ndarray, intensities: np.ndarray):
    """Sort by shift; average the intensities of repeated shifts."""
    if np.all(np.diff(shifts) > 0):
        return shifts, intensities
    unique, inverse, counts = np.unique(shifts, return_inverse=True, return_counts=True)
    return unique, np.bincount(inverse, weights=intensities) / counts


def _parse_rows_slowly(lines, rows):
    """Row by row: (values, indices of the good rows, [(index, text)] of the bad ones)."""
    good, kept, bad = [], [], []
    for i in rows:
        fields = lines[i].translate(_SEPARATORS).split()
        try:
            if len(fields) < 2:
                raise ValueError
            good.append((float(fields[0]), float(fields[1])))
            kept.append(i)
        except ValueError:
            bad.append((i, lines[i]))
    return np.array(good, dtype=np.float64).reshape(-1, 2), kept, bad


def _is_number(tokens: list[str]) -> bool:
    try:
        float(tokens[0])
    except (IndexError, ValueError):
        return False
    return True
