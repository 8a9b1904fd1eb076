"""``ParallelExecutor``: map items over worker processes, for CPU-bound per-item work.

The parent never pickles a compiled plan (it holds closures).  It sends the plan's nodes, the
requested outputs and the provided input names once per worker (cached there by a token), then
items in chunks, so that thousands of small items are a handful of round trips.  Each worker
recompiles the plan and runs its chunk with the engine's node executor; rows come back in order.

Processes come from ``loky`` (robust to crashed workers, reusable across calls, workers that can
run functions defined in ``__main__`` or a notebook because everything travels as ``cloudpickle``
bytes).  Without loky the standard library's ``ProcessPoolExecutor`` is used.
"""

from __future__ import annotations

import itertools
import math
import os
import pickle
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Executor as FuturesExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Literal

from ..callbacks import EventRecorder
from ..context import RunContext
from ..exceptions import ExecutorError, UnpicklableError
from ..graph import PipelineGraph
from ..plan import Plan, compile_plan, mark_item
from .executors import Executor, SequentialExecutor, run_ordered, sequential_map

#: set in worker processes: a "parallel" map nested inside a worker runs its items in the worker
_IN_WORKER = False
#: compiled plans in a worker process, by payload token (most recent last)
_WORKER_PLANS: OrderedDict[str, tuple[Plan, RunContext, Executor]] = OrderedDict()
_CACHED_PLANS = 16
#: most items sent to a worker in one task
MAX_CHUNK = 1024

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
        self._payloads: OrderedDict[tuple[Any, ...], tuple[Any, ...]] = OrderedDict()

    def run_item(
        self, plan: Plan, values: dict[str, Any], ctx: RunContext, tolerant: bool, index: int
    ) -> dict[str, Any]:
        raise ExecutorError("ParallelExecutor schedules map items only, not the nodes of an item")

    def map_items(
        self,
        node: Executor,
        plan: Plan,
        items: Iterable[dict[str, Any]],
        count: int,
        ctx: RunContext,
        tolerant: bool,
    ) -> list[dict[str, Any]]:
        if _IN_WORKER or count == 0:
            return sequential_map(node, plan, items, ctx, tolerant)
        token, blob = self._payload(node, plan, ctx)
        size = max(1, min(MAX_CHUNK, math.ceil(count / (self.workers * 4))))
        pool = self._get_pool()
        tasks = (
            (pool.submit, run_chunk, token, blob, _dump_chunk(chunk, start), start, tolerant)
            for start, chunk in _chunks(items, size, plan.constants)
        )
        try:
            results, _, error = run_ordered(_call, tasks, 2 * self.workers)
        except KeyboardInterrupt:
            self._kill(pool)
            raise
        except BrokenProcessPool as exc:
            error = exc
        if isinstance(error, BrokenProcessPool):
            self._discard(pool)
            error.add_note(
                "hypernodes: a worker process of map_executor='parallel' died (killed, out of "
                "memory, or a crash in C code); the next map starts new workers"
            )
        if error is not None:
            raise error
        rows: list[dict[str, Any]] = []
        for blob_rows in results:
            rows.extend(_relay(pickle.loads(blob_rows), ctx))
        return rows

    # -- payload -----------------------------------------------------------------------------

    def _payload(self, node: Executor, plan: Plan, ctx: RunContext) -> tuple[str, bytes]:
        """The token and cloudpickle bytes that let a worker rebuild ``plan`` and its context."""
        hooks = _recorded_hooks(ctx)
        key = (id(plan), id(ctx.engine), id(ctx.cache), ctx.path, id(node), hooks)
        with self._pool_lock:
            entry = self._payloads.get(key)
            same = (plan, ctx.engine, ctx.cache, node)
            if entry is not None and all(a is b for a, b in zip(entry, same)):
                self._payloads.move_to_end(key)
                return entry[4], entry[5]
        import cloudpickle

        nodes = [step.node for step in plan.steps]
        label = ctx.path[-1] if ctx.path else "pipeline"
        # Callbacks stay in this process: workers record the events they handle, and the rows
        # come back with them to be replayed here.  The cache travels (a disk cache by path).
        recorder = EventRecorder(hooks) if hooks else None
        worker_ctx = RunContext(ctx.engine, ctx.cache, recorder, ctx.path, ctx.items)
        payload = (nodes, plan.output_names, plan.provided, label, worker_ctx, node)
        try:
            blob = cloudpickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise _unpicklable_payload(nodes, worker_ctx, node, exc) from exc
        token = uuid.uuid4().hex
        with self._pool_lock:
            self._payloads[key] = (plan, ctx.engine, ctx.cache, node, token, blob)
            while len(self._payloads) > _CACHED_PLANS:
                self._payloads.popitem(last=False)
        return token, blob

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
            self._payloads.clear()
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


# ---------------------------------------------------------------------------------------------
# Items out, rows back


def _chunks(
    items: Iterable[dict[str, Any]], size: int, constants: dict[str, Any]
) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """``(start index, items)`` chunks; defaults the worker's plan adds itself are left out."""
    source = iter(items)
    start = 0
    while True:
        chunk = list(itertools.islice(source, size))
        if not chunk:
            return
        if constants:
            chunk = [{k: v for k, v in values.items() if k not in constants} for values in chunk]
        yield start, chunk
        start += len(chunk)


