"""The executors of :class:`~hypernodes.engines.HypernodesEngine`: where steps and items run.

``"sequential"``, ``"threaded"`` and ``"async"`` can schedule both the nodes of one item and the
items of a map; ``"parallel"`` (:class:`~hypernodes.engines.parallel.ParallelExecutor`) only items.
An object with ``submit(fn, *args) -> Future`` and ``shutdown(wait=True)`` (a user's
``ThreadPoolExecutor``, ``client.get_executor()`` of Dask) is wrapped in :class:`CustomExecutor`.

Nesting without deadlocks.  A pipeline nested in a node, or a map inside a map item, waits for
work it hands to an executor.  If that work queued behind the very tasks that wait for it in one
bounded pool, nothing would move.  So the built-in pools are kept per *level*: a thread belongs to
level 0 (a caller) or to the level of the pool that started it, and it only ever hands work to the
pools of the next level.  Every wait goes from one level to a deeper one, and the deepest work
waits for nothing, so every level drains.  Each level holds at most ``max_workers`` threads and
the threads are only started when work reaches that level.  A foreign executor cannot be split by
level, so work that would be handed to it from one of its own tasks runs in that task's thread.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import aclosing, contextmanager
from functools import partial
from typing import Any

from ..exceptions import ExecutorError
from .aio import run_sync
from .context import RunContext
from .plan import Plan, run_items
from .scheduling import (
    ItemRunner,
    Offload,
    aitem_task,
    arun_dataflow,
    arun_one,
    arun_sequential,
    astream_batched,
    item_task,
    run_batch,
    run_dataflow,
    run_item_inline,
    stream_batched,
)

Rows = Iterator[tuple[int, dict[str, Any]]]

NAMES = ("sequential", "async", "threaded", "parallel")

_state = threading.local()
_OUTSIDE: frozenset[int] = frozenset()


def current_level() -> int:
    """The scheduling level of this thread: 0 for a caller, ``n`` in a pool of level ``n``."""
    return getattr(_state, "level", 0)


def _inside_of() -> frozenset[int]:
    """The foreign executors whose task this thread is working for, directly or through ours."""
    return getattr(_state, "inside", _OUTSIDE)


def _enter_level(level: int) -> None:
    _state.level = level


def _carry(inside: frozenset[int], fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn`` on behalf of a task of the foreign executors ``inside`` (in one of our pools)."""
    previous = _inside_of()
    _state.inside = inside
    try:
        return fn(*args)
    finally:
        _state.inside = previous


class Executor:
    """Base of the built-in executors: how one item's steps run, and how a map's items run.

    Subclasses override :meth:`run_item` and :meth:`arun_item` (node role) and :meth:`map_items`
    (map role).  ``lease()`` marks a call in progress: :meth:`shutdown` waits for the last call
    to end before it stops workers, so one pipeline finishing never breaks another that shares the
    engine, and a later call simply starts fresh workers.
    """

    name = "executor"

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is not None and max_workers < 1:
            raise ExecutorError(f"max_workers must be at least 1, got {max_workers}")
        self.max_workers = max_workers
        self._lock = threading.Lock()
        self._active = 0
        self._closing = False

    # -- node role ---------------------------------------------------------------------------

    def run_item(
        self, plan: Plan, values: dict[str, Any], ctx: RunContext, tolerant: bool, index: int
    ) -> dict[str, Any]:
        """Run the steps of one item from a synchronous caller and return its outputs."""
        raise NotImplementedError

    async def arun_item(
        self,
        plan: Plan,
        values: dict[str, Any],
        ctx: RunContext,
        tolerant: bool,
        index: int,
        offload: Offload,
    ) -> dict[str, Any]:
        """Run one item from inside an event loop (an async map); ``offload`` runs sync code in a
        thread.  By default the whole item is one trip to ``offload``."""
        return await offload(self.run_item, plan, values, ctx, tolerant, index)

    # -- map role ----------------------------------------------------------------------------

    def iter_items(
        self,
        node: Executor,
        plan: Plan,
        items: Iterable[dict[str, Any]],
        count: int | None,
        ctx: RunContext,
        tolerant: bool,
        ordered: bool = True,
    ) -> Rows:
        """Run every item with ``node`` scheduling its steps; yield ``(index, row)`` in input
        order, or as items complete when not ``ordered``.  ``count`` may be None (unknown)."""
        raise NotImplementedError

    def map_items(
        self,
        node: Executor,
        plan: Plan,
        items: Iterable[dict[str, Any]],
        count: int | None,
        ctx: RunContext,
        tolerant: bool,
    ) -> list[dict[str, Any]]:
        """Run every item; rows in input order."""
        return [row for _, row in self.iter_items(node, plan, items, count, ctx, tolerant)]

    # -- lifetime ----------------------------------------------------------------------------

    @contextmanager
    def lease(self) -> Iterator[None]:
        """Mark a call in progress for as long as the ``with`` block runs."""
        with self._lock:
            self._active += 1
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1
                close = self._active == 0 and self._closing
                if close:
                    self._closing = False
            if close:
                self._release(wait=False)

    def shutdown(self, wait: bool = True) -> None:
        """Stop this executor's workers now, or when the calls still running end.

        The executor stays usable: the next call starts new workers.
        """
        with self._lock:
            if self._active:
                self._closing = True
                return
        self._release(wait)

    def _release(self, wait: bool) -> None:
        """Stop the workers (subclasses that hold some)."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.max_workers,))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_workers={self.max_workers!r})"


def sequential_map(
    node: Executor,
    plan: Plan,
    items: Iterable[dict[str, Any]],
    ctx: RunContext,
    tolerant: bool,
) -> list[dict[str, Any]]:
    """Items one after the other in this thread, with ``node`` scheduling each item's steps."""
    if isinstance(node, SequentialExecutor) and not tolerant:
        return run_items(plan, items, ctx)
    return [row for _, row in sequential_items(node, plan, items, ctx, tolerant)]


