"""``ParallelExecutor``: map items over worker processes, for CPU-bound per-item work.

The items travel through the remote kit (:mod:`hypernodes.engines.remote`): the plan's spec once
per worker, then items in chunks, so that thousands of small items are a handful of round trips;
rows, callback events and cache writes come back and are replayed here in item order.

Processes come from ``loky`` (robust to crashed workers, reusable across calls, workers that can
run functions defined in ``__main__`` or a notebook because everything travels as ``cloudpickle``
bytes).  Without loky the standard library's ``ProcessPoolExecutor`` is used.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor as FuturesExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Literal

from ..context import RunContext
from ..exceptions import ExecutorError
from ..plan import Plan
from .executors import Executor, sequential_items
from .remote import PlanSpec, in_worker, remote_items

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
        if in_worker() or count == 0:
            yield from sequential_items(node, plan, items, ctx, tolerant)
            return
        on_error = "continue" if tolerant else "raise"
        spec = PlanSpec.for_call(plan, ctx, getattr(node, "inner", node), on_error, _WHERE)
        pool = self._get_pool()
        try:
            yield from remote_items(pool.submit, spec, items, count, self.workers, ctx, ordered)
        except KeyboardInterrupt:
            self._kill(pool)
            raise
        except BrokenProcessPool as exc:
            self._discard(pool)
            exc.add_note(
                "hypernodes: a worker process of map_executor='parallel' died (killed, out of "
                "memory, or a crash in C code); the next map starts new workers"
            )
            raise

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

    def _kill(self, pool: FuturesExecutor) -> None:
        """Stop at once: cancel queued chunks and kill the workers (after Ctrl-C)."""
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


def _call(submit: Any, *args: Any) -> Any:
    return submit(*args)


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
            return loky.ProcessPoolExecutor(max_workers=workers, timeout=idle_timeout)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # "spawn" starts clean interpreters: forking a process that runs threads can deadlock.
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


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
