"""``HypernodesEngine``: runs plans in this process (and its workers), choosing how the nodes of an
item and the items of a map are scheduled."""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import aclosing
from functools import partial
from typing import Any

from ..exceptions import ExecutorError
from ..execution.context import MapCall, RunContext
from ..execution.executors import (
    AsyncExecutor,
    CustomExecutor,
    Executor,
    LevelPools,
    SequentialExecutor,
    ThreadedExecutor,
    check_workers,
    current_level,
    offloaded_items,
)
from ..execution.loops import ObservedItems, Offload, iter_batched, map_batched, run_item, run_items
from ..execution.plan import Plan, batch_size_for
from ..execution.remote import in_worker
from ..model.resources import release_resources
from .base import is_tolerant
from .parallel import ParallelExecutor

#: the executors named by string
NAMES = ("sequential", "async", "threaded", "parallel")
#: the seed era's ``async_strategy`` names (None: not given); all run async nodes the same way
ASYNC_STRATEGIES = (None, "auto", "per_call", "thread_local", "async_native")


class HypernodesEngine:
    """The default engine: one item-runner, scheduled by two executors.

    ``node_executor`` decides how the nodes of one item run (``"sequential"``, ``"threaded"``,
    ``"async"``, or an executor object): independent nodes of one topological generation run
    together, inside every map item too.  ``map_executor`` decides how the items of a ``map`` run
    (the same choices plus ``"parallel"``, worker processes).  ``max_workers`` sets the size of
    the executors named by string (threads per nesting level, processes, or the async limit).

    Use it as a context manager, or call :meth:`shutdown`, to stop its workers; the engine stays
    usable and a later call starts new ones.  Shutting down waits for calls still running (another
    pipeline sharing the engine) to end first.  Executor objects the user made themselves
    (``ThreadPoolExecutor``, a Dask client's executor) are never shut down by the engine.
    Shutting down also tears down the resources built in this process (hypernodes.model.resources).

    ``batch_size`` is how many items a map gives a batch node at once when the node sets no
    ``resources={"batch_size": n}`` (default :data:`hypernodes.execution.plan.DEFAULT_BATCH_SIZE`).
    """

    def __init__(
        self,
        node_executor: str | Any = "sequential",
        map_executor: str | Any = "sequential",
        max_workers: int | None = None,
        batch_size: int | None = None,
        async_strategy: str | None = None,
        loky_timeout: float | None = None,
    ) -> None:
        if async_strategy not in ASYNC_STRATEGIES:
            raise ExecutorError(
                f"async_strategy must be one of {list(ASYNC_STRATEGIES[1:])} (or None), got "
                f"{async_strategy!r}; it has no effect here: async nodes always run on a "
                "reused event loop (see docs/migrating.md)"
            )
        #: the seed era's async_strategy, accepted and kept; it changes nothing here
        self.async_strategy = async_strategy
        if batch_size is not None and (
            isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
        ):
            raise ExecutorError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
        self.batch_size = batch_size
        check_workers(max_workers, "HypernodesEngine")
        self._node: Executor = make_executor(node_executor, "node_executor", max_workers)
        self._map: Executor = make_executor(map_executor, "map_executor", max_workers)
        if loky_timeout is not None and isinstance(self._map, ParallelExecutor):
            self._map.idle_timeout = loky_timeout  # the seed era's name of the idle timeout
        self.node_executor = node_executor
        self.map_executor = map_executor
        self.max_workers = max_workers
        self._sequential_nodes = self._node.inline
        if self._sequential_nodes and type(self).run is HypernodesEngine.run:
            self.run = run_item  # type: ignore[method-assign]  # one frame less per run
        self._sequential = self._sequential_nodes and self._map.inline
        #: threads for sync nodes of arun/amap calls made on a caller's event loop
        self._aio = LevelPools(min(32, (os.cpu_count() or 1) + 4), "hypernodes-aio")
        # Workers of an engine that is dropped without shutdown() stop when it is collected.
        self._finalizer = weakref.finalize(self, _release, (self._node, self._map), self._aio)

    def run(self, plan: Plan, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        """Run one item."""
        if self._sequential_nodes:
            return run_item(plan, values, ctx)
        with self._node.lease():
            return self._node.run_item(plan, values, ctx, False, 0)

    def map(
        self,
        plan: Plan,
        items: Iterable[dict[str, Any]],
        count: int | None,
        ctx: RunContext,
        on_error: str = "raise",
    ) -> list[dict[str, Any]]:
        """Run every item; rows in input order (see ``Pipeline.map`` for ``on_error``)."""
        tolerant = is_tolerant(on_error)
        if not tolerant and self._sequential and plan.segments is None:
            return run_items(plan, items, ctx)
        call = self._call(plan, ctx, tolerant, True)
        if plan.segments is not None and self._groups_here():  # a plan with batch nodes
            size = batch_size_for(plan, self.batch_size)
            with self._map.lease():
                return map_batched(self._map, call, items, count, size)
        with self._node.lease(), self._map.lease():
            return self._map.map_items(call, items, count)

    def imap(
        self,
        plan: Plan,
        items: Iterable[dict[str, Any]],
        count: int | None,
        ctx: RunContext,
        on_error: str = "raise",
        ordered: bool = True,
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        """Run every item; yield ``(index, row)`` in input order, or as items finish."""
        call = self._call(plan, ctx, is_tolerant(on_error), ordered)
        if plan.segments is not None and self._groups_here():  # a plan with batch nodes
            size = batch_size_for(plan, self.batch_size)
            with self._map.lease():
                yield from iter_batched(self._map, call, items, count, size)
            return
        with self._node.lease(), self._map.lease():
            yield from self._map.iter_items(call, items, count)

    def _call(self, plan: Plan, ctx: RunContext, tolerant: bool, ordered: bool) -> MapCall:
        """The map call of ``plan`` in ``ctx``: the node executor reports item events when
        callbacks listen."""
        node: Any = self._node if ctx.dispatcher is None else ObservedItems(self._node)
        return MapCall(plan, ctx, node, tolerant, ordered)

    def _groups_here(self) -> bool:
        """Whether the map executor runs items in this process, so that this engine groups the
        items of a plan with batch nodes; worker processes group their own chunks."""
        return not self._map.remote or in_worker()

    # -- on the caller's event loop -------------------------------------------------------------

    def _offload(self) -> Offload:
        loop = asyncio.get_running_loop()
        return partial(loop.run_in_executor, self._aio.get(current_level() + 1))

    async def arun(self, plan: Plan, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        """Run one item on the running event loop: ``async def`` nodes are awaited on it, sync
        nodes run in threads so they never block it."""
        with self._node.lease():
            return await self._node.arun_item(plan, values, ctx, False, 0, self._offload())

    async def aimap(
        self,
        plan: Plan,
        items: Iterable[dict[str, Any]],
        count: int | None,
        ctx: RunContext,
        on_error: str = "raise",
        ordered: bool = True,
    ) -> AsyncIterator[tuple[int, dict[str, Any]]]:
        """:meth:`imap` for a caller on an event loop.  With a sequential or async map executor
        the items are tasks on the caller's loop; other map executors (threads, processes) run as
        they always do while the loop waits for their rows without blocking."""
        call = self._call(plan, ctx, is_tolerant(on_error), ordered)
        batched = plan.segments is not None
        if batched or not self._map.loop_native:
            bridged = bridge(self.imap(plan, items, count, ctx, on_error, ordered))
            async with aclosing(bridged):
                async for pair in bridged:
                    yield pair
            return
        batches = offloaded_items(self._offload(), self._map.window, call, items)
        with self._node.lease(), self._map.lease():
            async with aclosing(batches):
                async for batch in batches:
                    for pair in batch:
                        yield pair

    def shutdown(self, wait: bool = True) -> None:
        """Stop the workers this engine started (now, or when the calls still running end)."""
        self._node.shutdown(wait)
        self._map.shutdown(wait)
        self._aio.close(wait)
        release_resources()

    def __enter__(self) -> HypernodesEngine:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        # After Ctrl-C (or SystemExit) do not wait for items that may never return.
        interrupted = exc_type is not None and not issubclass(exc_type, Exception)
        self.shutdown(wait=not interrupted)

    def __reduce__(self) -> tuple[Any, ...]:
        # A copy for a worker process: same configuration, no workers.
        return (type(self), (self._node, self._map, self.max_workers, self.batch_size))

    def __repr__(self) -> str:
        return (
            f"HypernodesEngine(node_executor={_label(self.node_executor)}, "
            f"map_executor={_label(self.map_executor)}, max_workers={self.max_workers!r})"
        )


def _label(spec: Any) -> str:
    return repr(spec) if isinstance(spec, str) else type(spec).__name__


def _release(executors: tuple[Executor, ...], aio: LevelPools) -> None:
    for executor in executors:
        executor.shutdown(wait=False)
    aio.close(False)


async def bridge(rows: Iterator[Any]) -> AsyncIterator[Any]:
    """Rows of a blocking iterator, each fetched in a thread so the event loop keeps running."""
    loop = asyncio.get_running_loop()
    done = object()
    try:
        while True:
            pair = await loop.run_in_executor(None, next, rows, done)
            if pair is done:
                return
            yield pair
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            await loop.run_in_executor(None, close)


_DEFAULT: HypernodesEngine | None = None


def default_engine() -> HypernodesEngine:
    """The shared sequential engine used by pipelines that set none."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = HypernodesEngine()
    return _DEFAULT


def make_executor(spec: Any, role: str, max_workers: int | None) -> Executor:
    """The executor for ``spec`` (a name, one of ours, or a foreign ``submit``/``shutdown`` object)."""
    if isinstance(spec, str):
        if spec == "parallel" and role == "node_executor":
            raise _node_parallel_error()
        factory: dict[str, Callable[[int | None], Executor]] = {
            "sequential": lambda _: SequentialExecutor(),
            "threaded": ThreadedExecutor,
            "async": AsyncExecutor,
            "parallel": ParallelExecutor,
        }
        if spec not in factory:
            raise ExecutorError(
                f"{role}={spec!r} is not an executor; choose one of {list(NAMES)} or pass an "
                "object with submit(fn, *args) and shutdown(wait=True)"
            )
        return factory[spec](max_workers)
    if isinstance(spec, Executor):
        if role == "node_executor" and not spec.schedules_nodes:
            raise _node_parallel_error()
        return spec
    if callable(getattr(spec, "submit", None)) and callable(getattr(spec, "shutdown", None)):
        return CustomExecutor(spec, max_workers)
    raise ExecutorError(
        f"{role}={spec!r} is not an executor; choose one of {list(NAMES)} or pass an object "
        "with submit(fn, *args) -> Future and shutdown(wait=True)"
    )


def _node_parallel_error() -> ExecutorError:
    return ExecutorError(
        "node_executor='parallel' is not supported: sending every node of an item to another "
        "process costs more than it gains and cannot share nested pipelines' state. Use "
        "node_executor='threaded' (or 'async') for concurrency inside an item, and "
        "map_executor='parallel' to spread items over CPU cores"
    )
