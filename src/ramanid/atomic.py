"""Atomic file output: write a temporary file beside the target, then rename.

Temporary names carry the writing process's id (``.NAME.PID.XXXX.tmp``), so that the next
write to the same target removes what a killed run left, and restores a folder a killed run
had moved aside. A folder is only replaced when ramanid wrote it: see :data:`OWN_FOLDERS`.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from ramanid.errors import OutputError

#: the folders ramanid writes, by what writes them: the file that marks one, and for a folder
#: replaced whole the entries it may hold (anything else in it is the user's, and kept)
OWN_FOLDERS = {
    "model": ("bundle.json", frozenset({"bundle.json", "weights.safetensors", "library.npz"})),
    "map": (
        ".ramanid-map",
        frozenset({".ramanid-map", "pixels.csv", "summary.csv", "phases.png", "confidence.png", "report.html"}),
    ),
    "cv": (".ramanid-cv", None),
    "demo": (".ramanid-demo", None),
}
#: what ramanid itself keeps in a folder while it writes there
LOCK = ".lock"
#: a temporary name from a ramanid older than the process ids in names is stale after this long
STALE_UNNAMED_S = 24 * 3600


@contextmanager
def atomic_write(path: str | Path):
    """Yield a temporary path; on success it replaces ``path`` in one rename.

    On error the temporary file is removed and ``path`` keeps what it had before.
    """
    path = check_output(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_prefix(path), suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the permissions open() would
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_folder(path: str | Path, kind: str = "model"):
    """Yield a temporary folder beside ``path``; on success it replaces ``path`` whole.

    ``path`` must be new, empty, or a folder of ``kind`` that ramanid wrote (:func:`check_replaceable`).
    A folder is never left half old and half new: the old one is renamed aside, the new one
    renamed in, then the old one removed. Interrupts wait until both renames are done, and any
    error between them puts the old folder back. On error the temporary folder is removed and
    ``path`` keeps what it had.
    """
    path = Path(path)
    check_output(path, folder=True, kind=kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=_prefix(path), suffix=".tmp"))
    os.chmod(tmp, 0o777 & ~_umask())
    old = None
    try:
        yield tmp
        marker = OWN_FOLDERS[kind][0]
        if not (tmp / marker).exists():
            (tmp / marker).touch()
        check_replaceable(path, kind)  # the folder may have changed while the work ran
        with _interrupts_deferred():
            if path.exists():
                old = Path(tempfile.mkdtemp(dir=path.parent, prefix=_prefix(path), suffix=".old"))
                os.rmdir(old)
                os.rename(path, old)
            os.rename(tmp, path)
    except BaseException:
        if old is not None and not path.exists():
            os.rename(old, path)
            old = None
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def check_output(path: str | Path, folder: bool = False, kind: str | None = None) -> Path:
    """Refuse an output path that cannot or must not be written, before any work starts.

    A device, pipe or other special file, a symbolic link, a read-only file, a file where a
    folder is wanted (or the reverse), a parent folder that cannot be written, and (with
    ``kind``) a folder that is not one ramanid wrote are all an :class:`OutputError` naming the path.
    """
    path = Path(path)
    if path.is_symlink():
        raise OutputError(f"{path}: is a symbolic link; give the real path to write to")
    if path.exists():
        if folder and not path.is_dir():
            raise OutputError(f"{path}: exists and is not a folder")
        if not folder and not path.is_file():
            raise OutputError(f"{path}: exists and is not a regular file (a folder, device or pipe)")
        if not path.stat().st_mode & 0o222:  # mode bits, since root passes every access check
            raise OutputError(f"{path}: exists and is read-only")
    if kind is not None:
        check_replaceable(path, kind)
    parent = next((p for p in path.absolute().parents if p.exists()), Path("/"))
    try:  # the one check that holds for root too: create a file there
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        raise OutputError(f"{path}: cannot write into {parent} ({exc.strerror})") from exc
    return path


def check_replaceable(path: str | Path, kind: str) -> None:
    """Refuse to write a ``kind`` of output into a folder that holds anything of the user's:
    it must be new, empty, or marked as one ramanid wrote, holding (for a folder replaced
    whole) nothing but what ramanid puts there.
    """
    path = Path(path)
    if not path.is_dir():
        return
    marker, own = OWN_FOLDERS[kind]
    entries = {p.name for p in path.iterdir()} - {LOCK}
    if (path / marker).is_file():
        entries -= own if own is not None else entries
    if entries:
        shown = ", ".join(sorted(entries)[:4]) + (f" and {len(entries) - 4} more" if len(entries) > 4 else "")
        raise OutputError(
            f"{path}: holds {shown}, which ramanid did not write; give a new or empty folder, "
            f"or a {kind} folder ramanid wrote (nothing else of yours is replaced)"
        )


def mark_folder(path: str | Path, kind: str) -> Path:
    """Create the folder ``path`` (checked by :func:`check_replaceable`) and mark it as ramanid's ``kind``."""
    path = Path(path)
    check_replaceable(path, kind)
    path.mkdir(parents=True, exist_ok=True)
    (path / OWN_FOLDERS[kind][0]).touch()
    return path


def clean_stale(path: str | Path) -> None:
    """Remove the temporary copies of ``path`` that runs no longer alive left beside it; a folder
    such a run had moved aside (``.old``) is put back if ``path`` itself is missing.
    """
    path = Path(path)
    for entry in sorted(path.parent.glob(f".{glob.escape(path.name)}.*")):
        if entry.suffix not in (".tmp", ".old") or not _left_by_a_dead_run(entry, path.name):
            continue
        if entry.suffix == ".old" and not path.exists():
            os.rename(entry, path)
        elif entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


@contextmanager
def folder_lock(path: str | Path, beside: bool = False):
    """Hold an exclusive lock on the folder ``path`` while the block runs; if another process
    holds it, an :class:`OutputError` at once. The lock file is ``path/.lock``, or with
    ``beside`` ``.NAME.lock`` next to it (for a folder that is replaced whole while locked).
    """
    import fcntl

    path = Path(path)
    if beside:
        lock = path.parent / f".{path.name}.lock"
    else:
        path.mkdir(parents=True, exist_ok=True)
        lock = path / LOCK
    with open(lock, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise OutputError(
                f"{path}: another ramanid run is writing here; wait for it or choose another folder"
            ) from exc
        try:
            yield path
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _interrupts_deferred():
    """Hold Ctrl-C and SIGTERM until the block is done, then deliver them (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = {
        s: signal.signal(s, lambda number, frame: received.append(number)) for s in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if received:
            signal.raise_signal(received[0])


def _prefix(path: Path) -> str:
    return f".{path.name}.{os.getpid()}."


def _left_by_a_dead_run(entry: Path, name: str) -> bool:
    """Whether ``entry``, a temporary ``.NAME.PID.XXXXXXXX.tmp`` (or ``.old``) of ``name``, was
    left by a process that has ended.
    """
    parts = entry.name[len(name) + 2 :].split(".")
    if len(parts) == 2:  # .NAME.XXXXXXXX.tmp, written before names carried a process id
        return time.time() - entry.lstat().st_mtime > STALE_UNNAMED_S
    if len(parts) != 3 or not parts[0].isdigit() or int(parts[0]) <= 0:
        return False
    try:
        os.kill(int(parts[0]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, and another user's
        return False
    return False


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask
