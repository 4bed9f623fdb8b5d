"""The x axis of a spectrum file, as Raman shift in cm⁻¹: units recognised, converted, or refused.

Raman shift is ``10^7 / laser_nm - 10^7 / wavelength_nm``. An absolute wavelength (nm), an
absolute wavenumber (cm⁻¹) or a photon energy (eV) is converted with the excitation laser's
wavelength, the file's own or the one the user gives (``--laser NM``); a pixel axis needs the
file's own calibration. Whatever cannot be converted is refused, naming what is missing: a file
is never read on an axis it does not have.
"""

from __future__ import annotations

import re

import numpy as np

from ramanid.errors import SpectrumFormatError

#: eV * nm, for photon energies
EV_NM = 1239.841984
#: units of a Raman shift axis
SHIFT, WAVELENGTH, WAVENUMBER, ENERGY, PIXEL = (
    "raman shift (cm-1)",
    "wavelength (nm)",
    "wavenumber (cm-1)",
    "eV",
    "pixel",
)
#: absolute wavenumbers of visible and near-infrared lasers lie above this; Raman shifts below
ABSOLUTE_WAVENUMBER_MIN = 5000.0


def unit_of(label: str) -> str | None:
    """The axis unit a column title or unit field names ("Raman Shift (cm-1)", "Wavelength
    [nm]", "1/cm", "eV", "Pixel", ...), or None when it names none.
    """
    text = label.strip().lower().replace("⁻¹", "-1").replace("^-1", "-1")
    if re.search(r"raman|shift|\brel", text):
        return SHIFT
    if re.search(r"pixel|\bpix\b|channel|\bpoints?\b|\bindex\b", text):
        return PIXEL
    if re.search(r"wavelength|\bnm\b|lambda|nanomet", text):
        return WAVELENGTH
    if re.search(r"\bev\b|energy", text):
        return ENERGY
    if re.search(r"wavenumber|cm-1|1/cm|cm\^?-1|\bcm\b|wave ?num", text):
        return WAVENUMBER
    return None


def laser_from_text(text: str) -> float | None:
    """A laser wavelength in nm from a header value such as ``532nm_Edge``, ``785 nm``, ``532,02``."""
    match = re.search(r"(\d{3,4}(?:[.,]\d+)?)", str(text))
    if not match:
        return None
    value = float(match.group(1).replace(",", "."))
    return value if 150 <= value <= 2500 else None


def to_raman_shift(
    x: np.ndarray, unit: str, laser_nm: float | None, source: str, absolute_wavenumber: bool | None = None
) -> tuple[np.ndarray, str | None]:
    """``(shifts, note)``: ``x`` in ``unit`` as Raman shift, and what was converted (None if nothing).

    A ``wavenumber`` axis is a Raman shift unless ``absolute_wavenumber`` says otherwise or its
    values lie above :data:`ABSOLUTE_WAVENUMBER_MIN` (no Raman shift does); then it is converted.
    """
    x = np.asarray(x, dtype=np.float64)
    if unit == SHIFT or (unit == WAVENUMBER and not _absolute(x, absolute_wavenumber)):
        return x, None
    if unit == PIXEL:
        raise SpectrumFormatError(
            source, "the x axis is pixel numbers and the file holds no calibration to Raman shift: export it in cm-1"
        )
    names = {
        WAVELENGTH: "absolute wavelength (nm)",
        WAVENUMBER: "absolute wavenumber (cm-1)",
        ENERGY: "photon energy (eV)",
    }
    if unit not in names:
        raise SpectrumFormatError(
            source, f"the x axis is in {unit!r}, which is not a Raman shift, wavelength or energy"
        )
    if laser_nm is None:
        raise SpectrumFormatError(
            source,
            f"the x axis is {names[unit]} and the file does not say the laser wavelength: give it with --laser NM",
        )
    if not 150 <= laser_nm <= 2500:
        raise SpectrumFormatError(source, f"laser wavelength {laser_nm:g} nm: expected 150-2500 nm")
    wavelength = {
        WAVELENGTH: x,
        WAVENUMBER: 1e7 / np.where(x > 0, x, np.nan),
        ENERGY: EV_NM / np.where(x > 0, x, np.nan),
    }[unit]
    shifts = 1e7 / laser_nm - 1e7 / wavelength
    if not np.isfinite(shifts).all():
        raise SpectrumFormatError(source, f"the x axis in {names[unit]} holds values that are not positive")
    return shifts, f"{names[unit]} converted to Raman shift with a laser of {laser_nm:g} nm"


def _absolute(x: np.ndarray, stated: bool | None) -> bool:
    if stated is not None:
        return stated
    return bool(np.nanmin(x) > ABSOLUTE_WAVENUMBER_MIN)


#: no Raman shift lies beyond these (cm-1): an axis that does is another quantity
RAMAN_LIMITS = (-10000.0, 10000.0)


def check_raman_range(shifts: np.ndarray, source: str) -> None:
    """Refuse an axis no Raman spectrum has: beyond :data:`RAMAN_LIMITS`, it is another quantity."""
    low, high = float(np.nanmin(shifts)), float(np.nanmax(shifts))
    if low < RAMAN_LIMITS[0] or high > RAMAN_LIMITS[1]:
        raise SpectrumFormatError(
            source,
            f"the x axis runs {low:.6g} to {high:.6g}, which is no Raman shift (expected {RAMAN_LIMITS[0]:g} to "
            f"{RAMAN_LIMITS[1]:g} cm-1): is it a wavelength or an absolute wavenumber? give --laser NM",
        )


def ascending(shifts: np.ndarray, source: str):
    """An index that puts ``shifts`` in increasing order: a slice where the axis runs one way
    (as instruments write it, often from high to low), else the sorting permutation; an axis
    that repeats a value is refused.
    """
    steps = np.diff(shifts)
    if (steps > 0).all():
        return slice(None)
    if (steps < 0).all():
        return slice(None, None, -1)
    order = np.argsort(shifts, kind="stable")
    if np.any(np.diff(shifts[order]) == 0):
        raise SpectrumFormatError(source, "the x axis repeats a value: expected one intensity per shift")
    return order
