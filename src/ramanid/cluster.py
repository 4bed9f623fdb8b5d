"""dask.distributed clients for maps and cross-validation beyond one machine."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools

from ramanid.errors import RamanIdError

#: how long to wait for a scheduler to answer before saying it cannot be reached
CONNECT_TIMEOUT = "10s"
#: how long to wait for a scheduler's first worker before saying it has none (seconds)
WORKER_TIMEOUT = 60.0
#: glibc's ``mallopt`` option for the size from which an allocation gets a mapping of its own
_M_MMAP_THRESHOLD = -3
#: arrays up to this size come from the heap on a worker (glibc's own ceiling on 64-bit systems)
HEAP_ARRAYS_UP_TO = 32 * 2**20


@functools.cache  # once per process: finding libc runs ldconfig, and every chunk calls this
def keep_arrays_in_heap() -> bool:
    """Let glibc serve arrays of up to :data:`HEAP_ARRAYS_UP_TO` from its heap in this process, as
    it does by default once such arrays have been freed. dask starts its workers with
    ``MALLOC_TRIM_THRESHOLD_`` set, which freezes the threshold at 128 kB: every array of a map's
    chunk is then mapped and page-faulted afresh, and chunks ran at half the speed they run in one
    process (``benchmarks/RESULTS.md``). Returns whether it was set (glibc only).
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, HEAP_ARRAYS_UP_TO))
    except (OSError, AttributeError):  # not glibc
        return False


def on_worker(function, *args):
    """``function(*args)`` on a dask worker, its arrays kept in the heap (:func:`keep_arrays_in_heap`):
    what ``map`` and ``cv`` send a cluster.
    """
    keep_arrays_in_heap()
    return function(*args)


@contextlib.contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None):
    """A client of the scheduler at ``scheduler``, or of a local cluster of ``workers`` processes
    (dask's default cluster when neither is given); a scheduler that does not answer within
    :data:`CONNECT_TIMEOUT`, or has no worker within :data:`WORKER_TIMEOUT`, is a
    :class:`~ramanid.errors.RamanIdError` naming it.
    """
    if workers is not None and scheduler is not None:
        raise RamanIdError("give --workers (a local cluster) or --scheduler ADDRESS, not both")
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:
        raise RamanIdError("dask needs dask.distributed: pip install 'ramanid[dask]'") from exc
    if scheduler is None:
        options = {} if workers is None else {"n_workers": workers}
        with (
            LocalCluster(threads_per_worker=1, dashboard_address=None, **options) as cluster,
            Client(cluster) as client,
        ):
            yield client
        return
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - a bad address, no answer, or an answer that is not dask's
        reason = (
            f"{exc}" if isinstance(exc, (OSError, TimeoutError, ValueError)) else "it does not speak dask's protocol"
        )
        raise RamanIdError(f"cannot reach the dask scheduler at {scheduler!r} ({reason})") from exc
    with client:
        try:  # with no worker, a run would wait without a word
            client.wait_for_workers(1, timeout=WORKER_TIMEOUT)
        except TimeoutError as exc:
            raise RamanIdError(
                f"no dask worker joined the scheduler at {scheduler!r} within {WORKER_TIMEOUT:g} s: "
                "start one ('dask worker ADDRESS') where ramanid is installed"
            ) from exc
        yield client