def sequential_items(
    node: Executor,
    plan: Plan,
    items: Iterable[dict[str, Any]],
    ctx: RunContext,
    tolerant: bool,
) -> Rows:
    """:func:`sequential_map` as a stream of ``(index, row)``."""
    for index, values in enumerate(items):
        yield index, item_task(node, plan, values, ctx, tolerant, index)


class SequentialExecutor(Executor):
    """One thing at a time, in the calling thread: predictable and free of overhead."""

    name = "sequential"

    def run_item(
        self, plan: Plan, values: dict[str, Any], ctx: RunContext, tolerant: bool, index: int
    ) -> dict[str, Any]:
        if tolerant:
            return run_item_inline(plan, values, ctx, tolerant, index)
        return plan.run_item(values, ctx)

    async def arun_item(
        self,
        plan: Plan,
        values: dict[str, Any],
        ctx: RunContext,
        tolerant: bool,
        index: int,
        offload: Offload,
    ) -> dict[str, Any]:
        return await arun_sequential(plan, values, ctx, offload, tolerant, index)

    def iter_items(
        self,
        node: Executor,
        plan: Plan,
        items: Iterable[dict[str, Any]],
        count: int | None,
        ctx: RunContext,
        tolerant: bool,
        ordered: bool = True,
    ) -> Rows:
        return sequential_items(node, plan, items, ctx, tolerant)

    def map_items(
        self,
        node: Executor,
        plan: Plan,
        items: Iterable[dict[str, Any]],
        count: int | None,
        ctx: RunContext,
        tolerant: bool,
    ) -> list[dict[str, Any]]:
        return sequential_map(node, plan, items, ctx, tolerant)


class _LevelPools:
    """Thread pools of one executor, one per scheduling level, started on first use."""

    def __init__(self, workers: int, prefix: str) -> None:
        self.workers = workers
        self.prefix = prefix
        self._lock = threading.Lock()
        self._pools: dict[int, ThreadPoolExecutor] = {}

    def get(self, level: int) -> ThreadPoolExecutor:
        pool = self._pools.get(level)
        if pool is None:
            with self._lock:
                pool = self._pools.get(level)
                if pool is None:
                    pool = self._pools[level] = ThreadPoolExecutor(
                        max_workers=self.workers,
                        thread_name_prefix=f"{self.prefix}-L{level}",
                        initializer=_enter_level,
                        initargs=(level,),
                    )
        return pool

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        """Hand ``fn(*args)`` to the pool of the level below the calling thread."""
        pool = self.get(current_level() + 1)
        inside = _inside_of()
        if inside:
            return pool.submit(_carry, inside, fn, *args)
        return pool.submit(fn, *args)

    def close(self, wait: bool) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.shutdown(wait=wait, cancel_futures=True)


class ThreadedExecutor(Executor):
    """Threads: independent nodes, or map items, run at the same time.

    ``max_workers`` threads per nesting level (default ``min(32, CPUs + 4)``, the standard
    library's I/O-friendly default).  Good for I/O and for
    work that releases the GIL (numpy, pandas, most C extensions).
    """

    name = "threaded"

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__(max_workers)
        self.workers = max_workers or min(32, (os.cpu_count() or 1) + 4)
        self._pools = _LevelPools(self.workers, "hypernodes-threaded")

    def run_item(
        self, plan: Plan, values: dict[str, Any], ctx: RunContext, tolerant: bool, index: int
    ) -> dict[str, Any]:
        return run_dataflow(plan, values, ctx, self._pools.submit, tolerant, index)

    def iter_items(
        self,
        node: Executor,
        plan: Plan,
        items: Iterable[dict[str, Any]],
        count: int | None,
        ctx: RunContext,
        tolerant: bool,
        ordered: bool = True,
    ) -> Rows:
        submit, window = self._pools.submit, 2 * self.workers
        return submitted_items(submit, window, node, plan, items, ctx, tolerant, ordered)

    def _release(self, wait: bool) -> None:
        self._pools.close(wait)


def submitted_items(
    submit: Callable[..., Future],
    window: int,
    node: Executor,
    plan: Plan,
    items: Iterable[dict[str, Any]],
    ctx: RunContext,
    tolerant: bool,
    ordered: bool,
) -> Rows:
    """A map over a futures executor: items in batches (see ``scheduling.stream_batched``), at
    most ``window`` batches in flight."""
    run = ItemRunner(node, plan, ctx, tolerant, isinstance(node, SequentialExecutor))
    return stream_batched(submit, run, items, window, ordered)


def offloads_whole_items(node: Any, plan: Plan) -> bool:
    """Whether the node executor's ``arun_item`` is ``run_item`` in one trip to a thread, so that
    several items of an async map may share one trip (a batch).

    Not so for the async node executor (its steps are tasks on the loop), nor for a sequential
    one whose plan has ``async def`` steps (those are awaited on the caller's loop).
    """
    inner = getattr(node, "inner", node)  # events.ObservedItems wraps the node executor
    if isinstance(inner, AsyncExecutor):
        return False
    if isinstance(inner, SequentialExecutor):
        return not any(step.arun is not None for step in plan.steps)
    return type(inner).arun_item is Executor.arun_item


def offloaded_items(
    offload: Offload,
    window: int,
    node: Any,
    plan: Plan,
    items: Iterable[dict[str, Any]],
    ctx: RunContext,
    tolerant: bool,
    ordered: bool,
) -> AsyncIterator[list[tuple[int, dict[str, Any]]]]:
    """The items of a map on the running loop, at most ``window`` batches at once: batches of
    items in one trip to ``offload`` each when the node executor allows it, otherwise each item
    a task of its own.  Yields lists of ``(index, row)`` as they are ready."""
    if offloads_whole_items(node, plan):
        runner = ItemRunner(node, plan, ctx, tolerant, isinstance(node, SequentialExecutor))

        def start_batch(pairs: list[tuple[int, Any]], stop: Any) -> Awaitable[Any]:
            return offload(run_batch, runner, pairs, stop)

        return astream_batched(start_batch, items, window, ordered)

    def start(index: int, values: dict[str, Any]) -> Awaitable[dict[str, Any]]:
        return aitem_task(node, plan, values, ctx, tolerant, index, offload)

    return astream_batched(partial(arun_one, start), items, window, ordered, adaptive=False)


