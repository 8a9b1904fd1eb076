"""``ParallelExecutor``: map items over worker processes, for CPU-bound per-item work.

The items travel through the remote kit (:mod:`hypernodes.execution.remote`): the plan's spec once
per worker, then items in chunks, so that thousands of small items are a handful of round trips;
rows, callback events and cache writes come back and are replayed here in item order.

Processes come from ``loky`` (robust to crashed workers, reusable across calls, workers that can
run functions defined in ``__main__`` or a notebook because everything travels as ``cloudpickle``
bytes).  Without loky the standard library's ``ProcessPoolExecutor`` is used.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures import Executor as FuturesExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Literal

from ..exceptions import ExecutorError
from ..execution.context import MapCall, RunContext
from ..execution.driver import Backend as RemoteBackend
from ..execution.driver import default_chunk_size, remote_map
from ..execution.executors import Executor
from ..execution.plan import Plan, chunk_size_for
from ..execution.remote import run_chunk
from ..model.checks import check_seconds

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
        self.idle_timeout = check_seconds(idle_timeout, "idle_timeout", "ParallelExecutor")
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
            local=True,  # worker processes of this machine: they import what this one can
            chunk_size=_chunk_size(call.plan, count, self.workers, call.ctx),
            window=self.window,
        )

    @property
    def window(self) -> int:
        return 2 * self.workers

    # -- processes ---------------------------------------------------------------------------

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
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
        #: the chunks sent to the workers and not yet back
        self.running: set[Future[Any]] = set()

    def interrupt(self) -> None:
        """Ctrl-C: cancel queued chunks, interrupt the workers, and kill them once the chunks
        they ran have stored what they finished (see :func:`interrupt_workers`)."""
        self.stopped = True
        pool = self.executor._pool
        if pool is not None:
            interrupt_workers(pool, list(self.running))
        self.executor._kill(pool)

    def once(self, token: str, blob: Any, chunk: bytes, start: int) -> bytes:
        if self.stopped:
            raise KeyboardInterrupt
        pool = self.executor._get_pool()
        try:
            future = pool.submit(run_chunk, token, blob, chunk, start)
            self.running.add(future)
            try:
                return future.result()
            finally:
                self.running.discard(future)
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


#: how long interrupted workers get to unwind and store their finished items before being killed
INTERRUPT_GRACE = 5.0


def interrupt_workers(
    pool: FuturesExecutor, running: list[Future[Any]], grace: float = INTERRUPT_GRACE
) -> None:
    """After Ctrl-C reached only this process (Jupyter's "interrupt" signals the kernel, not its
    workers): cancel the chunks not started, send ``SIGINT`` to the workers so that their items
    stop as Ctrl-C stops them (a ``DiskCache`` writes the items a chunk finished as it unwinds),
    and wait up to ``grace`` seconds for the running chunks to end."""
    for future in running:
        future.cancel()
    started = [future for future in running if not future.done()]
    processes = _processes(pool)
    if not started or not processes:
        return
    for process in processes:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            os.kill(process.pid, signal.SIGINT)
    # A pool queues a few chunks beyond its workers; once each worker has answered for the
    # chunk it was running, what it starts next began after the signal.
    answers = min(len(started), len(processes))
    deadline = time.monotonic() + grace
    pending = set(started)
    while len(started) - len(pending) < answers and pending:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        _, pending = wait(pending, timeout=left, return_when=FIRST_COMPLETED)


def _processes(pool: FuturesExecutor) -> list[Any]:
    """The live worker processes of a loky or standard library pool."""
    return list((getattr(pool, "_processes", None) or {}).values())


def _kill_pool(pool: FuturesExecutor) -> None:
    try:
        import loky
    except ImportError:  # pragma: no cover - loky is a dependency
        loky = None
    if loky is not None and isinstance(pool, loky.ProcessPoolExecutor):
        pool.shutdown(wait=True, kill_workers=True)
        return
    processes = _processes(pool)
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.kill()
    for process in processes:
        process.join(timeout=5)
