"""Delimited numeric text as instrument software writes it: a header block of any length, then a
table of numbers.

The dialect is read from the data, never assumed: the separator (tab, ``;``, ``,`` or spaces),
the decimal mark (a point, or a comma as European software writes ``1085,3``), thousands
separators (``"1,085.3"``, ``1.085,3``) and quoted numbers. A table whose numbers can be read two
ways (only ``1,085``-like values: 1085 or 1.085?), or that mixes decimal commas and points, is
refused with the reason.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass

import numpy as np

from ramanid.errors import SpectrumFormatError

SEPARATORS = ("\t", ";", ",", None)  # None: runs of spaces
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
#: written where a value is missing or infinite: read, so that the reader can say so
_NOT_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
_COMMA_NUMBER = re.compile(r"[+-]?(?:\d+(?:,\d*)?|,\d+)(?:[eE][+-]?\d+)?")
#: 1,085 or 1,085,300.5 (comma thousands); 1.085 or 1.085.300,5 (point thousands)
_COMMA_THOUSANDS = re.compile(r"[+-]?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?")
_POINT_THOUSANDS = re.compile(r"[+-]?[1-9]\d{0,2}(?:\.\d{3})+(?:,\d+)?")
#: any of the forms above, in one pattern (a line's fields are tested many times over)
_ANY_NUMBER = re.compile(
    "|".join(f"(?:{p.pattern})" for p in (_NUMBER, _COMMA_NUMBER, _COMMA_THOUSANDS, _POINT_THOUSANDS))
    + "|"
    + f"(?i:{_NOT_FINITE.pattern})"
)


def _plain_row(sep: str | None) -> re.Pattern:
    """A row of plain numbers (point decimals, no empty cells) under ``sep``."""
    pad = " " if sep == "\t" else "[ \t]"  # a tab separator's cells are padded with spaces only
    number = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
    between = "[ \t]+" if sep is None else f"{pad}*{re.escape(sep)}{pad}*"
    more = "*" if sep is None else "+"  # under a separator, a row has it
    return re.compile(f"{pad}*{number}(?:{between}{number}){more}{pad}*\r?")


#: most rows of most files: counted and read at once (any other line goes through :func:`_data_fields`)
_PLAIN_ROW = {sep: _plain_row(sep) for sep in SEPARATORS}
#: what every data row holds somewhere
_HAS_NUMBER = re.compile(r"\d|nan|inf", re.IGNORECASE)
#: lines whose dialect is sniffed, from the end of the file
SAMPLE = 400


@dataclass
class Table:
    """A numeric table found in text: the lines before it, its column titles (where a title row
    precedes it), the values (NaN for empty cells), and how it was read.
    """

    header: list[str]
    names: list[str] | None
    values: np.ndarray
    first_line: int
    dialect: str


def read_table(text: str, source: str) -> Table:
    """The numeric table of ``text`` (the longest run of rows with the same number of numeric
    fields); a :class:`SpectrumFormatError` when there is none, or its numbers are ambiguous.
    """
    lines = text.split("\n")
    best, counts, plain, numeric = None, {}, {}, _longest_numeric(lines)
    for sep in SEPARATORS:
        if sep is not None and sep not in text:
            continue
        if sep is None and best is not None and best[1] - best[0] >= numeric:
            # spaces cannot win: no run is longer, and on the same lines they split into no more fields
            continue
        counts[sep], plain[sep] = _line_fields(lines, sep)
        run = _longest_run(counts[sep], sep)
        if run is not None and (best is None or (run[1] - run[0], run[2]) > (best[1] - best[0], best[2])):
            best = (*run, sep)
    if best is None:
        raise SpectrumFormatError(source, "no numeric data rows: expected rows of 'shift, intensity'")
    start, stop, columns, sep = best
    _check_whole(lines, counts[sep], start, stop, columns, source)
    block = lines[start:stop]
    if all(plain[sep][start:stop]):  # point decimals, no thousands, no empty cells
        decimal, joined = ".", " ".join(block)
        values = np.array((joined if sep is None else joined.replace(sep, " ")).split(), dtype=np.float64)
        values = values.reshape(len(block), columns)
    else:
        rows = [_fields(line, sep) for line in block]
        decimal = _decimal_mark(rows, source, start)
        values = np.array([[_number(token, decimal) for token in row] for row in rows], dtype=np.float64)
    names = _title_row(lines[start - 1], sep, columns) if start > 0 else None
    header = lines[: start - 1] if names is not None else lines[:start]
    separator = {"\t": "tab", ";": "';'", ",": "','", None: "space"}[sep]
    dialect = f"{separator}-separated, decimal {'comma' if decimal == ',' else 'point'}"
    return Table([h for h in header if h.strip()], names, values, start + 1, dialect)


def _check_whole(lines: list[str], counts: list[int], start: int, stop: int, columns: int, source: str) -> None:
    """Refuse a table broken by a line that is not one of its rows: rows like it elsewhere in the
    file (``counts``: each line's data fields) mean part of the spectrum would be left out.
    """
    outside = [i for i in (*range(start), *range(stop, len(lines))) if counts[i] == columns]
    if not outside:
        return
    stray = outside[0]
    broken = stop if stray >= stop else next(i for i in range(stray, start) if counts[i] != columns)
    raise SpectrumFormatError(
        source,
        f"not a row of the table: {lines[broken].strip()[:60]!r}; rows of {columns} numbers stand on both sides "
        "of it, so part of the spectrum would be left out",
        line=broken + 1,
    )


def _fields(line: str, sep: str | None) -> list[str]:
    if sep is None:
        return line.split()
    if '"' not in line:  # what csv reads it as, without its cost per line
        return [field.strip() for field in line.split(sep)]
    return [field.strip() for field in next(csv.reader([line], delimiter=sep, quotechar='"'))]


def _is_numeric(token: str) -> bool:
    """A number in any of the forms :func:`_number` reads (the decimal mark not yet known)."""
    return _ANY_NUMBER.fullmatch(token) is not None


def _longest_numeric(lines: list[str]) -> int:
    """The most consecutive lines that could be data rows under any separator: each holds a
    digit, or nan or inf (a title row above a table holds none, most often).
    """
    longest = current = 0
    for line in lines:
        current = current + 1 if _HAS_NUMBER.search(line) else 0
        longest = max(longest, current)
    return longest


def _line_fields(lines: list[str], sep: str | None) -> tuple[list[int], list[bool]]:
    """:func:`_data_fields` of each line, and whether it is a plain row (counted without
    splitting it into fields).
    """
    plain = [_PLAIN_ROW[sep].fullmatch(line) is not None for line in lines]
    counts = [
        (len(line.split()) if sep is None else line.count(sep) + 1) if simple else _data_fields(line, sep)
        for line, simple in zip(lines, plain, strict=True)
    ]
    return counts, plain


def _data_fields(line: str, sep: str | None) -> int:
    """How many fields the line has if it is a data row under ``sep`` (every field a number or
    empty, at least one a number), else 0.
    """
    if not line.strip() or (sep is not None and sep not in line):
        return 0
    try:
        fields = _fields(line, sep)
    except csv.Error:
        return 0
    filled = [f for f in fields if f]
    return len(fields) if filled and all(map(_is_numeric, filled)) else 0


def _longest_run(counts: list[int], sep: str | None) -> tuple[int, int, int] | None:
    """``(start, stop, fields)`` of the longest run of data rows with one field count (``counts``:
    each line's data fields under ``sep``; 1-field rows only where no separator is used).
    """
    best, start, count = None, None, 0
    for i, fields in enumerate([*counts, 0]):
        if fields and fields == count and start is not None:
            continue
        if start is not None and count and (count > 1 or sep is None):
            if best is None or i - start > best[1] - best[0]:
                best = (start, i, count)
        start, count = (i, fields) if fields else (None, 0)
    return best


def _decimal_mark(rows: list[list[str]], source: str, first: int) -> str:
    """``"."`` or ``","``, from the evidence of the tokens (see the module docstring)."""
    comma = point = ambiguous = None
    sample = rows if len(rows) <= 2 * SAMPLE else rows[:SAMPLE] + rows[-SAMPLE:]
    for row in sample:
        for token in row:
            if not token:
                continue
            has_comma, has_point = "," in token, "." in token
            if has_comma and has_point:
                # whichever comes last is the decimal mark: 1,085.3 or 1.085,3
                if token.rfind(",") > token.rfind("."):
                    comma = comma or token
                else:
                    point = point or token
            elif has_comma:
                if not _COMMA_NUMBER.fullmatch(token):  # 1,085,300: commas can only be thousands
                    point = point or token
                elif _COMMA_THOUSANDS.fullmatch(token):  # 1,085: 1085 or 1.085, the others decide
                    ambiguous = ambiguous or token
                else:
                    comma = comma or token
            elif has_point:
                if not _NUMBER.fullmatch(token):  # 1.085.300: points can only be thousands
                    comma = comma or token
                elif not _POINT_THOUSANDS.fullmatch(token):  # 0.125, 512.3; 1.085 is left to the others
                    point = point or token
    if comma and point:
        raise SpectrumFormatError(
            source,
            f"the table mixes decimal commas ({comma!r}) and decimal points ({point!r}): save it with one of them",
            line=first + 1,
        )
    if comma:
        return ","
    if ambiguous and not point:
        raise SpectrumFormatError(
            source,
            f"{ambiguous!r} could be {ambiguous.replace(',', '')} or {ambiguous.replace(',', '.')}: the table has no "
            "other number that shows its decimal mark; save it with a decimal point and no thousands separators",
            line=first + 1,
        )
    return "."


def _number(token: str, decimal: str) -> float:
    if not token:
        return np.nan
    if decimal == ",":
        if _POINT_THOUSANDS.fullmatch(token):
            token = token.replace(".", "")
        token = token.replace(",", ".")
    elif "," in token and _COMMA_THOUSANDS.fullmatch(token):
        token = token.replace(",", "")
    try:
        return float(token)
    except ValueError:
        return np.nan


def _title_row(line: str, sep: str | None, columns: int) -> list[str] | None:
    """The column titles, when the line before the table has one per column and is not numbers."""
    if "=" in line:  # a 'key=value' line of the header block, not titles
        return None
    try:
        fields = _fields(line, sep)
    except csv.Error:
        return None
    if len(fields) != columns or all(not f or _is_numeric(f) for f in fields):
        return None
    return [f.lstrip("#").strip() for f in fields]
