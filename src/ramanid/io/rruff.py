"""Readers for RRUFF Raman files: one ``.txt``, a folder of them, or the official zip.

Cite: Lafuente B, Downs R T, Yang H, Stone N (2015), *The power of databases: the RRUFF project*.
A file is ``##KEY=value`` headers, ``shift, intensity`` rows, then ``##END=``; its name is
``Name__RRUFFID__Raman__<wavelength>__<angle>__<orientation>__Raman_Data_<RAW|Processed>__<id>.txt``.
"""

from __future__ import annotations

import html
import lzma
import math
import multiprocessing
import os
import signal
import zipfile
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Iterator, Sequence

from tqdm.auto import tqdm

from ramanid.cores import available_cores
from ramanid.errors import DatasetError, SpectrumFormatError
from ramanid.io.text import check_xy, decode, parse_xy, parse_xy_many, reject_non_spectrum
from ramanid.spectra import Spectrum

#: a zip member larger than this once decompressed is skipped (RRUFF's largest file is about 200 kB)
MAX_MEMBER_BYTES = 64 * 2**20
#: no text file of spectra compresses this much; a member that does is a zip bomb
MAX_RATIO = 200

#: header keys -> metadata column names
HEADER_COLUMNS = {
    "NAMES": "mineral",
    "RRUFFID": "rruff_id",
    "IDEAL CHEMISTRY": "chemistry",
    "MEASURED CHEMISTRY": "measured_chemistry",
    "LOCALITY": "locality",
    "SOURCE": "source",
    "DESCRIPTION": "description",
    "STATUS": "status",
    "URL": "url",
    "OWNER": "owner",
}


def parse_filename(name: str) -> dict:
    """Metadata from an official RRUFF file name; ``{}`` for a name in another pattern.

    Blank and fractional wavelengths (``Raman____0``, ``514.5``, ``458.5_nm``) are read as
    ``nan``, ``514.5`` and ``458.5``.
    """
    stem = PurePosixPath(name).name
    if stem.lower().endswith(".txt"):
        stem = stem[:-4]
    parts = stem.split("__")
    if len(parts) != 8 or not parts[6].lower().startswith("raman_data_"):
        return {}
    mineral, rruff_id, _, wavelength, angle, orientation, data_kind, file_id = parts
    wavelength = wavelength.lower().removesuffix("_nm").removesuffix("nm").strip()
    try:
        wavelength_nm = float(wavelength) if wavelength else math.nan
    except ValueError:
        wavelength_nm = math.nan
    kind = data_kind[len("raman_data_") :].lower()
    return {
        "mineral": mineral.replace("_", " ").strip(),
        "rruff_id": rruff_id,
        "wavelength": wavelength_nm,
        "angle": angle,
        "orientation": orientation,
        "kind": "processed" if kind == "processed" else "raw" if kind == "raw" else kind,
        "file_id": file_id,
    }


def parse_rruff(data: bytes, source: str) -> Spectrum:
    """Parse the bytes of one RRUFF text file.

    Raises
    ------
    SpectrumFormatError
        Naming ``source`` and the line, for an empty file, an HTML page, no numeric rows,
        NaN/inf values, a single point, or too many unreadable rows.
    """
    return parse_rruff_many([(source, data)], strict=True)[0]


def parse_rruff_many(items: Sequence[tuple[str, bytes]], strict: bool = False) -> list[Spectrum | Skipped]:
    """Parse many files at once: one C parser call for all their rows where they are clean.

    A file that cannot be read becomes a :class:`Skipped` (or raises, if ``strict``).
    """
    out: list = [None] * len(items)
    split = {}
    for i, (name, data) in enumerate(items):
        try:
            split[i] = _split_rruff(data, name)
        except SpectrumFormatError as exc:
            out[i] = _skip_or_raise(exc, strict)
    tables = parse_xy_many([block for _, block, _ in split.values()])
    for j, (i, (meta, block, first_line)) in enumerate(split.items()):
        try:
            if tables is None:
                shifts, intensities, skipped = parse_xy(decode(block), meta["file"], first_line)
            else:
                (shifts, intensities), skipped = check_xy(tables[j], meta["file"], first_line), 0
        except SpectrumFormatError as exc:
            out[i] = _skip_or_raise(exc, strict)
            continue
        meta.update(n_points=len(shifts), shift_min=float(shifts[0]), shift_max=float(shifts[-1]), skipped_rows=skipped)
        out[i] = Spectrum(shifts, intensities, meta)
    return out


def _skip_or_raise(exc: SpectrumFormatError, strict: bool) -> Skipped:
    if strict:
        raise exc
    return Skipped(exc.source, str(exc))


def _split_rruff(data: bytes, source: str) -> tuple[dict, bytes, int]:
    """(metadata from name and headers, the data rows as bytes, line number of the first row).

    Only the few header lines are decoded; the rows stay bytes for the C parser.
    """
    reject_non_spectrum(decode(data[:200]) if data.strip() else "", source)
    if data.count(b"\r") > data.count(b"\r\n"):  # old-Mac or mixed line ends: unify them first
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    meta = {"file": source, **parse_filename(source)}
    pos, line = 0, 1
    while pos < len(data):
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end
        row = data[pos:end]
        if row.startswith(b"##"):
            key, _, value = decode(row[2:]).partition("=")
            column = HEADER_COLUMNS.get(key.strip().upper())
            if column and value.strip():
                meta[column] = html.unescape(value.strip())
        elif row.strip():
            break
        pos, line = end + 1, line + 1
    stop = data.find(b"\n##", pos)
    return meta, data[pos:] if stop < 0 else data[pos:stop], line


def read_rruff_file(path: str | Path) -> Spectrum:
    """Read one RRUFF ``.txt`` file from disk."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SpectrumFormatError(str(path), f"cannot read the file ({exc.strerror})") from exc
    return parse_rruff(data, str(path))


@dataclass(frozen=True)
class Skipped:
    """A file left out of a batch, with the reason."""

    file: str
    reason: str


def list_members(source: str | Path | Sequence[str | Path]) -> tuple[str | None, list[str]]:
    """The zip (or ``None``) and the ``.txt`` files in a zip, a folder, or a list of files."""
    if isinstance(source, (list, tuple)):
        return None, [str(p) for p in source]
    path = Path(source)
    if path.is_dir():
        return None, sorted(str(p) for p in path.rglob("*") if p.suffix.lower() == ".txt")
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder: expected a RRUFF zip, a folder or .txt files")
    if path.suffix.lower() == ".txt":
        return None, [str(path)]
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.lower().endswith(".txt") and not n.endswith("/")]
    except (zipfile.BadZipFile, OSError) as exc:
        raise DatasetError(f"{path}: not a readable zip archive ({exc}); is the download complete?") from exc
    return str(path), sorted(names)


def iter_rruff(
    source: str | Path | Sequence[str | Path],
    select: Callable[[dict], bool] | None = None,
    *,
    jobs: int | None = None,
    strict: bool = False,
    progress: bool = False,
    max_member_bytes: int = MAX_MEMBER_BYTES,
) -> Iterator[Spectrum | Skipped]:
    """Read RRUFF spectra from a zip (without unpacking it), a folder, or a list of files.

    Parameters
    ----------
    source
        The official RRUFF zip, a folder, one ``.txt`` file, or a list of files.
    select : callable, optional
        Called with the metadata from each file name; files it rejects are not even decompressed.
    jobs : int, optional
        Worker processes (default: every core). ``1`` reads in this process.
    strict : bool
        Raise on the first unreadable file instead of yielding a :class:`Skipped` for it.
    progress : bool
        Show a progress bar on stderr.
    max_member_bytes : int
        Zip members larger than this once decompressed, or compressed over :data:`MAX_RATIO`
        times, are skipped with the reason, never read (zip bombs).

    Yields
    ------
    Spectrum or Skipped
        Members refused for their size first, then every file in the sorted order of the names.
    """
    archive, names = list_members(source)
    oversized = {}
    if archive is not None:
        names, oversized = _within_limits(archive, names, max_member_bytes)
    if select is not None:
        names = [n for n in names if select(parse_filename(n))]
        oversized = {n: reason for n, reason in oversized.items() if select(parse_filename(n))}
    for name, reason in oversized.items():
        if strict:
            raise SpectrumFormatError(f"{archive}:{name}", reason.split(": ", 1)[-1])
        yield Skipped(f"{archive}:{name}", reason)
    jobs = max(1, min(jobs or available_cores(), len(names) or 1))
    chunks = _chunks(names, jobs)
    bar = tqdm(total=len(names), unit="file", disable=not progress, desc="reading")
    try:
        if jobs == 1:
            results = map(_read_chunk, [archive] * len(chunks), chunks)
            yield from _checked(results, strict, bar)
        else:
            yield from _checked(_in_workers(jobs, archive, chunks), strict, bar)
    finally:
        bar.close()


def _in_workers(jobs: int, archive: str | None, chunks: list[list[str]]) -> Iterator[list]:
    """The chunks read by ``jobs`` worker processes, in order.

    Workers ignore Ctrl-C; the parent gets it and terminates them at once, instead of waiting for
    workers blocked on a pipe nobody reads any more.
    """
    pool = _context().Pool(jobs, initializer=signal.signal, initargs=(signal.SIGINT, signal.SIG_IGN))
    try:
        yield from pool.imap(_read_chunk_star, [(archive, chunk) for chunk in chunks])
        pool.close()
    finally:
        pool.terminate()
        pool.join()


def _read_chunk_star(args):
    return _read_chunk(*args)


def _within_limits(archive: str, names: list[str], max_bytes: int) -> tuple[list[str], dict[str, str]]:
    """The members small enough to read, and a reason for each one that is not: larger than
    ``max_bytes`` once decompressed, or compressed over :data:`MAX_RATIO` times (a zip bomb).
    """
    with zipfile.ZipFile(archive) as zf:
        infos = {info.filename: info for info in zf.infolist()}
    kept, refused = [], {}
    for name in names:
        info = infos[name]
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > max_bytes:
            refused[name] = f"{archive}:{name}: {info.file_size:,} bytes decompressed, over the limit of {max_bytes:,}"
        elif ratio > MAX_RATIO and info.file_size > 1_000_000:
            refused[name] = f"{archive}:{name}: compressed {ratio:,.0f} times, which no spectrum file is (a zip bomb?)"
        else:
            kept.append(name)
    return kept, refused


def read_rruff(source, select=None, **options) -> tuple[list[Spectrum], list[Skipped]]:
    """:func:`iter_rruff` collected into (spectra, skipped files)."""
    spectra, skipped = [], []
    for item in iter_rruff(source, select, **options):
        (skipped if isinstance(item, Skipped) else spectra).append(item)
    return spectra, skipped


def _checked(results: Iterable[list], strict: bool, bar) -> Iterator[Spectrum | Skipped]:
    for chunk in results:
        for item in chunk:
            if isinstance(item, Skipped) and strict:
                raise SpectrumFormatError(item.file, item.reason.split(": ", 1)[-1])
            yield item
        bar.update(len(chunk))


def _chunks(names: list[str], jobs: int) -> list[list[str]]:
    size = max(1, min(256, math.ceil(len(names) / (jobs * 8))))
    return [names[i : i + size] for i in range(0, len(names), size)]


def _context():
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _read_chunk(archive: str | None, names: list[str]) -> list[Spectrum | Skipped]:
    """Read and parse one chunk of files; runs in a worker process."""
    if archive is None:
        return _parse_chunk(names, lambda name: Path(name).read_bytes())
    try:
        zf = _open_zip(archive, os.stat(archive).st_mtime_ns, os.getpid())
    except (OSError, zipfile.BadZipFile) as exc:
        return [Skipped(f"{archive}:{name}", f"{archive}: cannot open the zip ({exc})") for name in names]
    return _parse_chunk(names, zf.read)


@lru_cache(maxsize=2)
def _open_zip(path: str, mtime_ns: int, pid: int) -> zipfile.ZipFile:
    """One open archive per process (reading the directory of 11,000 members costs 0.1 s).

    The pid is part of the key because a forked worker must not share its parent's file offset.
    """
    return zipfile.ZipFile(path)


def _parse_chunk(names: list[str], read: Callable[[str], bytes]) -> list[Spectrum | Skipped]:
    items, unreadable = [], {}
    for name in names:
        try:
            items.append((name, read(name)))
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error, lzma.LZMAError) as exc:
            unreadable[name] = Skipped(name, f"{name}: cannot read the file ({exc})")
    parsed = iter(parse_rruff_many(items))
    return [unreadable[name] if name in unreadable else next(parsed) for name in names]
