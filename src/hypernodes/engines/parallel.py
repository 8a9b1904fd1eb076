"""``ParallelExecutor``: map items over worker processes, for CPU-bound per-item work.

The items travel through the remote kit (:mod:`hypernodes.execution.remote`): the plan's spec once
per worker, then items in chunks, so that thousands of small items are a handful of round trips;
rows, callback events and cache writes come back and are replayed here in item order.

Processes come from ``loky`` (robust to crashed workers, reusable across calls, workers that can
run functions defined in ``__main__`` or a notebook because everything travels as ``cloudpickle``
bytes).  Without loky the standard library's ``ProcessPoolExecutor`` is used.
"""

from __future__ import annotations

import os
import pickle
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor as FuturesExecutor
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from typing import Any, Literal

from ..exceptions import ExecutorError
from ..execution.context import RunContext
from ..execution.driver import default_chunk_size, remote_map
from ..execution.executors import Executor
from ..execution.plan import Plan, chunk_size_for
from ..execution.remote import PlanSpec, Reply, crashed_reply, merge_replies

_WHERE = "a worker process of map_executor='parallel'"

Backend = Literal["auto", "loky", "process"]


class ParallelExecutor(Executor):
    """Worker processes for the items of a map (``map_executor="parallel"``; not for nodes).

    ``max_workers`` processes (default: the CPUs available).  The pool starts on the first map and
    is reused until :meth:`shutdown`, or until it has been idle for ``idle_timeout`` seconds.
    ``backend`` is ``"loky"``, ``"process"`` (``concurrent.futures.ProcessPoolExecutor``) or
    ``"auto"`` (loky when installed).  Nodes, inputs and outputs travel with cloudpickle, so
    lambdas and functions defined in ``__main__`` work; an object that cannot be pickled at all
    (a lock, an open file, a client) raises :class:`~hypernodes.exceptions.UnpicklableError`.
    Inside a worker, a nested ``"parallel"`` map runs its items in that worker.
    """

    name = "parallel"
    remote = True
    schedules_nodes = False

    def __init__(
        self,
        max_workers: int | None = None,
        idle_timeout: float = 300.0,
        backend: Backend = "auto",
    ) -> None:
        super().__init__(max_workers)
        if backend not in ("auto", "loky", "process"):
            raise ExecutorError(f"backend must be 'auto', 'loky' or 'process', got {backend!r}")
        self.idle_timeout = idle_timeout
        self.backend = backend
        self.workers = max_workers or _cpu_count()
        self._pool: FuturesExecutor | None = None
        self._pool_lock = threading.Lock()
        #: held while the items of a chunk that crashed a worker are run one by one
        self._isolating = threading.Lock()

    def run_item(
        self, plan: Plan, values: dict[str, Any], ctx: RunContext, tolerant: bool, index: int
    ) -> dict[str, Any]:
        raise ExecutorError("ParallelExecutor schedules map items only, not the nodes of an item")

    def iter_items(
        self,
        node: Executor,
        plan: Plan,
        items: Iterable[dict[str, Any]],
        count: int | None,
        ctx: RunContext,
        tolerant: bool,
        ordered: bool = True,
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        with ThreadPoolExecutor(self.window, thread_name_prefix="hypernodes-parallel") as relays:
            chunks = _Chunks(self)
            try:
                yield from remote_map(
                    partial(relays.submit, chunks.run),
                    self.workers,
                    _WHERE,
                    node,
                    plan,
                    items,
                    count,
                    ctx,
                    tolerant,
                    ordered,
                    _chunk_size(plan, count, self.workers, ctx),
                )
            except KeyboardInterrupt:
                chunks.stopped = True
                self._kill(self._pool)
                raise

    @property
    def window(self) -> int:
        return 2 * self.workers

    # -- processes ---------------------------------------------------------------------------

    def _get_pool(self) -> FuturesExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = _start_pool(self.workers, self.idle_timeout, self.backend)
            return self._pool

    def _discard(self, pool: FuturesExecutor) -> None:
        with self._pool_lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False)

    def _kill(self, pool: FuturesExecutor | None) -> None:
        """Stop at once: cancel queued chunks and kill the workers (after Ctrl-C)."""
        if pool is None:
            return
        with self._pool_lock:
            if self._pool is pool:
                self._pool = None
        _kill_pool(pool)

    def _release(self, wait: bool) -> None:
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.max_workers, self.idle_timeout, self.backend))

    def __repr__(self) -> str:
        return f"ParallelExecutor(max_workers={self.workers}, backend={self.backend!r})"


