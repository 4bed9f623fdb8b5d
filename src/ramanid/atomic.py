"""Atomic file output: write a temporary file beside the target, then rename."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_write(path: str | Path):
    """Yield a temporary path; on success it replaces ``path`` in one rename.

    On error the temporary file is removed and ``path`` keeps what it had before.
    """
    path = check_output(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the permissions open() would
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_folder(path: str | Path):
    """Yield a temporary folder beside ``path``; on success it replaces ``path`` whole.

    A folder is never left half old and half new: the old one is renamed aside, the new one
    renamed in, then the old one removed. On error the temporary folder is removed and ``path``
    keeps what it had.
    """
    path = Path(path)
    check_output(path, folder=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
            os.rmdir(old)
            os.rename(path, old)
        os.rename(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def check_output(path: str | Path, folder: bool = False) -> Path:
    """Refuse an output path that cannot or must not be written, before any work starts.

    A device, pipe or other special file, a symbolic link, a read-only file, a file where a
    folder is wanted (or the reverse), and a parent folder that cannot be written are all a
    :class:`~ramanid.errors.OutputError` naming the path.
    """
    from ramanid.errors import OutputError

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
    parent = next((p for p in path.absolute().parents if p.exists()), Path("/"))
    try:  # the one check that holds for root too: create a file there
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        raise OutputError(f"{path}: cannot write into {parent} ({exc.strerror})") from exc
    return path


@contextmanager
def folder_lock(path: str | Path):
    """Hold an exclusive lock on the folder ``path`` (its ``.lock`` file) while the block runs;
    if another process holds it, an :class:`~ramanid.errors.OutputError` at once.
    """
    import fcntl

    from ramanid.errors import OutputError

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    with open(path / ".lock", "a") as handle:
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


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask
