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
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor as FuturesExecutor
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Literal

from ..exceptions import ExecutorError
from ..execution.context import MapCall, RunContext
from ..execution.driver import Backend as RemoteBackend
from ..execution.driver import default_chunk_size, remote_map
from ..execution.executors import Executor
from ..execution.plan import Plan, chunk_size_for
from ..execution.remote import run_chunk

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
        self, call: MapCall, items: Iterable[dict[str, Any]], count: int | None
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        return remote_map(
            _WHERE,
            call,
            items,
            count,
            workers=self.workers,
            backend=_Chunks(self),
            chunk_size=_chunk_size(call.plan, count, self.workers, call.ctx),
            window=self.window,
        )

    @property
    def window(self) -> int:
        return 2 * self.workers

    # -- processes ---------------------------------------------------------------------------

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Run ``fn(*args, **kwargs)`` in one of the worker processes (``fn`` and the arguments
        must pickle); its ``Future``."""
        return self._get_pool().submit(fn, *args, **kwargs)

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


class _Chunks(RemoteBackend):
    """Chunks on the executor's pool of worker processes, surviving crashed workers.

    When a worker dies, every chunk in flight fails with it (``BrokenProcessPool``) and the pool
    is replaced.  The driver runs each such chunk again whole on new workers (most were only
    bystanders), and a chunk that crashes again one item at a time, each item twice before it
    is blamed.
    """

    crashes = (BrokenProcessPool,)
    whole_retries = 1
    item_tries = 2

    def __init__(self, executor: ParallelExecutor) -> None:
        super().__init__(executor._isolating)
        self.executor = executor
        self.stopped = False

    def interrupt(self) -> None:
        """Ctrl-C: cancel queued chunks and kill the workers at once."""
        self.stopped = True
        self.executor._kill(self.executor._pool)

    def once(self, token: str, blob: Any, chunk: bytes, start: int) -> bytes:
        if self.stopped:
            raise KeyboardInterrupt
        pool = self.executor._get_pool()
        try:
            return pool.submit(run_chunk, token, blob, chunk, start).result()
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
