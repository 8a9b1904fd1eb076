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
import concurrent.futures
import inspect
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from concurrent.futures import Future
from contextlib import aclosing, contextmanager
from functools import partial
from typing import Any

from ..exceptions import ExecutorError
from ..model.checks import check_whole
from .aio import run_sync
from .context import MapCall, RunContext
from .driver import remote_map
from .loops import (
    ItemRunner,
    Offload,
    arun_dataflow,
    arun_sequential,
    run_dataflow,
    run_item,
    run_item_inline,
    run_items,
)
from .plan import Plan
from .pool import DaemonPool
from .streams import arun_one, astream_batched, run_batch, stream_batched

Rows = Iterator[tuple[int, dict[str, Any]]]


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


class Executor(concurrent.futures.Executor):
    """Base of the built-in executors: how one item's steps run, and how a map's items run.

    Each is also a :class:`concurrent.futures.Executor` (``submit(fn, *args, **kwargs)`` returns
    a ``Future``, with ``map`` and ``with`` blocks), so code written for the original HyperNodes'
    executors, or for the standard library's, can use it directly.

    Subclasses override :meth:`run_item` and :meth:`arun_item` (node role) and :meth:`map_items`
    (map role).  ``lease()`` marks a call in progress: :meth:`shutdown` waits for the last call
    to end before it stops workers, so one pipeline finishing never breaks another that shares the
    engine, and a later call simply starts fresh workers.
    """

    name = "executor"
    #: node role: runs the steps of an item one after the other in the calling thread
    inline = False
    #: map role: runs items as tasks on the caller's event loop (``aimap`` need not bridge)
    loop_native = False
    #: map role: tasks run in other processes, or are pickled on the way (the remote kit carries
    #: the plan once and items in chunks, and names what cannot be pickled)
    remote = False
    #: can schedule the nodes of one item (``node_executor``); process pools cannot
    schedules_nodes = True

    def __init__(self, max_workers: int | None = None) -> None:
        check_workers(max_workers, type(self).__name__)
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

    def offloads_items(self, plan: Plan) -> bool:
        """Whether :meth:`arun_item` is :meth:`run_item` in one trip to a thread, so that several
        items of an async map may share one trip (a batch)."""
        return type(self).arun_item is Executor.arun_item

    @property
    def inner(self) -> Executor:
        """The executor itself (a wrapper that adds item events answers its wrapped one)."""
        return self

    @property
    def window(self) -> int:
        """How many tasks (batches of items) it keeps in flight as a map executor."""
        return 1

    # -- map role ----------------------------------------------------------------------------

    def iter_items(self, call: MapCall, items: Iterable[dict[str, Any]], count: int | None) -> Rows:
        """Run every item of ``call`` with its node executor scheduling the item's steps; yield
        ``(index, row)`` in input order, or as items complete when not ``call.ordered``.
        ``count`` may be None (unknown)."""
        raise NotImplementedError

    def map_items(
        self, call: MapCall, items: Iterable[dict[str, Any]], count: int | None
    ) -> list[dict[str, Any]]:
        """Run every item; rows in input order."""
        return [row for _, row in self.iter_items(call, items, count)]

    # -- as a concurrent.futures executor ---------------------------------------------------

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Run ``fn(*args, **kwargs)`` as a task of this executor; its ``Future``.  The base
        (and the sequential executor) runs it now, in the calling thread."""
        if kwargs:
            return _done(partial(fn, *args, **kwargs))
        return _done(fn, *args)

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

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
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


def check_workers(max_workers: Any, where: str) -> None:
    """Refuse a ``max_workers`` that is not ``None`` or a whole number >= 1."""
    if max_workers is None:
        return
    if type(max_workers) is not int:
        check_whole(max_workers, "max_workers", where, 1)
    if max_workers < 1:
        raise ExecutorError(f"max_workers must be at least 1, got {max_workers}")


def sequential_map(call: MapCall, items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Items one after the other in this thread, the call's node executor scheduling each
    item's steps."""
    if call.node.inline and not call.tolerant:
        return run_items(call.plan, items, call.ctx)
    return [row for _, row in sequential_items(call, items)]


def sequential_items(call: MapCall, items: Iterable[dict[str, Any]]) -> Rows:
    """:func:`sequential_map` as a stream of ``(index, row)``."""
    for index, values in enumerate(items):
        yield index, call.item(index, values)


