"""``DaskEngine``: the items of a map run in chunks on a ``dask.distributed`` cluster.

Everything that travels goes through the remote kit (:mod:`hypernodes.execution.remote`): the plan's
spec is scattered to the workers once per map, items go as chunks of pickled bytes (one Dask task
per chunk, never per item), and each chunk's rows, callback events and cache writes come back and
are replayed here in item order.  This module only adds what is Dask's: the client and the
cluster it talks to, relay threads that wait on Dask futures for the kit's loop, and what a lost
worker means (Dask's retries, then the chunk's items one at a time, so that only the item that
kills its worker fails).

``dask.distributed`` is imported when an engine is made, not when this module is imported.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import pickle
import re
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from ..exceptions import (
    ClusterLostError,
    ExecutorError,
    HyperNodesError,
    NoWorkersError,
    WorkerCrashedError,
)
from ..execution.context import MapCall, RunContext
from ..execution.driver import Backend, drive, first_line, growing_sizes, warm_prefix
from ..execution.executors import Executor
from ..execution.loops import ObservedItems
from ..execution.plan import Plan, chunk_size_for
from ..execution.remote import PlanSpec, in_worker, run_chunk
from ..model.checks import check_seconds, check_whole
from .base import ClusterEngine, is_tolerant
from .dask_local import DaskLocalEngine, wants_local
from .hypernodes import HypernodesEngine, make_executor

_WHERE = "a Dask worker of DaskEngine"

#: most items in one Dask task by default (a task costs milliseconds, an item microseconds)
MAX_CHUNK = 10_000

#: items in the first task when the number of items is not known in advance (a streamed
#: iterator); each next task takes twice as many, up to :data:`MAX_CHUNK`
UNKNOWN_COUNT_CHUNK = 256

#: compiled plan specs kept scattered on the workers per engine, most recently used last
_KEEP_BLOBS = 16

#: times a chunk is sent again after its task was cancelled (the spec it needs was lost with
#: every worker that held it, the cluster was restarted)
_RESCATTERS = 3

#: a plan spec up to this many bytes travels inside every chunk's task; a larger one is scattered
CARRY_LIMIT = 256 * 1024

#: a chunk of more pickled bytes than this is scattered to a worker rather than put in its task
SCATTER_LIMIT = 1 << 20

#: how often a relay thread waiting on a task checks that the cluster can still run it (seconds)
WATCH_EVERY = 1.0


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


class DaskEngine(ClusterEngine):
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

    Failures (see docs/reliability.md): an item that kills its worker fails alone (its row's
    :class:`~hypernodes.exceptions.WorkerCrashedError`); a scheduler the client cannot reach for
    ``connect_timeout`` seconds raises :class:`~hypernodes.exceptions.ClusterLostError`; tasks
    that no worker can run (every worker gone, or none offering the ``num_gpus`` they need) for
    ``no_worker_timeout`` seconds raise :class:`~hypernodes.exceptions.NoWorkersError`.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        # 0.4's DaskEngine(scheduler=..., num_workers=..., workload_type=...): Dask's local
        # schedulers on one machine, without a cluster (engines/dask_local.py)
        if not args and wants_local(kwargs):
            return DaskLocalEngine(**kwargs)
        return super().__new__(cls)

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
        no_worker_timeout: float = 30.0,
    ) -> None:
        _distributed()
        if client is not None and address is not None:
            raise ExecutorError("DaskEngine takes a client or an address, not both")
        counts = {"chunk_size": chunk_size, "max_in_flight": max_in_flight, "n_workers": n_workers}
        for name, value in {**counts, "threads_per_worker": threads_per_worker}.items():
            check_whole(value, name, "DaskEngine", 1)
        check_seconds(connect_timeout, "connect_timeout", "DaskEngine")
        if address is not None:
            check_scheduler_address(address)
        self.chunk_size = chunk_size
        self.max_in_flight = max_in_flight
        self.node_executor = node_executor
        self._node: Executor = make_executor(node_executor, "node_executor", None)
        self._local = HypernodesEngine(node_executor=self._node)
        self._isolating = threading.Lock()
        self._cluster = _Cluster(
            client, address, n_workers, threads_per_worker, connect_timeout, no_worker_timeout
        )
        # The cluster this engine started stops when the engine is collected, or at exit.
        self._finalizer = weakref.finalize(self, self._cluster.close)

    # -- the Engine protocol -----------------------------------------------------------------

    def imap(
        self,
        plan: Plan,
        items: Iterable[dict[str, Any]],
        count: int | None,
        ctx: RunContext,
        on_error: str = "raise",
        ordered: bool = True,
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(item index, row)`` pairs, chunk by chunk: in input order, or with ``ordered=False``
        as chunks complete.  A spec that cannot be pickled raises here, before anything runs."""
        is_tolerant(on_error)  # checked here, before anything runs
        if count == 0:
            return iter(())
        if in_worker():
            return self._local.imap(plan, items, count, ctx, on_error, ordered)
        spec = PlanSpec.for_call(plan, ctx, self._node, on_error, _WHERE)
        node: Any = self._node if ctx.dispatcher is None else ObservedItems(self._node)
        call = MapCall(plan, ctx, node, on_error == "continue", ordered)
        return self._stream(spec, call, items, count)

    def shutdown(self, wait: bool = True) -> None:
        """Close the cluster and client this engine started (a client you gave stays open), now or
        when the maps still running end.  The engine stays usable: a later map starts again."""
        self._local.shutdown(wait)  # also tears down the resources built in this process
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

    def _stream(
        self, spec: PlanSpec, call: MapCall, items: Iterable[dict[str, Any]], count: int | None
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        # The leading cache hits load here: a warm map never starts or even asks the cluster.
        left_over: list[Any] = []
        yield from warm_prefix(call, items, left_over)
        rest, first = left_over
        if rest is None:
            return
        left = None if count is None else count - first
        plan, ctx = call.plan, call.ctx
        with self._cluster.lease():
            client = self._cluster.client()
            threads = self._cluster.threads(client)
            size = self.chunk_size or _sizes(plan, left, threads)
            window = self.max_in_flight or 2 * threads
            chunks = _Chunks(self._cluster, client, spec, self._isolating)
            chunks.resources = task_resources(plan, client)
            chunks.name(ctx.path[-1] if ctx.path else "pipeline", plan)
            yield from drive(
                chunks, spec, rest, left, threads, ctx, call.ordered, size, window, first
            )


#: node hints -> the Dask worker resource names they may stand for (as workers declare them,
#: ``dask worker --resources "GPU=1"`` or ``LocalCluster(resources={"GPU": 1})``)
RESOURCE_NAMES = {"num_gpus": ("GPU", "gpu"), "num_cpus": ("CPU", "cpu")}


def task_resources(plan: Plan, client: Any) -> dict[str, float] | None:
    """The worker resources the chunk tasks of ``plan`` ask Dask for: the largest ``num_gpus``
    (``num_cpus``) hint among the plan's nodes, as the cluster's workers name that resource.

    A chunk runs every node of its items, so it asks for what its most demanding node needs.
    Hints the cluster's workers do not declare are ignored (a task asking for a resource no
    worker has would wait forever).
    """
    wanted: dict[str, float] = {}
    for step in plan.steps:
        hints = getattr(step.node, "resources", None)
        if not hints:
            continue
        for hint in RESOURCE_NAMES:
            if hints.get(hint):
                wanted[hint] = max(wanted.get(hint, 0), hints[hint])
    if not wanted:
        return None
    workers = client.scheduler_info(n_workers=-1).get("workers", {})
    declared = {name for info in workers.values() for name in info.get("resources") or {}}
    found: dict[str, float] = {}
    for hint, amount in wanted.items():
        for name in RESOURCE_NAMES[hint]:
            if name in declared:
                found[name] = amount
                break
    return found or None


def _sizes(plan: Plan, count: int | None, threads: int) -> int | Iterator[int]:
    """The default chunk sizes: :func:`default_chunk_size`, or for an unknown count chunks that
    grow from :data:`UNKNOWN_COUNT_CHUNK` to :data:`MAX_CHUNK` items (whole batches)."""
    if count is None:
        first = chunk_size_for(plan, UNKNOWN_COUNT_CHUNK, None)
        return growing_sizes(first, chunk_size_for(plan, MAX_CHUNK, None))
    return chunk_size_for(plan, default_chunk_size(count, threads), None)


def default_chunk_size(count: int | None, threads: int) -> int:
    """About four chunks per worker thread (uneven items even out), at most :data:`MAX_CHUNK`;
    :data:`UNKNOWN_COUNT_CHUNK` when the number of items is not known."""
    if count is None:
        return UNKNOWN_COUNT_CHUNK
    return max(1, min(MAX_CHUNK, -(-count // (max(1, threads) * 4))))


# ---------------------------------------------------------------------------------------------
# Chunks as Dask tasks


class _Chunks(Backend):
    """Runs the chunks of one map as Dask tasks, for the remote driver's relay threads.

    Dask re-runs a task whose worker died on another worker (up to
    ``distributed.scheduler.allowed-failures`` times, 3 by default) and then gives up with
    ``KilledWorker``: the driver then runs the chunk one item per task, so that only the item
    that kills its worker fails.  A spec of at most :data:`CARRY_LIMIT` bytes travels inside
    every task, so no worker's death can lose it; a larger one is scattered to the workers and
    scattered again when a task was cancelled for want of it.  While a relay thread waits, the
    :class:`_Health` watch turns a lost scheduler or a cluster without a worker that can run the
    task into a named error.
    """

    def __init__(
        self, cluster: _Cluster, client: Any, spec: PlanSpec, isolating: threading.Lock
    ) -> None:
        from distributed.scheduler import KilledWorker

        super().__init__(isolating)
        self.crashes = (KilledWorker,)
        self.cluster = cluster
        self.client = client
        self.spec = spec
        self.carried = len(spec.blob) <= CARRY_LIMIT
        self.blob = spec.blob if self.carried else cluster.blob(client, spec)
        self.prefix = f"hypernodes-{uuid.uuid4().hex}"
        self.numbers = itertools.count()
        self.lock = threading.Lock()
        self.futures: set[Any] = set()
        self.stopped = False
        #: Dask worker resources each chunk task asks for (see :func:`task_resources`)
        self.resources: dict[str, float] | None = None
        self.health = _Health(client, cluster, self)

    def name(self, label: str, plan: Plan) -> None:
        """Name the tasks after the pipeline and its nodes (what the dashboard shows)."""
        nodes = "+".join(step.node.name for step in plan.steps)
        readable = re.sub(r"[^A-Za-z0-9_.+]", "_", f"{label}.{nodes}")[:80]
        self.prefix = f"{readable}-hypernodes-{uuid.uuid4().hex}"

    def once(self, token: str, blob: Any, chunk: bytes, start: int) -> bytes:
        """Run ``chunk`` as one Dask task and wait for its reply."""
        from concurrent.futures import CancelledError

        for attempt in range(_RESCATTERS + 1):
            future = self._submit(chunk, start)
            try:
                return self._wait(future)
            except CancelledError as exc:
                if self.stopped:
                    raise
                self.health.check_client()
                if attempt == _RESCATTERS:
                    raise _cancelled(exc, chunk, start) from exc
                self._rescatter()
            finally:
                with self.lock:
                    self.futures.discard(future)
        raise AssertionError("unreachable")

    def _submit(self, chunk: bytes, start: int) -> Any:
        from concurrent.futures import CancelledError

        data = self._scatter(chunk) if len(chunk) > SCATTER_LIMIT else chunk
        with self.lock:
            if self.stopped:
                raise CancelledError
            future = self.client.submit(
                run_chunk,
                self.spec.token,
                self.blob,
                data,
                start,
                key=f"{self.prefix}-{next(self.numbers)}",
                pure=False,
                resources=self.resources,
            )
            self.futures.add(future)
        return future

    def _scatter(self, chunk: bytes) -> Any:
        """A large chunk goes straight to a worker (the task refers to it), never through the
        scheduler, whose memory would otherwise grow with the items in flight."""
        try:
            return self.client.scatter(chunk, direct=True, hash=False)
        except Exception:  # workers this client cannot reach: through the scheduler after all
            return self.client.scatter(chunk, hash=False)

    def _wait(self, future: Any) -> bytes:
        """The task's reply, checking every :data:`WATCH_EVERY` s that it can still come."""
        while True:
            try:
                return future.result(timeout=WATCH_EVERY)
            except TimeoutError:
                if future.done():
                    continue
                self.health.check()

    def _rescatter(self) -> None:
        """Send a scattered spec to the workers again (every copy may have died with its
        worker); a carried spec needs nothing."""
        if self.carried:
            return
        with contextlib.suppress(Exception):
            self.cluster.forget(self.spec)
            self.blob = self.cluster.blob(self.client, self.spec)

    def stop(self) -> None:
        """Cancel the tasks not done (the map ended early: an error, Ctrl-C, a consumer that
        stopped reading), so that the relay threads return at once."""
        with self.lock:
            self.stopped = True
            futures, self.futures = list(self.futures), set()
        if futures:
            with contextlib.suppress(Exception):  # a client that lost its scheduler
                self.client.cancel(futures)


class _Health:
    """Whether a map's tasks can still finish: the client is connected to its scheduler (else
    :class:`~hypernodes.exceptions.ClusterLostError` after ``connect_timeout`` seconds), and some
    worker offers what the tasks need (else :class:`~hypernodes.exceptions.NoWorkersError` after
    ``no_worker_timeout`` seconds).  The relay threads share it; it asks the scheduler at most
    once per :data:`WATCH_EVERY` seconds."""

    def __init__(self, client: Any, cluster: _Cluster, chunks: _Chunks) -> None:
        self.client = client
        self.cluster = cluster
        self.chunks = chunks
        self.lock = threading.Lock()
        self.asked = 0.0
        self.disconnected: float | None = None
        self.unserved: float | None = None
        #: the named error one check found: the others raise it too
        self.fatal: HyperNodesError | None = None

    @property
    def address(self) -> str:
        return self.cluster.address or str(getattr(self.client.scheduler, "address", "?"))

    def check_client(self) -> None:
        """Raise ClusterLostError if the client is no longer connected (it gave up)."""
        if self.client.status in ("closing", "closed"):
            raise ClusterLostError(
                f"DaskEngine lost the Dask scheduler at {self.address} (the client is "
                f"{self.client.status}): the map stopped. Rows yielded before stay valid; check "
                "the scheduler and run the map again (a cache makes the finished items hits)",
                self.address,
            )

    def check(self) -> None:
        """Raise the named error when the tasks cannot finish any more (see the class)."""
        now = time.monotonic()
        with self.lock:
            if self.fatal is not None:
                raise self.fatal  # every waiting relay thread raises what one found
            if now - self.asked < WATCH_EVERY:
                return
            self.asked = now
            self.check_client()
            if self.client.status != "running":
                self.disconnected = self.disconnected or now
                if now - self.disconnected > self.cluster.connect_timeout:
                    self.fatal = self._lost(now - self.disconnected)
                    raise self.fatal
                return
            self.disconnected = None
            self._check_workers(now)

    def _lost(self, waited: float) -> ClusterLostError:
        return ClusterLostError(
            f"DaskEngine lost the Dask scheduler at {self.address}: not reconnected within "
            f"{waited:.0f} s (connect_timeout={self.cluster.connect_timeout:g}); the map "
            "stopped. Check the scheduler and run the map again",
            self.address,
        )

    def _check_workers(self, now: float) -> None:
        try:
            workers = self.client.scheduler_info(n_workers=-1).get("workers", {})
        except Exception:  # the scheduler is going away: the client's status will say so
            return
        wanted = self.chunks.resources or {}
        if any(_offers(info, wanted) for info in workers.values()):
            self.unserved = None
            return
        self.unserved = self.unserved or now
        waited = now - self.unserved
        if waited > self.cluster.no_worker_timeout:
            what = f"worker offering {wanted}" if wanted else "worker at all"
            self.fatal = NoWorkersError(
                f"the Dask cluster at {self.address} has had no {what} for {waited:.0f} s "
                f"(no_worker_timeout={self.cluster.no_worker_timeout:g}), so the map's tasks "
                "cannot run: start workers (with those resources), or raise no_worker_timeout "
                "to wait longer",
                self.address,
                wanted,
            )
            raise self.fatal


def _offers(info: dict[str, Any], wanted: dict[str, float]) -> bool:
    """Whether a worker (as ``scheduler_info`` describes it) has the resources ``wanted``."""
    have = info.get("resources") or {}
    return all(have.get(name, 0) >= amount for name, amount in wanted.items())


def _cancelled(exc: BaseException, chunk: bytes, start: int) -> WorkerCrashedError:
    items = list(range(start, start + len(pickle.loads(chunk)[0])))
    span = f"{items[0]}-{items[-1]}" if len(items) > 1 else f"{items[0]}"
    return WorkerCrashedError(
        f"the Dask task running map items {span} was cancelled {_RESCATTERS + 1} times before it "
        "sent its results back (the cluster was restarted, or told to cancel it): "
        f"{first_line(exc)}",
        items,
    )


def check_scheduler_address(address: Any) -> None:
    """Refuse what cannot be a scheduler address (``"tcp://host:port"``) when the engine is
    made, instead of failing inside ``distributed`` at the first map."""
    from distributed.comm.registry import backends

    text = address if isinstance(address, str) else ""
    scheme, _, location = text.rpartition("://") if "://" in text else ("tcp", "", text)
    if scheme in backends and location and not any(c.isspace() for c in text):
        return
    raise ExecutorError(
        f"DaskEngine(address={address!r}) is not a Dask scheduler address; write it as "
        f"'tcp://host:port' (e.g. 'tcp://127.0.0.1:8786', the scheduler's address), with a "
        f"protocol among {sorted(backends)}; to use a cluster object, pass "
        "client=distributed.Client(cluster)"
    )


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
        no_worker_timeout: float = 30.0,
    ) -> None:
        self.user_client = client
        self.address = address
        self.n_workers = n_workers
        self.threads_per_worker = threads_per_worker
        self.connect_timeout = connect_timeout
        self.no_worker_timeout = no_worker_timeout
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
            status = getattr(self.user_client, "status", "running")
            if status in ("closing", "closed"):
                raise ExecutorError(
                    f"the Dask client given to DaskEngine is {status}: {self.user_client!r}. "
                    "Keep the client open while the engine is used (close it after the last map), "
                    "or give DaskEngine a new one"
                )
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
            # scattered again when the workers that held it are all gone
            future = client.scatter(spec.blob, broadcast=True, hash=False)
            self.blobs[spec.token] = future
            while len(self.blobs) > _KEEP_BLOBS:
                self.blobs.popitem(last=False)
            return future

    def forget(self, spec: PlanSpec) -> None:
        """Drop the scattered copy of ``spec`` (lost with its workers): the next
        :meth:`blob` scatters it again."""
        with self.lock:
            self.blobs.pop(spec.token, None)

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
