"""Spectra in text files, as columns of numbers under a header block.

Any common dialect is read (:mod:`ramanid.io.delimited`), and so are the text exports of
instrument software built on it:

- Horiba LabSpec text: a ``#key=value`` header (laser, objective, acquisition time, stage
  position, axis units), then one spectrum (shift, intensity) or a series (a first row of
  shifts, then one row per spectrum led by its time or index);
- B&W Tek BWSpec text: a ``key;value`` header (``laser_wavelength``, the pixel-to-wavelength
  polynomial ``coefs_a0..a3``) and a table ``Pixel;Wavelength;Wavenumber;Raman Shift;Dark;...;
  Dark Subtracted #1``; the shift column where it is filled, else the polynomial and the laser;
- Open Specy's two-column CSV, and any two- or many-column export with or without titles.

Which column is the axis comes from the column titles, or else from which column is a steady
axis; a file where neither tells is refused. Several intensity columns are one spectrum each,
named by their title.
"""

from __future__ import annotations

import re

import numpy as np

from ramanid.errors import SpectrumFormatError
from ramanid.io.axis import (
    PIXEL,
    SHIFT,
    WAVELENGTH,
    WAVENUMBER,
    check_raman_range,
    laser_from_text,
    to_raman_shift,
    unit_of,
)
from ramanid.io.delimited import Table, read_table
from ramanid.io.text import check_xy
from ramanid.spectra import Spectrum

#: column titles of spectra that are not Raman
INFRARED = re.compile(r"absorb|transmit|%\s*t\b|reflect|kubelka|log\s*\(1/r\)", re.IGNORECASE)
#: intensity columns that are not the sample's signal
NOT_SIGNAL = re.compile(r"^(dark|reference|background|ref)( ?#\d+)?$", re.IGNORECASE)
#: where the preferred signal columns exist, only they are read
PREFERRED_SIGNAL = re.compile(r"dark subtracted", re.IGNORECASE)
#: header keys, lower case, that hold the laser wavelength
LASER_KEYS = re.compile(r"laser|excitation", re.IGNORECASE)
#: header keys of the metadata columns ramanid keeps, by what they mean
META_KEYS = {
    "instrument": re.compile(r"^(instrument|spectrometer|model|device|instrument name)$", re.IGNORECASE),
    "acquisition_time_s": re.compile(
        r"^(acq\. time \(s\)|integration time|exposure|intigration times\(ms\))", re.IGNORECASE
    ),
    "accumulations": re.compile(r"^(accumulations?|averages?|time_multiply)$", re.IGNORECASE),
    "x": re.compile(r"^x \((µ|u|\xb5)m\)$", re.IGNORECASE),
    "y": re.compile(r"^y \((µ|u|\xb5)m\)$", re.IGNORECASE),
    "z": re.compile(r"^z \((µ|u|\xb5)m\)$", re.IGNORECASE),
    "title": re.compile(r"^title$", re.IGNORECASE),
}


def read_text_spectra(text: str, source: str, laser_nm: float | None = None) -> list[Spectrum]:
    """Every spectrum in one text file (already decoded); ``laser_nm`` is the user's laser
    wavelength, used where the file's axis needs one and the file does not say it.
    """
    table = read_table(text, source)
    header = header_values(table.header)
    kind = _format_of(table, header)
    laser = laser_nm or _laser_of(header)
    base = {"file": source, "format": kind, "reader": f"ramanid text ({table.dialect})"}
    if laser is not None:
        base["laser_nm"] = laser
    for column, pattern in META_KEYS.items():
        value = next((v for k, v in header.items() if pattern.match(k)), None)
        if value not in (None, ""):
            base[column] = _number_or_text(value)
    spectra = []
    for x, y, name, unit, index in _columns(table, header, source):
        label = source if name is None else f"{source}[{name}]"
        shifts, note = to_raman_shift(x, unit, laser, label)
        check_raman_range(shifts, label)
        shifts, intensities = check_xy(np.column_stack([shifts, y]), label, table.first_line)
        meta = {**base, "file": label, "x_unit": unit, **({"converted": note} if note else {})}
        if name is not None:
            meta["column"] = name
        if index is not None:
            meta["series"] = index
        spectra.append(Spectrum(shifts, intensities, meta))
    return spectra


