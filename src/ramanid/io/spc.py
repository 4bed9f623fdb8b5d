"""Thermo Galactic ``.spc`` (GRAMS), read by spc-io (https://pypi.org/project/spc-io/): single and
multi-spectrum files, evenly spaced or with their own x values (XY and XYXY).

Not every SPC file is Raman: its header's x and y types say what it holds. Raman shift (or an
axis the laser converts) with counts or arbitrary intensities is read; absorbance, transmittance,
reflectance and Kubelka-Munk are infrared or UV-Vis spectra and are refused, and so is an x
axis of another quantity (mass, time, arbitrary units).
"""

from __future__ import annotations

import contextlib
import io

import numpy as np

from ramanid.errors import SpectrumFormatError
from ramanid.io.axis import ENERGY, SHIFT, WAVELENGTH, WAVENUMBER, ascending, check_raman_range, to_raman_shift
from ramanid.io.block import Block, package_version

NAME = "Galactic SPC"
#: x types ramanid reads, and their unit (spc-io's names)
X_TYPES = {"XRAMANS": SHIFT, "XWAVEN": WAVENUMBER, "XNMETR": WAVELENGTH, "XUMETR": WAVELENGTH, "XEV": ENERGY}
#: y types of spectra that are not Raman (infrared, UV-Vis)
NOT_RAMAN = {
    "YABSRB": "absorbance",
    "YKMONK": "Kubelka-Munk",
    "YLOGDR": "log(1/R)",
    "YTRANS": "transmittance",
    "YREFLEC": "reflectance",
    "YPERCNT": "percent",
    "YIGRAM": "an interferogram",
}
#: the second header byte: the file layout
LAYOUTS = {0x4B: "new", 0x4C: "new big-endian", 0x4D: "old (before 1996)"}


def read_spc(path: str, laser_nm: float | None = None) -> list[Block]:
    """Every subfile of an SPC file, as one block per axis."""
    from spc_io import SPC

    with open(path, "rb") as fh:
        data = fh.read()
    layout = LAYOUTS.get(data[1] if len(data) > 1 else None)
    if layout != "new":
        raise SpectrumFormatError(
            path,
            f"{NAME} in the {layout or 'unknown'} layout, which spc-io does not read: save it again in GRAMS "
            "as a current SPC file, or export it as text",
        )
    notes = io.StringIO()
    try:
        with contextlib.redirect_stdout(notes), contextlib.redirect_stderr(notes):  # spc-io prints its parsing notes
            spc = SPC.from_bytes_io(io.BytesIO(data))
            subfiles = [
                (np.asarray(s.xarray, dtype=np.float64), np.asarray(s.yarray, dtype=np.float64), s.z) for s in spc
            ]
            x_type, y_type = str(spc.xtype), str(spc.ytype)
    except Exception as exc:  # noqa: BLE001 - a damaged file fails inside spc-io in many ways
        raise SpectrumFormatError(path, f"{NAME}, but spc-io could not read it ({type(exc).__name__}: {exc})") from exc
    span = f"x {subfiles[0][0].min():.6g}-{subfiles[0][0].max():.6g}" if subfiles else "no data"
    if y_type in NOT_RAMAN:
        raise SpectrumFormatError(
            path, f"{NAME} of {NOT_RAMAN[y_type]} ({x_type}, {span}): an infrared or UV-Vis spectrum, not Raman"
        )
    if x_type not in X_TYPES:
        raise SpectrumFormatError(
            path, f"{NAME} whose x axis is {x_type} ({span}): not a Raman shift, wavelength or energy"
        )
    unit = X_TYPES[x_type]
    blocks = {}
    for x, y, z in subfiles:
        if x_type == "XUMETR":
            x = x * 1000.0  # micrometres to nanometres
        shifts, note = to_raman_shift(x, unit, laser_nm, path)
        check_raman_range(shifts, path)
        order = ascending(shifts, path)
        key = shifts[order].tobytes()
        blocks.setdefault(key, (shifts[order], note, []))[2].append((y[order], z))
    facts = {"format": NAME, "reader": f"spc-io {package_version('spc-io')}", "x_unit": unit, "laser_nm": laser_nm}
    result, first = [], 0
    for shifts, note, rows in blocks.values():
        columns = {
            "file": [path] if len(subfiles) == 1 else [f"{path}[{first + i}]" for i in range(len(rows))],
            "z_value": [None if z is None else float(z) for _, z in rows],
        }
        result.append(Block(shifts, np.stack([row for row, _ in rows]), columns, {**facts, "converted": note}))
        first += len(rows)
    return result
