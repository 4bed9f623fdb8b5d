"""Read a user's spectrum files, whatever wrote them: each file's format is told by its content
(magic bytes, header keys), the extension being a hint only, and the file is read by the reader
of its format family, or refused in one line naming the format and what is missing.

A batch reads every readable file and lists the others with their reasons; nothing is dropped
silently, and a file is never read in a format it is not in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from ramanid.errors import RamanIdError, SpectrumFormatError
from ramanid.io.block import Block
from ramanid.io.calibration import AxisCorrection
from ramanid.io.rruff import Skipped, parse_rruff, read_rruff
from ramanid.io.tables import MAX_FILE_BYTES, check_text_size, read_wide_csv, wide_separator
from ramanid.io.text import decode, reject_non_spectrum, utf16_codec
from ramanid.io.textfiles import read_text_spectra
from ramanid.spectra import SpectraSet, Spectrum

#: what a folder's files are read for, by extension (other files in a folder are left alone)
SUFFIXES = {
    ".txt", ".csv", ".tsv", ".dat", ".xy", ".asc", ".prn",
    ".wdf", ".spc", ".jdx", ".dx", ".jcamp", ".xml", ".tvf", ".spa", ".spe", ".l6s", ".sif",
}  # fmt: skip
#: the formats ramanid reads, for messages and ``ramanid read``
FORMATS = (
    "RRUFF text and zips",
    "two- and many-column text in any dialect (tab, ';', ',', spaces; decimal commas; UTF-16)",
    "wide CSV (shifts as column titles)",
    "Horiba LabSpec text and XML",
    "B&W Tek BWSpec text",
    "Renishaw WiRE .wdf",
    "Galactic .spc",
    "Bruker OPUS",
    "JCAMP-DX",
    "TriVista .tvf",
    ".npy",
)
#: binary formats ramanid knows but no open reader it uses reads: refused, naming what to do
UNREAD = {
    ".spa": "Thermo OMNIC .spa, which no open reader ramanid uses reads: export it from OMNIC as CSV or SPC",
    ".spe": "Princeton Instruments .spe, which no open reader ramanid uses reads: export it from LightField as text",
    ".l6s": "Horiba LabSpec 6 binary (.l6s), which no open reader supports: export it from LabSpec as text",
    ".sif": "Andor .sif, which no open reader ramanid uses reads: export it from Solis as text",
    ".ngc": "Horiba LabSpec 5 binary (.ngc), which no open reader supports: export it from LabSpec as text",
}
_OPUS = b"\x0a\x0a\xfe\xfe"
_SPC_LAYOUTS = (0x4B, 0x4C, 0x4D)


def read_spectrum_files(
    paths: Iterable[str | Path], laser_nm: float | None = None, calibration: AxisCorrection | None = None
) -> tuple[list[Spectrum], list[Skipped]]:
    """Every spectrum in ``paths`` (files, folders, RRUFF zips), in order, and the files skipped.

    ``laser_nm`` is the excitation wavelength for files whose axis needs one and does not say it;
    ``calibration`` corrects every axis for the instrument (:mod:`ramanid.io.calibration`).
    """
    spectra, skipped = _read_all(paths, laser_nm)
    if calibration is None:
        return spectra, skipped
    corrected = []
    for s in spectra:
        try:
            corrected.append(calibration.apply(s))
        except SpectrumFormatError as exc:
            skipped.append(Skipped(s.source, str(exc)))
    return corrected, skipped


def _read_all(paths: Iterable[str | Path], laser_nm: float | None) -> tuple[list[Spectrum], list[Skipped]]:
    spectra, skipped = [], []
    for path in map(Path, paths):
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and _wanted(p))
            if not files:
                skipped.append(Skipped(str(path), f"{path}: no spectrum files ({', '.join(sorted(SUFFIXES))})"))
            sub, bad = _read_all(files, laser_nm)
        elif path.suffix.lower() == ".zip":
            try:
                sub, bad = read_rruff(path)
            except RamanIdError as exc:
                sub, bad = [], [Skipped(str(path), str(exc))]
            if not sub and not bad:
                bad = [Skipped(str(path), f"{path}: no spectrum files (.txt) in the zip")]
        else:
            try:
                sub, bad = read_one(path, laser_nm), []
            except RamanIdError as exc:
                sub, bad = [], [Skipped(str(path), str(exc))]
        spectra += sub
        skipped += bad
    return spectra, skipped


def read_one(path: Path, laser_nm: float | None = None) -> list[Spectrum]:
    """The spectra in one file, by its format (see :func:`sniff`)."""
    return [s for block in read_blocks(path, laser_nm) for s in _spectra_of(block)]


def read_blocks(path: Path, laser_nm: float | None = None) -> list[Block | SpectraSet | Spectrum]:
    """The spectra of one file as its reader gives them: blocks sharing one axis (maps, line scans,
    series) or single spectra.
    """
    path = Path(path)
    kind = sniff(path)
    source = str(path)
    if kind == "wdf" or kind == "labspec_xml" or kind == "tvf":
        from ramanid.io.rosetta import read_rosetta

        return read_rosetta(source, kind, laser_nm)
    if kind == "spc":
        from ramanid.io.spc import read_spc

        return read_spc(source, laser_nm)
    if kind == "opus":
        from ramanid.io.opus import read_opus

        return read_opus(source, laser_nm)
    if kind == "jcamp":
        from ramanid.io.jcampdx import read_jcamp

        return read_jcamp(source, laser_nm)
    if kind == "npy":
        raise SpectrumFormatError(source, "a .npy matrix has no axis of its own: use 'ramanid build table --axis'")
    data = path.read_bytes()
    if kind == "rruff":
        return [parse_rruff(data, source)]
    text = decode(data)
    reject_non_spectrum(text, source)
    if kind == "wide":
        table = read_wide_csv(path)
        table.meta["file"] = [f"{path}[{i}]" for i in range(len(table))]
        return [table]
    return read_text_spectra(text, source, laser_nm)


def sniff(path: Path) -> str:
    """The format of a file, from its first bytes: a reader's key, or a :class:`SpectrumFormatError`
    naming a format ramanid knows but does not read (or saying it knows none).
    """
    source = str(path)
    if not path.is_file():
        raise SpectrumFormatError(source, "no such file")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise SpectrumFormatError(source, f"{size:,} bytes: larger than any spectrum file (limit {MAX_FILE_BYTES:,})")
    with open(path, "rb") as fh:
        head = fh.read(4096)
    suffix = path.suffix.lower()
    if head[:4] == b"WDF1":
        return "wdf"
    if head[:4] == _OPUS:
        return "opus"
    if head.startswith(b"Spectral Data File"):
        raise SpectrumFormatError(source, UNREAD[".spa"])
    if head[:6] == b"\x93NUMPY":
        return "npy"
    binary = b"\x00" in head and utf16_codec(head) is None
    if binary and len(head) > 1 and head[1] in _SPC_LAYOUTS and (suffix == ".spc" or len(head) >= 512):
        return "spc"
    if binary:
        if suffix in UNREAD:
            raise SpectrumFormatError(source, UNREAD[suffix])
        raise SpectrumFormatError(source, f"a binary file in no format ramanid reads (it reads {', '.join(FORMATS)})")
    check_text_size(path)
    text = decode(head).lstrip()
    if text.startswith("<"):
        if "<LSX" in text[:2000]:
            return "labspec_xml"
        if "XmlMain" in text[:2000] or "TriVista" in text[:2000]:
            return "tvf"
        if text[:200].lower().startswith(("<!doctype html", "<html", "<head")):
            return "text"  # the text reader explains an HTML page
        raise SpectrumFormatError(source, "an XML file of no format ramanid reads (it reads LabSpec XML and TriVista)")
    if text.startswith("##"):
        return "jcamp" if "##JCAMP-DX" in text[:4000].upper() else "rruff"
    if wide_separator(text) is not None:
        return "wide"
    return "text"


def _wanted(path: Path) -> bool:
    """A file a folder is read for: a known extension, or OPUS's numbered ones (``.0``, ``.0001``)."""
    suffix = path.suffix.lower()
    return suffix in SUFFIXES or (len(suffix) > 1 and suffix[1:].isdigit())