def header_values(lines: list[str]) -> dict[str, str]:
    """``key -> value`` of a header block's ``#key=value``, ``key;value``, ``key: value`` and
    ``key<TAB>value`` lines (the first separator of each line splits it).
    """
    values = {}
    for line in lines:
        line = line.strip().lstrip("#").strip()
        match = re.match(r"([^=;:\t]+?)\s*[=;:\t]\s*(.*)$", line)
        if match:
            values.setdefault(match.group(1).strip(), match.group(2).strip().strip("\t ").strip('"'))
    return values


def _format_of(table: Table, header: dict) -> str:
    names = " ".join(table.names or [])
    if any(k.lower().startswith("file version") and "bwspec" in v.lower() for k, v in header.items()) or (
        "Pixel" in names and "Raman Shift" in names
    ):
        return "B&W Tek BWSpec text"
    if (
        any(k in header for k in ("Acq. time (s)", "AxisType[1]", "Spike filter"))
        or "Instrument" in header
        and any(line.startswith("#") for line in table.header)
    ):
        return "Horiba LabSpec text"
    return "delimited text"


def _laser_of(header: dict) -> float | None:
    for key, value in header.items():
        if LASER_KEYS.search(key) and not re.search(r"power|pol|temp|filter|%", key, re.IGNORECASE):
            laser = laser_from_text(value) or laser_from_text(key)
            if laser is not None:
                return laser
    return None


def _columns(table: Table, header: dict, source: str):
    """``(x, y, name, unit, series index)`` of each spectrum in the table."""
    values, names = table.values, table.names
    if values.shape[1] >= 4 and np.isnan(values[0, 0]) and _axis_like(values[0, 1:]):
        # a series: the first row is the axis, each later row one spectrum led by its index or time
        unit = unit_of(header.get("AxisUnit[1]", "")) or SHIFT
        for row in values[1:]:
            yield values[0, 1:], row[1:], f"{row[0]:g}", unit, float(row[0])
        return
    if names:
        yield from _named_columns(values, names, header, source)
        return
    yield from _unnamed_columns(values, header, source)


def _named_columns(values: np.ndarray, names: list[str], header: dict, source: str):
    infrared = next((n for n in names if INFRARED.search(n)), None)
    if infrared is not None:
        raise SpectrumFormatError(
            source,
            f"the column {infrared!r} says this is an infrared or UV-Vis spectrum: ramanid identifies Raman spectra",
        )
    units = [unit_of(n) for n in names]
    filled = [np.isfinite(values[:, j]).any() for j in range(len(names))]
    axis = next(
        (j for want in (SHIFT, WAVELENGTH, WAVENUMBER, "eV") for j, u in enumerate(units) if u == want and filled[j]),
        None,
    )
    x, unit = (values[:, axis], units[axis]) if axis is not None else (None, None)
    if axis is None:
        pixel = next((j for j, u in enumerate(units) if u == PIXEL and filled[j]), None)
        if pixel is None:
            yield from _unnamed_columns(values, header, source, names)
            return
        axis, x, unit = pixel, _calibrated(values[:, pixel], header, source), WAVELENGTH
    signal = [j for j, u in enumerate(units) if u is None and filled[j] and not NOT_SIGNAL.match(names[j])]
    preferred = [j for j in signal if PREFERRED_SIGNAL.search(names[j])]
    signal = preferred or signal
    if not signal:
        raise SpectrumFormatError(
            source, f"no intensity column beside the axis {names[axis]!r}: the columns are {names}"
        )
    for j in signal:
        yield x, values[:, j], names[j] if len(signal) > 1 or len(names) > 2 else None, unit, None