def _dump_chunk(chunk: list[dict[str, Any]], start: int) -> bytes:
    import cloudpickle

    try:
        return cloudpickle.dumps(chunk, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise _unpicklable_values(chunk, start, exc, "input", "sent to") from exc


def run_chunk(token: str, blob: bytes, chunk: bytes, start: int, tolerant: bool) -> bytes:
    """In a worker process: run the items of ``chunk`` and return their rows as pickle bytes."""
    global _IN_WORKER
    _IN_WORKER = True
    entry = _WORKER_PLANS.get(token)
    if entry is None:
        nodes, outputs, provided, label, ctx, node = pickle.loads(blob)
        plan = compile_plan(PipelineGraph(nodes, label), outputs, provided, label)
        entry = _WORKER_PLANS[token] = (plan, ctx, node)
        while len(_WORKER_PLANS) > _CACHED_PLANS:
            _WORKER_PLANS.popitem(last=False)
    else:
        _WORKER_PLANS.move_to_end(token)
    plan, ctx, node = entry
    seed = plan.seed
    rows: list[dict[str, Any]] = []
    index = start
    try:
        if isinstance(node, SequentialExecutor) and not tolerant:
            run = plan.run_item
            for values in pickle.loads(chunk):
                rows.append(run(seed(values), ctx))
                index += 1
        else:
            for values in pickle.loads(chunk):
                rows.append(node.run_item(plan, seed(values), ctx, tolerant, index))
                index += 1
    except Exception as exc:
        mark_item(exc, ctx.depth, index)
        if isinstance(ctx.dispatcher, EventRecorder):
            ctx.dispatcher.drain()  # a failed chunk's events are not relayed
        raise
    if isinstance(ctx.dispatcher, EventRecorder):
        return _dump_rows({"rows": rows, "events": ctx.dispatcher.drain()}, start)
    return _dump_rows(rows, start)


def _recorded_hooks(ctx: RunContext) -> tuple[str, ...]:
    """The hooks the caller's callbacks handle: what workers must record."""
    dispatcher = ctx.dispatcher
    if dispatcher is None:
        return ()
    return tuple(hook for hook, listeners in dispatcher.listeners.items() if listeners)


def _relay(reply: Any, ctx: RunContext) -> list[dict[str, Any]]:
    """The rows of a chunk, after replaying the events its worker recorded."""
    if isinstance(reply, dict):
        ctx.dispatcher.replay(reply["events"])
        return reply["rows"]
    return reply


def _dump_rows(rows: Any, start: int) -> bytes:
    import cloudpickle

    try:
        return cloudpickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        plain = rows["rows"] if isinstance(rows, dict) else rows
        if plain is not rows and _pickles(plain) is None:
            raise UnpicklableError(
                f"callback events of the map items from {start} on cannot be sent back from a "
                f"worker process of map_executor='parallel': {exc}"
            ) from exc
        raise _unpicklable_values(plain, start, exc, "output", "sent back from") from exc


# ---------------------------------------------------------------------------------------------
# Saying what cannot be pickled


def _pickles(obj: Any) -> Exception | None:
    import cloudpickle

    try:
        cloudpickle.dumps(obj)
    except Exception as exc:
        return exc
    return None


def _unpicklable_values(
    dicts: Sequence[dict[str, Any]], start: int, exc: Exception, kind: str, where: str
) -> UnpicklableError:
    for offset, values in enumerate(dicts):
        for name, value in values.items():
            problem = _pickles(value)
            if problem is not None:
                return UnpicklableError(
                    f"{kind} {name!r} of map item {start + offset} cannot be {where} a worker "
                    f"process of map_executor='parallel': {problem}. Use picklable values (plain "
                    "data, arrays, dataframes, dataclasses), create such objects inside the node, "
                    "or use map_executor='threaded'"
                )
    return UnpicklableError(f"map items cannot be {where} a worker process: {exc}")


def _unpicklable_payload(
    nodes: Sequence[Any], ctx: RunContext, node_executor: Executor, exc: Exception
) -> UnpicklableError:
    culprit = _find_unpicklable_node(nodes, ())
    if culprit is not None:
        path, problem = culprit
        return UnpicklableError(
            f"map_executor='parallel' must send node {' > '.join(path)!r} to worker processes, "
            f"but it cannot be pickled: {problem}. Its function, or something it uses (a global, "
            "a closure variable, a default value), holds an object that cannot be copied to "
            "another process, such as a lock, an open file or a client connection. Create that "
            "object inside the function, or use map_executor='threaded'"
        )
    for what, obj in (("the cache", ctx.cache), ("the engine", ctx.engine)):
        problem = _pickles(obj)
        if problem is not None:
            return UnpicklableError(
                f"map_executor='parallel' must send {what} ({obj!r}) to worker processes, but it "
                f"cannot be pickled: {problem}"
            )
    return UnpicklableError(f"map_executor='parallel' cannot send the pipeline to workers: {exc}")


def _find_unpicklable_node(
    nodes: Sequence[Any], path: tuple[str, ...]
) -> tuple[tuple[str, ...], Exception] | None:
    from ..pipeline_node import PipelineNode

    for item in nodes:
        problem = _pickles(item)
        if problem is None:
            continue
        where = (*path, item.name)
        if isinstance(item, PipelineNode):
            inner = _find_unpicklable_node(item.pipeline.nodes, where)
            if inner is not None:
                return inner
        return where, problem
    return None