class _Chunks:
    """Runs chunks on the executor's pool from relay threads, surviving crashed workers.

    When a worker dies, every chunk in flight fails with it.  Each such chunk is run again whole
    on new workers (most were only bystanders); a chunk that crashes again is run one item at a
    time, so that only the item that kills its worker fails - with
    :class:`~hypernodes.exceptions.WorkerCrashedError`, as its row's value under
    ``on_error="continue"``.
    """

    def __init__(self, executor: ParallelExecutor) -> None:
        self.executor = executor
        self.stopped = False

    def run(self, fn: Any, token: str, blob: bytes, chunk: bytes, start: int) -> Reply | bytes:
        try:
            return self._once(fn, token, blob, chunk, start)
        except BrokenProcessPool:
            pass
        # One chunk at a time is isolated, so that its items do not die with another's culprit.
        with self.executor._isolating:
            try:
                return self._once(fn, token, blob, chunk, start)
            except BrokenProcessPool:
                pass
            replies: list[Reply] = []
            items, tokens = pickle.loads(chunk)
            for offset, values in enumerate(items):
                reply = self._single(fn, token, blob, values, start + offset, tokens)
                replies.append(reply)
                if reply.error is not None:
                    break
            return merge_replies(replies)

    def _single(
        self,
        fn: Any,
        token: str,
        blob: bytes,
        values: dict[str, Any],
        index: int,
        tokens: dict[str, bytes] | None,
    ) -> Reply:
        """One item alone; a crash is blamed on it when it happens twice in a row."""
        spec = PlanSpec.for_token(token)
        single = spec.dump_items([values], index, tokens)
        for attempt in range(2):
            try:
                return pickle.loads(self._once(fn, token, blob, single, index))
            except BrokenProcessPool as exc:
                if attempt == 1:
                    return crashed_reply(spec, index, _describe_crash(exc))
        raise AssertionError("unreachable")

    def _once(self, fn: Any, *args: Any) -> bytes:
        if self.stopped:
            raise KeyboardInterrupt
        pool = self.executor._get_pool()
        try:
            return pool.submit(fn, *args).result()
        except BrokenProcessPool:
            if self.stopped:
                raise KeyboardInterrupt from None
            self.executor._discard(pool)
            raise


def _chunk_size(plan: Plan, count: int | None, workers: int, ctx: RunContext) -> int | None:
    """The kit's default chunk size, in whole batches for a plan with batch nodes."""
    if plan.segments is None:
        return None
    size = default_chunk_size(count, workers)
    return chunk_size_for(plan, size, getattr(ctx.engine, "batch_size", None))


def _describe_crash(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _cpu_count() -> int:
    try:
        import loky

        return loky.cpu_count()
    except ImportError:  # pragma: no cover - loky is a dependency
        return os.cpu_count() or 1


def _start_pool(workers: int, idle_timeout: float, backend: Backend) -> FuturesExecutor:
    if backend in ("auto", "loky"):
        try:
            import loky
        except ImportError:
            if backend == "loky":
                raise ExecutorError(
                    "backend='loky' needs the loky package: pip install loky"
                ) from None
        else:
            return loky.ProcessPoolExecutor(
                max_workers=workers,
                timeout=idle_timeout,
                initializer=watch_parent,
                initargs=(os.getpid(),),
            )
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # "spawn" starts clean interpreters: forking a process that runs threads can deadlock.
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=watch_parent,
        initargs=(os.getpid(),),
    )


def watch_parent(parent: int, every: float = 1.0) -> None:
    """In a worker process: exit when the process that started it is gone (killed with -9, say),
    instead of living on as an orphan.  A daemon thread checks the parent once a second."""

    def watch() -> None:
        while True:
            time.sleep(every)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="hypernodes-watch-parent", daemon=True).start()


def _kill_pool(pool: FuturesExecutor) -> None:
    try:
        import loky
    except ImportError:  # pragma: no cover - loky is a dependency
        loky = None
    if loky is not None and isinstance(pool, loky.ProcessPoolExecutor):
        pool.shutdown(wait=True, kill_workers=True)
        return
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.kill()
    for process in processes:
        process.join(timeout=5)