class AsyncExecutor(Executor):
    """An asyncio event loop: up to ``max_workers`` (default 100) things in flight at once.

    ``async def`` nodes are awaited on the loop; sync nodes run in a thread pool of the same size so
    they never block it, which is what lets blocking I/O overlap without rewriting anything.
    The loop is the calling thread's own (no thread hop for coroutines); when the caller already
    runs a loop (Jupyter) the work gets its own loop in a helper thread while the caller waits.
    """

    name = "async"

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__(max_workers)
        self.limit = max_workers or 100
        self._pools = _LevelPools(self.limit, "hypernodes-async")

    def _offload(self) -> Offload:
        """Run sync callables in this executor's pool for the loop thread's level."""
        import asyncio

        loop = asyncio.get_running_loop()
        pool = self._pools.get(current_level() + 1)
        inside = _inside_of()
        if inside:
            return partial(loop.run_in_executor, pool, partial(_carry, inside))
        return partial(loop.run_in_executor, pool)

    def run_item(
        self, plan: Plan, values: dict[str, Any], ctx: RunContext, tolerant: bool, index: int
    ) -> dict[str, Any]:
        return run_sync(_carried(self._dataflow(plan, values, ctx, tolerant, index)))

    async def _dataflow(
        self, plan: Plan, values: dict[str, Any], ctx: RunContext, tolerant: bool, index: int
    ) -> dict[str, Any]:
        return await arun_dataflow(plan, values, ctx, self._offload(), tolerant, index)

    async def arun_item(
        self,
        plan: Plan,
        values: dict[str, Any],
        ctx: RunContext,
        tolerant: bool,
        index: int,
        offload: Offload,
    ) -> dict[str, Any]:
        return await self._dataflow(plan, values, ctx, tolerant, index)

    def astream(
        self,
        node: Executor,
        plan: Plan,
        items: Iterable[dict[str, Any]],
        ctx: RunContext,
        tolerant: bool,
        ordered: bool = True,
    ) -> AsyncIterator[list[tuple[int, dict[str, Any]]]]:
        """The items on the running loop, at most ``limit`` batches at once: lists of
        ``(index, row)`` as they are ready (in input order when ``ordered``)."""
        return offloaded_items(
            self._offload(), self.limit, node, plan, items, ctx, tolerant, ordered
        )

    def iter_items(
        self,
        node: Executor,
        plan: Plan,
        items: Iterable[dict[str, Any]],
        count: int | None,
        ctx: RunContext,
        tolerant: bool,
        ordered: bool = True,
    ) -> Rows:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:  # the caller runs a loop: the whole map runs on a helper thread's loop
            yield from self.map_rows(node, plan, items, ctx, tolerant, ordered)
            return
        # Drive the stream on this thread's loop, one ready batch at a time.
        batches = None
        owner = threading.current_thread()
        try:
            batches = run_sync(_carried(self._start(node, plan, items, ctx, tolerant, ordered)))
            while True:
                batch = run_sync(_carried(_next_batch(batches)))
                if batch is None:
                    return
                yield from batch
        finally:
            if batches is not None:
                _close_stream(batches, owner)

    async def _start(self, *args: Any) -> AsyncIterator[list[tuple[int, dict[str, Any]]]]:
        return self.astream(*args)

    def map_items(
        self,
        node: Executor,
        plan: Plan,
        items: Iterable[dict[str, Any]],
        count: int | None,
        ctx: RunContext,
        tolerant: bool,
    ) -> list[dict[str, Any]]:
        return [row for _, row in self.map_rows(node, plan, items, ctx, tolerant, True)]

    def map_rows(
        self,
        node: Executor,
        plan: Plan,
        items: Iterable[dict[str, Any]],
        ctx: RunContext,
        tolerant: bool,
        ordered: bool,
    ) -> list[tuple[int, dict[str, Any]]]:
        """Every ``(index, row)`` from one trip to the loop."""

        async def collect() -> list[tuple[int, dict[str, Any]]]:
            rows: list[tuple[int, dict[str, Any]]] = []
            # closed here, on this loop, also when an item fails (not later by the collector)
            async with aclosing(self.astream(node, plan, items, ctx, tolerant, ordered)) as stream:
                async for batch in stream:
                    rows.extend(batch)
            return rows

        return run_sync(_carried(collect()))

    def _release(self, wait: bool) -> None:
        self._pools.close(wait)

    def __repr__(self) -> str:
        return f"AsyncExecutor(max_workers={self.limit})"


