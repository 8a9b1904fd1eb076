"""``DaskEngine``: the items of a map run in chunks on a ``dask.distributed`` cluster.

Everything that travels goes through the remote kit (:mod:`hypernodes.engines.remote`): the plan's
spec is scattered to the workers once per map, items go as chunks of pickled bytes (one Dask task
per chunk, never per item), and each chunk's rows, callback events and cache writes come back and
are replayed here in item order.  This module only adds what is Dask's: the client and the
cluster it talks to, Dask futures seen as ``concurrent.futures`` futures (so the shared scheduling
loops wait on them), and what a lost worker looks like.

``dask.distributed`` is imported when an engine is made, not when this module is imported.
"""

from __future__ import annotations

import atexit
import pickle
import threading
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

from ..context import RunContext
from ..exceptions import ExecutorError, MapError, WorkerCrashedError
from ..plan import Plan
from .executors import Executor, make_executor
from .hypernodes import HypernodesEngine
from .remote import PlanSpec, dump_reply, in_worker, map_chunks, run_chunk, run_items
from .scheduling import stream_completed

_WHERE = "a Dask worker of DaskEngine"

#: most items in one Dask task by default (a task costs milliseconds, an item microseconds)
MAX_CHUNK = 10_000

#: compiled plan specs kept scattered on the workers per engine, most recently used last
_KEEP_BLOBS = 16

#: names this process, so that a worker can tell it runs in the caller's process (a cluster
#: started with ``processes=False``)
_PROCESS = uuid.uuid4().hex


def _distributed() -> Any:
    """The ``distributed`` package, or an ImportError that says how to install it."""
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(
            "DaskEngine needs dask.distributed, which is not installed: "
            "pip install 'hypernodes[dask]' (or pip install 'dask[distributed]')"
        ) from exc
    return distributed