def _spectra_of(block: Block | SpectraSet | Spectrum) -> list[Spectrum]:
    if isinstance(block, Spectrum):
        return [block]
    if isinstance(block, Block):
        return block.spectra()
    records = block.meta.to_dict("records")
    return [
        Spectrum(block.shifts, row.astype(np.float64), {k: v for k, v in record.items() if _present(v)})
        for row, record in zip(block.intensities, records, strict=True)
    ]


def _present(value) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value))


def describe_file(path: Path, laser_nm: float | None = None) -> dict:
    """What ``ramanid read`` says of one file: its format and reader, how many spectra, their axis
    (range, the unit the file gave, what was converted), the laser, the stage coordinates, and
    notes; or why it was refused.
    """
    try:
        spectra = read_one(Path(path), laser_nm)
    except RamanIdError as exc:
        return {"file": str(path), "refused": str(exc)}
    first = spectra[0].meta if spectra else {}
    lows, highs = [s.shifts[0] for s in spectra], [s.shifts[-1] for s in spectra]
    points = sorted({len(s.shifts) for s in spectra})
    report = {
        "file": str(path),
        "format": first.get("format", "RRUFF text" if "rruff_id" in first else "text"),
        "reader": first.get("reader", "ramanid RRUFF reader" if "rruff_id" in first else "ramanid"),
        "spectra": len(spectra),
        "points": points[0] if len(points) == 1 else points,
        "range_cm1": [round(float(min(lows)), 2), round(float(max(highs)), 2)] if spectra else None,
        "x_unit": first.get("x_unit", "raman shift (cm-1)"),
        "laser_nm": first.get("laser_nm", first.get("wavelength")),
    }
    for key in ("converted", "note", "instrument", "acquisition_time_s", "accumulations", "mineral"):
        if key in first:
            report[key] = first[key]
    coordinates = {
        axis: [float(np.min(values)), float(np.max(values))]
        for axis in ("x", "y", "z", "distance", "time", "series")
        if len(values := [s.meta[axis] for s in spectra if isinstance(s.meta.get(axis), (int, float))]) > 0
    }
    if coordinates:
        report["coordinates"] = coordinates
    return report
