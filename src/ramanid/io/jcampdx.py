"""JCAMP-DX (IUPAC), read by the jcamp package (https://pypi.org/project/jcamp/), in every data
compression of the standard (AFFN, PAC, SQZ, DIF, DUP).

The file's ``##DATA TYPE`` says what it is: a Raman spectrum is read on its axis (``##XUNITS``:
1/CM is Raman shift in a Raman file, nanometres are converted with the laser); infrared, UV-Vis,
NMR and mass spectra are refused.
"""

from __future__ import annotations

import numpy as np

from ramanid.errors import SpectrumFormatError
from ramanid.io.axis import SHIFT, ascending, check_raman_range, laser_from_text, to_raman_shift, unit_of
from ramanid.io.block import package_version
from ramanid.spectra import Spectrum

NAME = "JCAMP-DX"


def read_jcamp(path: str, laser_nm: float | None = None) -> list[Spectrum]:
    """The spectrum of a JCAMP-DX file, or a refusal naming its data type."""
    import jcamp

    try:
        data = jcamp.readfile(path)
        x, y = np.asarray(data["x"], dtype=np.float64), np.asarray(data["y"], dtype=np.float64)
    except Exception as exc:  # noqa: BLE001 - a damaged file fails inside jcamp in many ways
        raise SpectrumFormatError(
            path, f"{NAME}, but the jcamp reader could not read it ({type(exc).__name__}: {exc})"
        ) from exc
    kind = str(data.get("data type", "")).strip()
    if "RAMAN" not in kind.upper():
        units = f"x in {data.get('xunits', '?')}, y in {data.get('yunits', '?')}"
        raise SpectrumFormatError(path, f"{NAME} of DATA TYPE={kind or 'not given'} ({units}): not a Raman spectrum")
    laser = laser_nm or laser_from_text(str(data.get("$laser wavelength", data.get("laser wavelength", ""))))
    unit = unit_of(str(data.get("xunits", ""))) or SHIFT
    shifts, note = to_raman_shift(x, SHIFT if unit in (SHIFT, "wavenumber (cm-1)") else unit, laser, path)
    check_raman_range(shifts, path)
    order = ascending(shifts, path)
    meta = {"file": path, "format": NAME, "reader": f"jcamp {package_version('jcamp')}", "x_unit": unit}
    if data.get("title"):
        meta["title"] = data["title"]
    if note:
        meta["converted"] = note
    if laser:
        meta["laser_nm"] = laser
    return [Spectrum(shifts[order], y[order], meta)]