class DaskEngine:
    """Runs the items of ``Pipeline.map`` on a ``dask.distributed`` cluster, in chunks.

    - ``client``: your ``distributed.Client``; the engine uses it and never closes it.
    - ``address``: the address of a running scheduler (``"tcp://host:8786"``) to connect to; the
      engine's own client is closed by :meth:`shutdown`.  A scheduler that cannot be reached
      within ``connect_timeout`` seconds raises :class:`~hypernodes.exceptions.ExecutorError`.
    - neither: a ``LocalCluster`` of ``n_workers`` processes with ``threads_per_worker`` threads
      each, on 127.0.0.1 and without a dashboard, started on the first map and closed by
      :meth:`shutdown`, by the ``with`` block, when the engine is garbage collected, or at exit.
      Scripts that use one need an ``if __name__ == "__main__":`` guard (workers are spawned).

    ``chunk_size`` items go to a worker in one task (default: about four chunks per worker thread,
    at most :data:`MAX_CHUNK`); at most ``max_in_flight`` chunks are submitted at once (default:
    twice the worker threads).  ``node_executor`` schedules the nodes of each item, in the caller
    for :meth:`run` and on the workers for a map.

    ``run`` runs in the calling process; maps nested in it are distributed.  A map nested inside a
    distributed item runs in that worker, on a ``HypernodesEngine`` with the same node executor.
    """

    def __init__(
        self,
        client: Any = None,
        address: str | None = None,
        n_workers: int | None = None,
        threads_per_worker: int = 1,
        chunk_size: int | None = None,
        max_in_flight: int | None = None,
        node_executor: str | Any = "sequential",
        connect_timeout: float = 10.0,
    ) -> None:
        _distributed()
        if client is not None and address is not None:
            raise ExecutorError("DaskEngine takes a client or an address, not both")
        for name, value in (("chunk_size", chunk_size), ("max_in_flight", max_in_flight)):
            if value is not None and value < 1:
                raise ExecutorError(f"{name} must be at least 1, got {value}")
        self.chunk_size = chunk_size
        self.max_in_flight = max_in_flight
        self.node_executor = node_executor
        self._node: Executor = make_executor(node_executor, "node_executor", None)
        self._local = HypernodesEngine(node_executor=self._node)
        self._cluster = _Cluster(client, address, n_workers, threads_per_worker, connect_timeout)
        # The cluster this engine started stops when the engine is collected, or at exit.
        self._finalizer = weakref.finalize(self, self._cluster.close)

    # -- the Engine protocol -----------------------------------------------------------------

    def run(self, plan: Plan, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        """Run one item in this process (the maps nested in it are distributed)."""
        return self._local.run(plan, values, ctx)

    def map(
        self,
        plan: Plan,
        items: Iterable[dict[str, Any]],
        count: int,
        ctx: RunContext,
        on_error: str = "raise",
    ) -> list[dict[str, Any]]:
        """Run every item on the cluster; rows in input order (see ``Pipeline.map``)."""
        chunks = self._chunks(plan, items, count, ctx, on_error, True)
        if isinstance(chunks, list):
            return chunks
        rows: list[dict[str, Any]] = []
        for _, chunk in chunks:
            rows.extend(chunk)
        return rows

    def imap(
        self,
        plan: Plan,
        items: Iterable[dict[str, Any]],
        count: int,
        ctx: RunContext,
        on_error: str = "raise",
        ordered: bool = True,
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(item index, row)`` pairs, chunk by chunk: in input order, or with ``ordered=False``
        as chunks complete.  A spec that cannot be pickled raises here, before anything runs."""
        chunks = self._chunks(plan, items, count, ctx, on_error, ordered)
        if isinstance(chunks, list):
            return enumerate(chunks)
        return ((start + offset, row) for start, rows in chunks for offset, row in enumerate(rows))

    def shutdown(self, wait: bool = True) -> None:
        """Close the cluster and client this engine started (a client you gave stays open), now or
        when the maps still running end.  The engine stays usable: a later map starts again."""
        self._local.shutdown(wait)
        self._cluster.shutdown()

    def __enter__(self) -> DaskEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def __reduce__(self) -> tuple[Any, ...]:
        # What a worker receives with a plan: a local engine with the same node executor, so that
        # maps nested in a distributed item run in that worker.
        return (HypernodesEngine, (self._node,))

    def __repr__(self) -> str:
        return f"DaskEngine({self._cluster.describe()}, node_executor={self.node_executor!r})"

    # -- the cluster -------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` maps go through (starting the local cluster if needed)."""
        return self._cluster.client()

    def _chunks(
        self,
        plan: Plan,
        items: Iterable[dict[str, Any]],
        count: int,
        ctx: RunContext,
        on_error: str,
        ordered: bool,
    ) -> list[dict[str, Any]] | Iterator[tuple[int, list[dict[str, Any]]]]:
        """The rows of every item: a list when they run here (nothing to map, or inside a
        worker), else ``(start index, rows)`` per chunk from the cluster."""
        if on_error not in ("raise", "continue"):
            raise MapError(f"on_error must be 'raise' or 'continue', got {on_error!r}")
        if count == 0:
            return []
        if in_worker():
            return self._local.map(plan, items, count, ctx, on_error)
        spec = PlanSpec.for_call(plan, ctx, self._node, on_error, _WHERE)
        return self._stream(spec, items, count, ctx, ordered)

    def _stream(
        self,
        spec: PlanSpec,
        items: Iterable[dict[str, Any]],
        count: int,
        ctx: RunContext,
        ordered: bool,
    ) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        with self._cluster.lease():
            client = self._cluster.client()
            threads = self._cluster.threads(client)
            size = self.chunk_size or default_chunk_size(count, threads)
            window = self.max_in_flight or 2 * threads
            submit = _Submitter(client, self._cluster.blob(client, spec), size, count)
            try:
                if ordered:
                    start = 0
                    for rows in map_chunks(submit, spec, items, count, threads, ctx, size, window):
                        yield start, rows
                        start += len(rows)
                    return
                tasks = (
                    (run_chunk, spec.token, spec.blob, chunk, start)
                    for start, chunk in spec.chunks(items, size)
                )
                stream = stream_completed(submit, tasks, window)
                try:
                    for number, reply in stream:
                        yield number * size, spec.receive(reply, ctx)
                finally:
                    stream.close()
            finally:
                submit.cancel_pending()


def default_chunk_size(count: int, threads: int) -> int:
    """About four chunks per worker thread (uneven items even out), at most :data:`MAX_CHUNK`."""
    return max(1, min(MAX_CHUNK, -(-count // (max(1, threads) * 4))))


# ---------------------------------------------------------------------------------------------
# Dask futures as concurrent.futures futures


class _ChunkFuture(Future):
    """A ``concurrent.futures.Future`` that mirrors the Dask future of one chunk.

    Cancelling it cancels the Dask task.  Its result is the chunk's reply, fetched from the worker
    in Dask's callback thread as soon as the task is done; a lost task becomes a
    :class:`~hypernodes.exceptions.WorkerCrashedError` naming the chunk's items.
    """

    def __init__(self, remote: Any, items: range) -> None:
        super().__init__()
        self.remote: Any = remote
        self.items = items

    def cancel(self) -> bool:
        remote = self.remote
        if not super().cancel():
            return False
        if remote is not None:
            remote.cancel()
        self.remote = None
        return True

    def settle(self, remote: Any) -> None:
        """Take over the finished Dask future's outcome (runs in Dask's callback thread)."""
        if self.cancelled():
            return
        try:
            outcome, failed = remote.result(), False
        except BaseException as exc:
            outcome, failed = lost_chunk(exc, self.items), True
        self.remote = None  # the worker may drop the reply now
        try:
            if failed:
                self.set_exception(outcome)
            else:
                self.set_result(outcome)
        except Exception:  # cancelled meanwhile
            pass


class _Submitter:
    """``submit(run_chunk, token, blob, chunk, start)`` for the remote kit's loops: one Dask task
    per chunk (:func:`run_dask_chunk`), with the spec's scattered copy in place of its bytes."""

    def __init__(self, client: Any, blob: Any, size: int, count: int) -> None:
        self.client = client
        self.blob = blob
        self.size = size
        self.count = count
        self.prefix = f"hypernodes-chunk-{uuid.uuid4().hex}"
        self.futures: weakref.WeakSet[_ChunkFuture] = weakref.WeakSet()

    def __call__(self, fn: Any, token: str, _blob: bytes, chunk: bytes, start: int) -> Future:
        remote = self.client.submit(
            run_dask_chunk,
            token,
            self.blob,
            chunk,
            start,
            _PROCESS,
            key=f"{self.prefix}-{start}",
            pure=False,
        )
        local = _ChunkFuture(remote, range(start, min(start + self.size, self.count)))
        self.futures.add(local)
        remote.add_done_callback(local.settle)
        return local

    def cancel_pending(self) -> None:
        """Cancel the chunks still queued or running (the map stopped early)."""
        for future in list(self.futures):
            future.cancel()


def run_dask_chunk(token: str, blob: bytes, chunk: bytes, start: int, caller: str) -> bytes:
    """The Dask task of one chunk: :func:`~hypernodes.engines.remote.run_chunk` in a worker
    process.  A worker thread of the caller's own process (``processes=False``) runs the chunk
    without marking the whole process as a worker, so the caller's later maps still distribute."""
    if caller != _PROCESS:
        return run_chunk(token, blob, chunk, start)
    return dump_reply(run_items(token, blob, pickle.loads(chunk), start), start)


def lost_chunk(exc: BaseException, items: range) -> BaseException:
    """The error for a chunk that did not come back: a dead worker or a cancelled task is a
    :class:`WorkerCrashedError` naming the items; anything else keeps its type and gains a note."""
    from asyncio import CancelledError as LoopCancelled
    from concurrent.futures import CancelledError

    from distributed.scheduler import KilledWorker

    span = f"{items.start}-{items.stop - 1}" if len(items) > 1 else f"{items.start}"
    if isinstance(exc, KilledWorker):
        error = WorkerCrashedError(
            f"the Dask worker running map items {span} died (killed, out of memory, or a crash in "
            f"C code), and so did the workers that retried them: {exc}. If one of these items "
            "makes its worker crash, fix or skip it; if workers run out of memory, give them more "
            "or use a smaller chunk_size",
            items,
        )
    elif isinstance(exc, (CancelledError, LoopCancelled)):
        error = WorkerCrashedError(
            f"the Dask task running map items {span} was cancelled before it sent its results "
            f"back (the connection to the scheduler was lost, or the cluster was closed, "
            f"restarted, or told to cancel it): {exc}",
            items,
        )
    else:
        exc.add_note(f"hypernodes: raised by the Dask task that ran map items {span}")
        return exc
    error.__cause__ = exc
    return error


# ---------------------------------------------------------------------------------------------
# The cluster


class _Cluster:
    """The client an engine talks through and, unless the user gave one, the cluster or
    connection it made; also the plan specs scattered to the workers.  Holds no reference to the
    engine, so that it can close what was started when the engine is collected."""

    def __init__(
        self,
        client: Any,
        address: str | None,
        n_workers: int | None,
        threads_per_worker: int,
        connect_timeout: float,
    ) -> None:
        self.user_client = client
        self.address = address
        self.n_workers = n_workers
        self.threads_per_worker = threads_per_worker
        self.connect_timeout = connect_timeout
        self.lock = threading.RLock()
        self.own_client: Any = None
        self.local_cluster: Any = None
        self.blobs: OrderedDict[str, Any] = OrderedDict()
        self.active = 0
        self.closing = False

    def describe(self) -> str:
        if self.user_client is not None:
            return f"client={self.user_client!r}"
        if self.address is not None:
            return f"address={self.address!r}"
        return f"n_workers={self.n_workers!r}, threads_per_worker={self.threads_per_worker}"

    def client(self) -> Any:
        """The user's client, or ours (connecting, or starting the local cluster, on first use)."""
        if self.user_client is not None:
            return self.user_client
        with self.lock:
            if self.own_client is None:
                self.own_client = self._connect() if self.address else self._start_local()
            return self.own_client

    def _connect(self) -> Any:
        from distributed import Client

        try:
            return Client(self.address, timeout=self.connect_timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ExecutorError(
                f"DaskEngine could not connect to the Dask scheduler at {self.address!r} within "
                f"{self.connect_timeout:g} s: {exc}. Check that the scheduler runs and that the "
                "address (tcp://host:port) is reachable from here"
            ) from exc

    def _start_local(self) -> Any:
        from distributed import Client, LocalCluster

        cluster = LocalCluster(
            n_workers=self.n_workers,
            threads_per_worker=self.threads_per_worker,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            # no dashboard; the scheduler's health/metrics server on a free loopback port (it
            # would take 8787 otherwise, and warn when another cluster has it)
            scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
        )
        try:
            client = Client(cluster, set_as_default=False)
        except BaseException:
            cluster.close()
            raise
        self.local_cluster = cluster
        # Registered after distributed's own exit hooks, so it runs before them: the client lets
        # go of its data before the workers stop (no "lost scattered data" on the way out).
        atexit.register(self.close)
        return client

    def threads(self, client: Any) -> int:
        """The worker threads of the cluster, waiting up to ``connect_timeout`` for a first one."""
        threads = sum(client.nthreads().values())
        if threads:
            return threads
        try:
            client.wait_for_workers(1, timeout=self.connect_timeout)
        except TimeoutError as exc:
            raise ExecutorError(
                f"the Dask cluster at {client.scheduler.address} has no workers (waited "
                f"{self.connect_timeout:g} s); start some workers, or give DaskEngine a cluster "
                "that has them"
            ) from exc
        return max(1, sum(client.nthreads().values()))

    def blob(self, client: Any, spec: PlanSpec) -> Any:
        """A Dask future of the spec's bytes, held by every worker (scattered once per spec)."""
        with self.lock:
            found = self.blobs.get(spec.token)
            if found is not None and found.client is client and found.status == "finished":
                self.blobs.move_to_end(spec.token)
                return found
        future = client.scatter(spec.blob, broadcast=True, hash=False)
        with self.lock:
            self.blobs[spec.token] = future
            while len(self.blobs) > _KEEP_BLOBS:
                self.blobs.popitem(last=False)
        return future

    @contextmanager
    def lease(self) -> Iterator[None]:
        """Mark a map in progress: :meth:`shutdown` waits for the last one to end."""
        with self.lock:
            self.active += 1
        try:
            yield
        finally:
            with self.lock:
                self.active -= 1
                close = self.active == 0 and self.closing
            if close:
                self.close()

    def shutdown(self) -> None:
        with self.lock:
            if self.active:
                self.closing = True
                return
        self.close()

    def close(self) -> None:
        """Close our client and the local cluster (never the user's client); idempotent."""
        with self.lock:
            client, cluster = self.own_client, self.local_cluster
            self.own_client = self.local_cluster = None
            self.blobs.clear()
            self.closing = False
        if cluster is not None:
            atexit.unregister(self.close)
        if client is not None and _on_loop_of(client):
            # Collected on Dask's own event loop thread, which cannot wait for itself.
            threading.Thread(target=_close, args=(client, cluster), name="hypernodes-dask").start()
            return
        _close(client, cluster)


def _close(client: Any, cluster: Any) -> None:
    if client is not None:
        client.close()
    if cluster is not None:
        cluster.close()


def _on_loop_of(client: Any) -> bool:
    """Whether this thread runs the event loop of ``client``."""
    import asyncio

    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        return False
    return running is getattr(client.loop, "asyncio_loop", None)
