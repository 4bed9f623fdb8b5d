"""Renishaw WiRE ``.wdf``, Horiba LabSpec XML and TriVista ``.tvf``, read by rosettasciio
(the HyperSpy project's readers: https://hyperspy.org/rosettasciio).

A file is one or more blocks of spectra on one axis: a single spectrum, a line scan, a depth or
time series, or a map, each spectrum with its stage coordinates (``x``, ``y``, ``z``, the
distance along a line, or the time) in the metadata. An acquisition stopped part way keeps the
spectra it has and says how many are missing. The axis becomes Raman shift with the file's laser
wavelength (:mod:`ramanid.io.axis`); an axis of unknown unit is refused.
"""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager

import numpy as np

from ramanid.errors import SpectrumFormatError
from ramanid.io.axis import ENERGY, SHIFT, WAVELENGTH, WAVENUMBER, ascending, check_raman_range, to_raman_shift
from ramanid.io.block import Block, package_version

#: what each format is called, and rosettasciio's module for it
FORMATS = {
    "wdf": ("Renishaw WiRE .wdf", "rsciio.renishaw"),
    "labspec_xml": ("Horiba LabSpec XML", "rsciio.jobinyvon"),
    "tvf": ("TriVista .tvf", "rsciio.trivista"),
}
#: stage axes, by rosettasciio's name, and the metadata column each becomes
COORDINATES = {"X": "x", "Y": "y", "Z": "z", "Abs. Distance": "distance", "Time": "time", "Depth": "z"}


def read_rosetta(path: str, kind: str, laser_nm: float | None = None) -> list[Block]:
    """The blocks of spectra in ``path``, a file of ``kind`` (a key of :data:`FORMATS`)."""
    import importlib

    name, module = FORMATS[kind]
    reader = importlib.import_module(module).file_reader
    with _captured_log() as messages:
        try:
            signals = reader(path)
        except Exception as exc:  # noqa: BLE001 - a damaged file fails inside the reader in many ways
            raise SpectrumFormatError(
                path, f"{name}, but rosettasciio could not read it ({type(exc).__name__}: {exc})"
            ) from exc
    blocks = []
    for signal in signals:
        spectral = [a for a in signal["axes"] if not a.get("navigate")]
        data = np.asarray(signal["data"])
        if len(spectral) != 1 or data.dtype.kind not in "fiu":
            continue  # the white-light image of a map, not spectra
        blocks.append(_block(signal, spectral[0], data, name, path, laser_nm, messages))
    if not blocks:
        raise SpectrumFormatError(path, f"{name} with no spectra in it")
    return blocks


def _block(signal: dict, axis: dict, data: np.ndarray, name: str, path: str, laser_nm, messages) -> Block:
    metadata = signal.get("metadata", {})
    file_laser = metadata.get("Acquisition_instrument", {}).get("Laser", {}).get("wavelength")
    laser = float(file_laser) if file_laser else laser_nm
    unit = _unit(axis, name, path)
    x = _values(axis)
    shifts, note = to_raman_shift(x, unit, laser, path, absolute_wavenumber=unit == WAVENUMBER)
    check_raman_range(shifts, path)
    navigation = [a for a in signal["axes"] if a.get("navigate")]
    matrix = data.reshape(-1, data.shape[-1]).astype(np.float64)
    columns = {"file": [path] if len(matrix) == 1 else [f"{path}[{i}]" for i in range(len(matrix))]}
    columns.update(_coordinates(navigation, data.shape[:-1]))
    order = ascending(shifts, path)
    instrument = metadata.get("Acquisition_instrument", {})
    detector = instrument.get("Detector", {})
    facts = {
        "format": name,
        "reader": f"rosettasciio {package_version('rosettasciio')}",
        "laser_nm": laser,
        "instrument": detector.get("model")
        or metadata.get("Acquisition_instrument", {}).get("Spectrometer", {}).get("model"),
        "acquisition_time_s": detector.get("integration_time") or detector.get("exposure_per_frame"),
        "accumulations": detector.get("frames"),
        "x_unit": unit,
        "converted": note,
        "title": metadata.get("General", {}).get("title"),
    }
    missing = next((m for m in messages if "Unfinished measurement" in m), None)
    if missing:
        facts["note"] = missing.split(". Trying")[0]
    unmeasured = int((~np.isfinite(matrix).all(axis=1)).sum())
    if unmeasured:
        facts["note"] = f"{unmeasured} spectra hold NaN values (not measured)"
    return Block(shifts[order], matrix[:, order], columns, {k: v for k, v in facts.items() if v not in (None, "")})


def _unit(axis: dict, name: str, path: str) -> str:
    units, label = str(axis.get("units") or ""), str(axis.get("name") or "")
    if units == "1/cm":
        return WAVENUMBER if label.lower() == "wavenumber" else SHIFT
    if units == "nm":
        return WAVELENGTH
    if units == "eV":
        return ENERGY
    raise SpectrumFormatError(
        path,
        f"{name} whose x axis is {label or 'unnamed'} in {units or 'no unit'}: ramanid cannot tell it is Raman shift",
    )


def _values(axis: dict) -> np.ndarray:
    if axis.get("axis") is not None:
        return np.asarray(axis["axis"], dtype=np.float64)
    return float(axis.get("offset", 0)) + float(axis.get("scale", 1)) * np.arange(int(axis["size"]))


def _coordinates(navigation: list[dict], shape: tuple) -> dict:
    """Each spectrum's stage coordinates, in the order of the flattened data (C order)."""
    if not shape:
        return {}
    indices = np.indices(shape).reshape(len(shape), -1)
    columns = {}
    for axis in navigation:
        position = axis.get("index_in_array", navigation.index(axis))
        column = COORDINATES.get(str(axis.get("name")), str(axis.get("name")).lower())
        values = _values({**axis, "size": shape[position]})
        columns[column] = values[indices[position]]
        columns[f"{column}_index"] = indices[position]
    return columns


@contextmanager
def _captured_log():
    """Rosettasciio's log messages while reading, kept (to report) instead of printed."""
    messages: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    logger = logging.getLogger("rsciio")
    handlers, level, propagate = logger.handlers[:], logger.level, logger.propagate
    logger.handlers, logger.propagate = [Keep()], False
    logger.setLevel(logging.INFO)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield messages
    finally:
        logger.handlers, logger.propagate = handlers, propagate
        logger.setLevel(level)