def _close_stream(batches: AsyncIterator[Any], owner: threading.Thread) -> None:
    """Close a stream on the loop it runs on: this thread's own, when this is the thread that
    drove it and no loop runs here.  A stream dropped elsewhere (collected on another thread or
    inside a running loop) cannot be closed from there; its tasks end with their loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        if threading.current_thread() is owner:
            run_sync(batches.aclose())  # type: ignore[attr-defined]


async def _next_batch(batches: AsyncIterator[Any]) -> Any:
    return await anext(batches, None)


def _carried(coro: Any) -> Any:
    """Wrap ``coro`` so that it runs with the calling thread's scheduling state, also when
    :func:`run_sync` runs it in a helper thread (the caller already runs an event loop)."""
    level, inside = current_level(), _inside_of()

    async def carried() -> Any:
        previous = current_level(), _inside_of()
        _state.level, _state.inside = level, inside
        try:
            return await coro
        finally:
            _state.level, _state.inside = previous

    return carried()


class CustomExecutor(Executor):
    """Adapts a user's executor (``submit``/``shutdown``) to both roles.

    The engine never shuts it down: whoever created it owns it.  Work handed to it from one of its
    own tasks runs inline in that task (see the module docstring).  Functions and arguments are
    passed to ``submit`` as they are; an executor that runs them in other processes must be able to
    pickle them, and the outputs come back as the tasks' results.
    """

    name = "custom"

    def __init__(self, target: Any, workers: int | None = None) -> None:
        super().__init__(None)
        self.target = target
        self.workers = workers or getattr(target, "_max_workers", None) or os.cpu_count() or 1
        self._remote: bool | None = None

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        token = id(self.target)
        inside = _inside_of()
        if token in inside:
            return _done(fn, *args)
        return self.target.submit(_inside, inside | {token}, current_level() + 1, fn, *args)

    def run_item(
        self, plan: Plan, values: dict[str, Any], ctx: RunContext, tolerant: bool, index: int
    ) -> dict[str, Any]:
        return run_dataflow(plan, values, ctx, self.submit, tolerant, index, inline_single=False)

    def iter_items(
        self,
        node: Executor,
        plan: Plan,
        items: Iterable[dict[str, Any]],
        count: int | None,
        ctx: RunContext,
        tolerant: bool,
        ordered: bool = True,
    ) -> Rows:
        if not self.remote():
            submit, window = self.submit, 2 * self.workers
            return submitted_items(submit, window, node, plan, items, ctx, tolerant, ordered)
        from .remote import PlanSpec, in_worker, remote_items

        if in_worker():
            return sequential_items(node, plan, items, ctx, tolerant)
        on_error = "continue" if tolerant else "raise"
        where = f"a worker process of {type(self.target).__name__}"
        spec = PlanSpec.for_call(plan, ctx, getattr(node, "inner", node), on_error, where)
        return remote_items(self.target.submit, spec, items, count, self.workers, ctx, ordered)

    def remote(self) -> bool:
        """Whether the executor runs tasks in other processes (asked once, with a tiny task).

        Items then travel through the remote kit, like ``"parallel"`` ones: the plan once per
        worker, items in chunks, events and cache writes relayed back.
        """
        if self._remote is None:
            self._remote = self.target.submit(os.getpid).result() != os.getpid()
        return self._remote

    def __reduce__(self) -> tuple[Any, ...]:
        # A copy of the engine sent to a worker process runs these steps sequentially: the
        # user's executor belongs to the process that made it.
        return (SequentialExecutor, ())

    def __repr__(self) -> str:
        return f"CustomExecutor({self.target!r})"


def _inside(inside: frozenset[int], level: int, fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn`` as a task of foreign executors ``inside`` (the last one runs it), at ``level``."""
    previous = current_level(), _inside_of()
    _state.level, _state.inside = level, inside
    try:
        return fn(*args)
    finally:
        _state.level, _state.inside = previous


def _done(fn: Callable[..., Any], *args: Any) -> Future:
    """A future already holding the outcome of ``fn(*args)``, run in this thread."""
    future: Future = Future()
    try:
        future.set_result(fn(*args))
    except Exception as exc:
        future.set_exception(exc)
    return future


def make_executor(spec: Any, role: str, max_workers: int | None) -> Executor:
    """The executor for ``spec`` (a name, one of ours, or a foreign ``submit``/``shutdown`` object)."""
    from ..engines.parallel import ParallelExecutor

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
    if isinstance(spec, ParallelExecutor) and role == "node_executor":
        raise _node_parallel_error()
    if isinstance(spec, Executor):
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
