"""Extending the execution core, as docs/architecture.md walks through it.

A new remote backend is a few lines on the remote driver: here, the standard library's
``ProcessPoolExecutor`` as a map executor.  The driver gives it chunking, the plan shipped once
per worker, relayed events and cache writes, a warm map that starts no pool, and crash
isolation, with nothing written for them here.  A new executor is a ``submit`` handed to the
loops: here, a standard-library thread pool in both roles."""

from __future__ import annotations

import inspect
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from hypernodes import HypernodesEngine, ItemError, MemoryCache, Pipeline, node
from hypernodes.exceptions import WorkerCrashedError
from hypernodes.execution.driver import Backend, remote_map
from hypernodes.execution.executors import Executor, submitted_items
from hypernodes.execution.loops import run_dataflow
from hypernodes.execution.remote import run_chunk
from hypernodes.observe.callbacks import PipelineCallback


# --- the whole backend ----------------------------------------------------------------------
class PoolBackend(Backend):
    crashes = (BrokenProcessPool,)  # what a dead worker looks like

    def __init__(self, executor: StdlibProcesses) -> None:
        super().__init__(executor.isolating)
        self.executor = executor

    def once(self, token, blob, chunk, start):
        pool = self.executor.pool()
        try:
            return pool.submit(run_chunk, token, blob, chunk, start).result()
        except BrokenProcessPool:
            self.executor.release(pool)  # the next chunk starts a new pool
            raise


class StdlibProcesses(Executor):
    name, remote, schedules_nodes = "stdlib-processes", True, False

    def __init__(self, max_workers: int = 2) -> None:
        super().__init__(max_workers)
        self.isolating, self._pool, self.started = threading.Lock(), None, 0

    def pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool, self.started = ProcessPoolExecutor(self.max_workers), self.started + 1
            return self._pool

    def release(self, pool=None, wait=False) -> None:
        with self._lock:
            pool, self._pool = (pool or self._pool), None
        if pool is not None:
            pool.shutdown(wait=wait)

    def iter_items(self, call, items, count):
        where = "a worker process of StdlibProcesses"
        backend = PoolBackend(self)
        return remote_map(where, call, items, count, workers=self.max_workers, backend=backend)

    def _release(self, wait: bool) -> None:
        self.release(wait=wait)


# --- end of the backend ---------------------------------------------------------------------


@node(output_name="doubled")
def double(x: int) -> int:
    return 2 * x


@node(output_name="pid")
def where(doubled: int) -> int:
    return os.getpid()


@node(output_name="checked")
def poison(x: int) -> int:
    if x == 3:
        os._exit(1)  # the worker dies with this item
    return x


def test_the_backend_fits_in_forty_lines() -> None:
    lines = inspect.getsource(PoolBackend) + inspect.getsource(StdlibProcesses)
    code = [line for line in lines.splitlines() if line.strip()]
    assert len(code) <= 40, len(code)


class NodeEnds(PipelineCallback):
    def __init__(self) -> None:
        self.ends: list[str] = []

    def on_node_end(self, *, node: str, **_: object) -> None:
        self.ends.append(node)


def test_rows_run_in_worker_processes_with_events_relayed() -> None:
    executor = StdlibProcesses()
    recorder = NodeEnds()
    pipeline = Pipeline([double, where], callbacks=[recorder]).with_engine(
        HypernodesEngine(map_executor=executor)
    )
    try:
        rows = pipeline.map(inputs={"x": list(range(20))}, map_over="x")
    finally:
        executor.shutdown()
    assert [row["doubled"] for row in rows] == [2 * x for x in range(20)]
    assert os.getpid() not in {row["pid"] for row in rows}
    assert recorder.ends.count("double") == 20  # every worker event reached the caller's callback


def test_a_warm_map_starts_no_pool_and_a_cold_one_writes_the_cache_here() -> None:
    executor = StdlibProcesses()
    pipeline = Pipeline([double], cache=MemoryCache()).with_engine(
        HypernodesEngine(map_executor=executor)
    )
    try:
        first = pipeline.map(inputs={"x": [1, 2, 3]}, map_over="x")
        executor.shutdown()
        started = executor.started
        again = pipeline.map(inputs={"x": [1, 2, 3]}, map_over="x")
    finally:
        executor.shutdown()
    assert started == 1
    assert again == first == [{"doubled": 2}, {"doubled": 4}, {"doubled": 6}]
    assert executor.started == 1  # every item was a hit in the caller's MemoryCache


def test_only_the_item_that_kills_its_worker_fails() -> None:
    executor = StdlibProcesses()
    pipeline = Pipeline([poison]).with_engine(HypernodesEngine(map_executor=executor))
    try:
        rows = pipeline.map(inputs={"x": list(range(6))}, map_over="x", on_error="continue")
    finally:
        executor.shutdown()
    failed = [i for i, row in enumerate(rows) if isinstance(row["checked"], ItemError)]
    assert failed == [3]
    assert isinstance(rows[3]["checked"].exception, WorkerCrashedError)
    assert [row["checked"] for i, row in enumerate(rows) if i != 3] == [0, 1, 2, 4, 5]


# --- a new executor: both roles on a standard-library thread pool ---------------------------
class StdlibThreads(Executor):
    name = "stdlib-threads"

    def __init__(self, max_workers: int = 4) -> None:
        super().__init__(max_workers)
        self.pool = ThreadPoolExecutor(max_workers, thread_name_prefix="stdlib-threads")

    def run_item(self, plan, values, ctx, tolerant, index):
        return run_dataflow(plan, values, ctx, self.pool.submit, tolerant, index)

    def iter_items(self, call, items, count):
        return submitted_items(self.pool.submit, 2 * self.max_workers, call, items)

    def _release(self, wait: bool) -> None:
        self.pool.shutdown(wait=wait)


@node(output_name="slept")
def nap(x: int) -> int:
    time.sleep(0.2)
    return x


def test_a_new_executor_overlaps_map_items() -> None:
    executor = StdlibThreads(max_workers=4)
    pipeline = Pipeline([nap, double]).with_engine(HypernodesEngine(map_executor=executor))
    start = time.perf_counter()
    rows = pipeline.map(inputs={"x": list(range(8))}, map_over="x")
    elapsed = time.perf_counter() - start
    executor.shutdown()
    assert [(row["slept"], row["doubled"]) for row in rows] == [(x, 2 * x) for x in range(8)]
    assert elapsed < 1.2  # 8 sleeps of 0.2 s on 4 threads: about 0.4 s, 1.6 s in a row


def test_a_new_executor_runs_independent_nodes_at_once() -> None:
    @node(output_name="a")
    def left(x: int) -> int:
        time.sleep(0.3)
        return x

    @node(output_name="b")
    def right(x: int) -> int:
        time.sleep(0.3)
        return -x

    executor = StdlibThreads()
    pipeline = Pipeline([left, right]).with_engine(HypernodesEngine(node_executor=executor))
    start = time.perf_counter()
    result = pipeline.run({"x": 5})
    elapsed = time.perf_counter() - start
    executor.shutdown()
    assert result == {"a": 5, "b": -5}
    assert elapsed < 0.55  # the two 0.3 s nodes overlapped
