"""``RayEngine``: the items of a map run in chunks as native Ray tasks.

A thin backend on the remote driver (:mod:`hypernodes.execution.driver`): the driver cuts the
items into pickled chunks, relays each chunk's events and cache writes, and isolates the item
that kills its worker; this module only says how a chunk becomes a Ray task (the plan's spec put
in Ray's object store once per map, ``num_gpus``/``num_cpus`` hints as task options) and what a
dead worker or a lost head looks like.  Ray is imported when an engine first runs a map.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import CancelledError
from typing import Any

from ..exceptions import ClusterLostError, ExecutorError
from ..execution.context import MapCall, RunContext
from ..execution.driver import Backend, default_chunk_size, remote_map
from ..execution.executors import Executor
from ..execution.loops import ObservedItems
from ..execution.plan import Plan, chunk_size_for
from ..execution.remote import run_chunk
from .base import ClusterEngine, is_tolerant
from .hypernodes import HypernodesEngine, make_executor

_WHERE = "a Ray worker of RayEngine"

#: most items in one Ray task by default (a task costs a millisecond or more, an item microseconds)
MAX_CHUNK = 10_000


class RayEngine(ClusterEngine):
    """Runs the items of ``Pipeline.map`` as Ray tasks, in chunks (``pip install
    'hypernodes[ray]'``).

    - ``address``: a running Ray cluster (``"127.0.0.1:6379"``, or ``"ray://host:10001"`` with
      ``ray[client]``), passed to ``ray.init``.  ``None``: the Ray this process already
      initialised, else a local Ray on the loopback interface with ``num_cpus`` CPUs, started on
      the first map and stopped by :meth:`shutdown`.
    - ``chunk_size`` items per task (default: about four chunks per CPU, at most
      :data:`MAX_CHUNK`; growing chunks for an iterator of unknown length);
      ``max_in_flight`` chunks at once (default: twice the cluster's CPUs).
    - ``max_retries``: times Ray runs a task again after its worker process died; then the
      chunk's items run one per task, so that only an item that kills its worker fails
      (:class:`~hypernodes.exceptions.WorkerCrashedError`, its row's value under
      ``on_error="continue"``).
    - ``node_executor`` schedules the nodes of each item, on the workers.

    A node's ``resources={"num_gpus": 1}`` (``num_cpus``) hint becomes the task's Ray option
    when the cluster has that resource.  ``run`` runs here; a map nested in a distributed item
    runs in that worker.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        num_cpus: int | None = None,
        chunk_size: int | None = None,
        max_in_flight: int | None = None,
        max_retries: int = 1,
        node_executor: str | Any = "sequential",
    ) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self.chunk_size = chunk_size
        self.max_in_flight = max_in_flight
        self.max_retries = max_retries
        self.node_executor = node_executor
        self._node: Executor = make_executor(node_executor, "node_executor", None)
        self._local = HypernodesEngine(node_executor=self._node)
        self._isolating = threading.Lock()
        self._started = False
        self._lock = threading.Lock()

    def imap(
        self,
        plan: Plan,
        items: Iterable[dict[str, Any]],
        count: int | None,
        ctx: RunContext,
        on_error: str = "raise",
        ordered: bool = True,
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(item index, row)`` pairs, chunk by chunk, in input order or as chunks complete."""
        tolerant = is_tolerant(on_error)  # checked here, before anything runs
        node: Any = self._node if ctx.dispatcher is None else ObservedItems(self._node)
        return self._stream(MapCall(plan, ctx, node, tolerant, ordered), items, count)

    def _stream(
        self, call: MapCall, items: Iterable[dict[str, Any]], count: int | None
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        ray = self._ray()
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        plan, size = call.plan, self.chunk_size
        if size is None and count is not None:  # a task costs a millisecond or more
            size = chunk_size_for(plan, max(1, min(MAX_CHUNK, -(-count // (4 * cpus)))), None)
        elif size is None and plan.segments is not None:  # whole batches of the batch nodes
            size = chunk_size_for(plan, default_chunk_size(count, cpus), None)
        backend = _Tasks(ray, self._isolating, task_options(plan, ray, self.max_retries))
        yield from remote_map(
            _WHERE, call, items, count, workers=cpus, backend=backend, chunk_size=size,
            window=self.max_in_flight,
        )  # fmt: skip

    def _ray(self) -> Any:
        """The ``ray`` module, initialised (connecting, or starting a local Ray, on first use)."""
        try:
            import ray
        except ImportError as exc:
            raise ImportError(
                "RayEngine needs ray, which is not installed: pip install 'hypernodes[ray]'"
            ) from exc
        with self._lock:
            if not ray.is_initialized():
                self._started = _init(ray, self.address, self.num_cpus)
        return ray

    def shutdown(self, wait: bool = True) -> None:
        """Stop the local Ray this engine started (a Ray you started or connected stays)."""
        self._local.shutdown(wait)
        with self._lock:
            if self._started:
                self._started = False
                import ray

                ray.shutdown()

    def __enter__(self) -> RayEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def __reduce__(self) -> tuple[Any, ...]:
        # What a worker receives with a plan: a local engine with the same node executor.
        return (HypernodesEngine, (self._node,))

    def __repr__(self) -> str:
        return f"RayEngine(address={self.address!r}, node_executor={self.node_executor!r})"


class _Tasks(Backend):
    """Chunks as Ray tasks: the spec put in the object store once, a dead worker's task run
    again by Ray (``max_retries``) and then item by item by the driver, a lost cluster that Ray
    reports named (a lost head makes Ray end the process after 60 s, see docs/ray.md)."""

    def __init__(self, ray: Any, isolating: threading.Lock, options: dict[str, Any]) -> None:
        super().__init__(isolating)
        errors = ray.exceptions
        self.ray, self.lock, self.stopped = ray, threading.Lock(), False
        self.crashes = (errors.WorkerCrashedError, errors.NodeDiedError, errors.ObjectLostError)
        self.lost = (errors.RaySystemError, errors.LocalRayletDiedError, ConnectionError)
        self.task = _chunk_task(ray).options(**options)
        self.specs: dict[str, Any] = {}
        self.running: set[Any] = set()

    def once(self, token: str, blob: Any, chunk: bytes, start: int) -> bytes:
        with self.lock:
            if self.stopped:
                raise CancelledError
            spec = self.specs.get(token) or self.specs.setdefault(token, self.ray.put(blob))
            task = self.task.remote(token, spec, chunk, start)
            self.running.add(task)
        try:
            reply: bytes = self.ray.get(task)
            return reply
        except self.lost as exc:
            raise _lost(self.ray, exc) from exc
        finally:
            with self.lock:
                self.running.discard(task)

    def stop(self) -> None:
        with self.lock:
            self.stopped, running, self.running = True, list(self.running), set()
        for task in running:
            self.ray.cancel(task)


def _lost(ray: Any, exc: BaseException) -> ClusterLostError:
    address = ray.get_runtime_context().gcs_address if ray.is_initialized() else None
    return ClusterLostError(
        f"RayEngine lost its Ray cluster (head at {address}): {exc}; the map stopped. Check "
        "the cluster and run the map again (a cache makes the finished items hits)",
        address,
    )


@functools.cache
def _chunk_task(ray: Any) -> Any:
    """The Ray remote function that runs one chunk (made once per process)."""
    return ray.remote(run_chunk)


#: node hints -> the Ray resource each stands for
RESOURCE_NAMES = {"num_gpus": "GPU", "num_cpus": "CPU"}


def task_options(plan: Plan, ray: Any, max_retries: int) -> dict[str, Any]:
    """The Ray options of a plan's chunk tasks: the largest ``num_gpus``/``num_cpus`` hint of
    its nodes, where the cluster has that resource (a task asking for what no node has would
    wait forever), and ``max_retries``."""
    options: dict[str, Any] = {"max_retries": max_retries}
    offered = ray.cluster_resources()
    for step in plan.steps:
        for hint, name in RESOURCE_NAMES.items():
            amount = (getattr(step.node, "resources", None) or {}).get(hint)
            if amount and offered.get(name, 0) >= amount:
                options[hint] = max(options.get(hint, 0), amount)
    return options


def _init(ray: Any, address: str | None, num_cpus: int | None) -> bool:
    """Connect to ``address``, or start a local Ray on the loopback interface; True if this
    started one (Ray resolves "127.0.0.1" to the machine's address and listens on every
    interface unless its single-machine mode is on, read when ray is imported and by the
    processes it starts: both are set while it starts)."""
    if address is not None:
        try:
            ray.init(address=address)
        except ConnectionError as exc:
            raise ExecutorError(
                f"RayEngine could not connect to the Ray cluster at {address!r}: {exc}"
            ) from exc
        return False
    from ray._private import ray_constants

    flag = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
    before = os.environ.get(flag)
    os.environ[flag], mode = "0", ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        ray.init(num_cpus=num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1")
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = mode
        if before is None:
            os.environ.pop(flag, None)
        else:
            os.environ[flag] = before
    return True