def _unnamed_columns(values: np.ndarray, header: dict, source: str, names: list[str] | None = None):
    """Columns without titles that say what they are. By convention the first column is the axis
    (its rows may be in any order), unless it is a detector's pixel numbers, or the intensities
    come first and the last column is a steady axis; a file where two columns could be the axis,
    or pixel numbers could be either, is refused.
    """
    columns = values.shape[1]
    if columns < 2:
        raise SpectrumFormatError(source, "one column of numbers: expected an axis column and an intensity column")
    label = (lambda j: repr(names[j])) if names else (lambda j: f"{j + 1}")
    steady = [j for j in range(1, columns) if _axis_like(values[:, j])]
    if _pixel_numbers(values[:, 0]):
        if columns == 2 or not steady:
            raise SpectrumFormatError(
                source,
                f"the first column is whole numbers {values[0, 0]:g}-{values[-1, 0]:g} in steps of 1: pixel numbers "
                "or a Raman shift? add a title row that names it ('Pixel' or 'Raman shift')",
            )
        axis, signal = steady[0], [j for j in range(1, columns) if j != steady[0]]
        if len(steady) > 1:
            raise SpectrumFormatError(
                source, f"columns {', '.join(label(j) for j in steady)} could each be the axis: add a title row"
            )
    elif _monotonic(values[:, 0]) or not steady or steady != [columns - 1]:
        axis, signal = 0, list(range(1, columns))
        if any(_axis_like(values[:, j]) for j in signal) and _axis_like(values[:, 0]) and columns > 2:
            raise SpectrumFormatError(
                source, f"columns 1 and {', '.join(label(j) for j in steady)} could each be the axis: add a title row"
            )
    else:
        axis, signal = columns - 1, list(range(columns - 1))  # intensities first, then the axis
    unit = unit_of(header.get("AxisUnit[1]", "")) or WAVENUMBER  # LabSpec names its axis unit in the header
    for j in signal:
        yield values[:, axis], values[:, j], (f"{j + 1}" if len(signal) > 1 else None), unit, None


def _monotonic(column: np.ndarray) -> bool:
    steps = np.diff(column)
    return bool(len(column) >= 2 and np.isfinite(column).all() and ((steps > 0).all() or (steps < 0).all()))


def _axis_like(column: np.ndarray) -> bool:
    """Strictly monotonic, with steps that vary by less than half their median (an axis, even on
    a wavelength-to-shift grid; intensities jump about).
    """
    if len(column) < 3 or not _monotonic(column):
        return False
    steps = np.diff(column)
    median = np.median(steps)
    return bool(np.all(np.abs(steps - median) <= 0.5 * abs(median)))


def _pixel_numbers(column: np.ndarray) -> bool:
    """Consecutive whole numbers from 0 or 1: a detector's pixel index."""
    return bool(np.isfinite(column).all() and column[0] in (0, 1) and np.all(np.diff(column) == 1) and len(column) >= 3)


def _calibrated(pixels: np.ndarray, header: dict, source: str) -> np.ndarray:
    """The wavelength (nm) of each pixel from the file's polynomial ``coefs_a0..a3`` (BWSpec)."""
    coefficients = []
    for k in range(4):
        value = header.get(f"coefs_a{k}")
        if value in (None, ""):
            break
        try:
            coefficients.append(float(value.replace(",", ".")))
        except ValueError:
            raise SpectrumFormatError(source, f"coefs_a{k} is {value!r}: expected a number") from None
    if len(coefficients) < 2:
        raise SpectrumFormatError(
            source,
            "the axis is pixel numbers and the file holds no pixel-to-wavelength calibration "
            "(coefs_a0, coefs_a1, ...): export the spectrum with its Raman shift",
        )
    return np.polynomial.polynomial.polyval(pixels, coefficients)


def _number_or_text(value: str):
    try:
        return float(value.replace(",", "."))
    except ValueError:
        return value