class SequentialExecutor(Executor):
    """One thing at a time, in the calling thread: predictable and free of overhead."""

    name = "sequential"
    inline = True
    loop_native = True

    def offloads_items(self, plan: Plan) -> bool:
        return not plan.asynchronous  # async def steps are awaited on the caller's loop

    def run_item(
        self, plan: Plan, values: dict[str, Any], ctx: RunContext, tolerant: bool, index: int
    ) -> dict[str, Any]:
        if tolerant:
            return run_item_inline(plan, values, ctx, tolerant, index)
        return run_item(plan, values, ctx)

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

    def iter_items(self, call: MapCall, items: Iterable[dict[str, Any]], count: int | None) -> Rows:
        return sequential_items(call, items)

    def map_items(
        self, call: MapCall, items: Iterable[dict[str, Any]], count: int | None
    ) -> list[dict[str, Any]]:
        return sequential_map(call, items)


class LevelPools:
    """Thread pools of one executor, one per scheduling level, started on first use (daemon
    threads: see :mod:`.pool`)."""

    def __init__(self, workers: int, prefix: str) -> None:
        self.workers = workers
        self.prefix = prefix
        self._lock = threading.Lock()
        self._pools: dict[int, DaemonPool] = {}

    def get(self, level: int) -> DaemonPool:
        pool = self._pools.get(level)
        if pool is None:
            with self._lock:
                pool = self._pools.get(level)
                if pool is None:
                    pool = self._pools[level] = DaemonPool(
                        self.workers,
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
        self._pools = LevelPools(self.workers, "hypernodes-threaded")

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Run ``fn(*args, **kwargs)`` in one of this executor's threads."""
        if kwargs:
            return self._pools.submit(partial(fn, *args, **kwargs))
        return self._pools.submit(fn, *args)

    def run_item(
        self, plan: Plan, values: dict[str, Any], ctx: RunContext, tolerant: bool, index: int
    ) -> dict[str, Any]:
        return run_dataflow(plan, values, ctx, self._pools.submit, tolerant, index)

    def iter_items(self, call: MapCall, items: Iterable[dict[str, Any]], count: int | None) -> Rows:
        return submitted_items(self._pools.submit, self.window, call, items)

    @property
    def window(self) -> int:
        return 2 * self.workers

    def _release(self, wait: bool) -> None:
        self._pools.close(wait)


def submitted_items(
    submit: Callable[..., Future], window: int, call: MapCall, items: Iterable[dict[str, Any]]
) -> Rows:
    """A map over a futures executor: items in batches (see ``streams.stream_batched``), at
    most ``window`` batches in flight."""
    return stream_batched(submit, ItemRunner(call), items, window, call.ordered)


def offloaded_items(
    offload: Offload, window: int, call: MapCall, items: Iterable[dict[str, Any]]
) -> AsyncIterator[list[tuple[int, dict[str, Any]]]]:
    """The items of a map on the running loop, at most ``window`` batches at once: batches of
    items in one trip to ``offload`` each when the node executor allows it, otherwise each item
    a task of its own.  Yields lists of ``(index, row)`` as they are ready."""
    if call.node.offloads_items(call.plan):
        runner = ItemRunner(call)

        def start_batch(pairs: list[tuple[int, Any]], stop: Any) -> Awaitable[Any]:
            return offload(run_batch, runner, pairs, stop)

        return astream_batched(start_batch, items, window, call.ordered)

    def start(index: int, values: dict[str, Any]) -> Awaitable[dict[str, Any]]:
        return call.aitem(index, values, offload)

    return astream_batched(partial(arun_one, start), items, window, call.ordered, adaptive=False)


class AsyncExecutor(Executor):
    """An asyncio event loop: up to ``max_workers`` (default 100) things in flight at once.

    ``async def`` nodes are awaited on the loop; sync nodes run in a thread pool of the same size so
    they never block it, which is what lets blocking I/O overlap without rewriting anything.
    The loop is the calling thread's own (no thread hop for coroutines); when the caller already
    runs a loop (Jupyter) the work gets its own loop in a helper thread while the caller waits.
    """

    name = "async"
    loop_native = True

    def offloads_items(self, plan: Plan) -> bool:
        return False  # its steps are tasks on the loop

    @property
    def window(self) -> int:
        return self.limit

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__(max_workers)
        self.limit = max_workers or 100
        self._pools = LevelPools(self.limit, "hypernodes-async")

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Run ``fn(*args, **kwargs)`` in this executor's thread pool; an ``async def`` function
        (or one returning an awaitable) is run to completion on an event loop there."""
        return self._pools.submit(_awaited, partial(fn, *args, **kwargs))

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
        self, call: MapCall, items: Iterable[dict[str, Any]]
    ) -> AsyncIterator[list[tuple[int, dict[str, Any]]]]:
        """The items on the running loop, at most ``limit`` batches at once: lists of
        ``(index, row)`` as they are ready (in input order when ``call.ordered``)."""
        return offloaded_items(self._offload(), self.limit, call, items)

    def iter_items(self, call: MapCall, items: Iterable[dict[str, Any]], count: int | None) -> Rows:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:  # the caller runs a loop: the whole map runs on a helper thread's loop
            yield from self.map_rows(call, items)
            return
        # Drive the stream on this thread's loop, one ready batch at a time.
        batches = None
        owner = threading.current_thread()
        try:
            batches = run_sync(_carried(self._start(call, items)))
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
        self, call: MapCall, items: Iterable[dict[str, Any]], count: int | None
    ) -> list[dict[str, Any]]:
        return [row for _, row in self.map_rows(call, items)]

    def map_rows(
        self, call: MapCall, items: Iterable[dict[str, Any]]
    ) -> list[tuple[int, dict[str, Any]]]:
        """Every ``(index, row)`` from one trip to the loop."""

        async def collect() -> list[tuple[int, dict[str, Any]]]:
            rows: list[tuple[int, dict[str, Any]]] = []
            # closed here, on this loop, also when an item fails (not later by the collector)
            async with aclosing(self.astream(call, items)) as stream:
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

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        if kwargs:
            fn, args = partial(fn, *args, **kwargs), ()
        token = id(self.target)
        inside = _inside_of()
        if token in inside:
            return _done(fn, *args)
        future = self.target.submit(_inside, inside | {token}, current_level() + 1, fn, *args)
        if not callable(getattr(future, "add_done_callback", None)):
            raise self._not_a_future(future)
        return future

    def _not_a_future(self, returned: Any) -> ExecutorError:
        return ExecutorError(
            f"the executor {type(self.target).__name__}'s submit(fn, *args) returned "
            f"{type(returned).__name__}, not a future; HyperNodes waits on what submit returns, "
            "so it must return a concurrent.futures.Future (as ThreadPoolExecutor.submit and "
            "ProcessPoolExecutor.submit do): wrap the call, e.g. "
            "future = Future(); future.set_result(fn(*args)); return future"
        )

    def run_item(
        self, plan: Plan, values: dict[str, Any], ctx: RunContext, tolerant: bool, index: int
    ) -> dict[str, Any]:
        return run_dataflow(plan, values, ctx, self.submit, tolerant, index, inline_single=False)

    def iter_items(self, call: MapCall, items: Iterable[dict[str, Any]], count: int | None) -> Rows:
        if not self.remote:
            return submitted_items(self.submit, self.window, call, items)
        where = f"a worker process of {type(self.target).__name__}"
        return remote_map(
            where, call, items, count, workers=self.workers, submit=self.target.submit
        )

    @property
    def window(self) -> int:
        return 2 * self.workers

    @property
    def remote(self) -> bool:  # type: ignore[override]
        """Whether the executor runs tasks in other processes or pickles them on the way (asked
        once, with a tiny task whose argument must come back as the very same object).

        Items then travel through the remote kit, like ``"parallel"`` ones: the plan once per
        worker, items in chunks, events and cache writes relayed back.
        """
        if self._remote is None:
            box: list[Any] = []
            future = self.target.submit(_identity, box)
            if not callable(getattr(future, "result", None)):
                raise self._not_a_future(future)
            self._remote = future.result() is not box
        return self._remote

    def __reduce__(self) -> tuple[Any, ...]:
        # A copy of the engine sent to a worker process runs these steps sequentially: the
        # user's executor belongs to the process that made it.
        return (SequentialExecutor, ())

    def __repr__(self) -> str:
        return f"CustomExecutor({self.target!r})"


def _identity(value: Any) -> Any:
    """Return ``value`` (the probe of :attr:`CustomExecutor.remote`)."""
    return value


def _inside(inside: frozenset[int], level: int, fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn`` as a task of foreign executors ``inside`` (the last one runs it), at ``level``."""
    previous = current_level(), _inside_of()
    _state.level, _state.inside = level, inside
    try:
        return fn(*args)
    finally:
        _state.level, _state.inside = previous


def _awaited(call: Callable[[], Any]) -> Any:
    """``call()``, run to completion when it gives a coroutine or other awaitable."""
    result = call()
    if inspect.iscoroutine(result):
        return run_sync(result)
    if inspect.isawaitable(result):
        return run_sync(_await(result))
    return result


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _done(fn: Callable[..., Any], *args: Any) -> Future:
    """A future already holding the outcome of ``fn(*args)``, run in this thread."""
    future: Future = Future()
    try:
        future.set_result(fn(*args))
    except Exception as exc:
        future.set_exception(exc)
    return future
