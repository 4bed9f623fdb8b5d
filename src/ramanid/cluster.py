"""dask.distributed clients for maps and cross-validation beyond one machine."""

from __future__ import annotations

import contextlib

from ramanid.errors import RamanIdError

#: how long to wait for a scheduler to answer before saying it cannot be reached
CONNECT_TIMEOUT = "10s"


@contextlib.contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None):
    """A client of the scheduler at ``scheduler``, or of a local cluster of ``workers`` processes
    (dask's default cluster when neither is given); a scheduler that does not answer within
    :data:`CONNECT_TIMEOUT` is a :class:`~ramanid.errors.RamanIdError` naming it.
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
        yield client
