"""The async executor: native ``async def``, sync functions off the loop, a concurrency limit,
callers that already run a loop, and overlap of node- and map-level concurrency."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from hypernodes import HypernodesEngine, Pipeline, node
from hypernodes.engines import AsyncExecutor, ThreadedExecutor

pytestmark = pytest.mark.timeout(60)


class Gauge:
    """Counts how many calls are inside a block at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0
        #: when ``peak`` first reached the level a test waits for (see ``held``)
        self.full_at: float | None = None

    def __enter__(self) -> None:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.now -= 1


def test_async_def_runs_on_the_loop_and_sync_nodes_off_it():
    seen: dict[str, set] = {"async": set(), "loops": set(), "sync": set()}

    @node(output_name="fetched")
    async def fetch(x: int) -> int:
        seen["async"].add(threading.get_ident())
        seen["loops"].add(id(asyncio.get_running_loop()))
        await asyncio.sleep(0.01)
        return x

    @node(output_name="parsed")
    def parse(fetched: int) -> int:
        seen["sync"].add(threading.current_thread().name)
        return fetched * 2

    with HypernodesEngine(map_executor="async") as engine:
        rows = Pipeline([fetch, parse], engine=engine).map({"x": range(20)}, map_over="x")
    assert rows == [{"fetched": x, "parsed": 2 * x} for x in range(20)]
    # Every coroutine ran on one loop, in the thread that called map: no thread hop.
    assert seen["async"] == {threading.get_ident()}
    assert len(seen["loops"]) == 1
    # Sync functions ran in the executor's threads, never on the loop's thread.
    assert seen["sync"] and all(name.startswith("hypernodes-async") for name in seen["sync"])


@pytest.mark.parametrize("limit", [1, 5])
def test_concurrency_limit_is_honoured(limit):
    gauge = Gauge()

    @node(output_name="y")
    async def wait_a_bit(x: int) -> int:
        with gauge:
            await asyncio.sleep(0.02)
        return x

    engine = HypernodesEngine(map_executor=AsyncExecutor(max_workers=limit))
    with engine:
        rows = Pipeline([wait_a_bit], engine=engine).map({"x": range(12)}, map_over="x")
    assert [r["y"] for r in rows] == list(range(12))
    assert gauge.peak == limit


def held(gauge: Gauge, deadline: float) -> bool:
    """Whether a call in ``gauge`` should stay in: until 0.3 s after 100 calls were first in at
    once (time for any call beyond a limit of 100 to come in too), or until ``deadline``."""
    now = time.monotonic()
    if gauge.peak >= 100:
        gauge.full_at = gauge.full_at or now
        return now < gauge.full_at + 0.3
    return now < deadline


def test_default_limit_is_one_hundred_for_sync_and_async_nodes():
    # Calls stay inside their gauge until 100 are in at once, so the peak measures the limit
    # however slowly a busy machine starts them: 100 with a limit of 100; with a lower one the
    # calls wait out the deadline, and with a higher one more calls come in during the 0.3 s.
    sync_gauge, async_gauge = Gauge(), Gauge()
    deadline = time.monotonic() + 20

    @node(output_name="y")
    def blocking(x: int) -> int:
        with sync_gauge:
            while held(sync_gauge, deadline):
                time.sleep(0.01)
        return x

    @node(output_name="z")
    async def waiting(y: int) -> int:
        with async_gauge:
            while held(async_gauge, deadline):
                await asyncio.sleep(0.01)
        return y

    with HypernodesEngine(map_executor="async") as engine:
        rows = Pipeline([blocking, waiting], engine=engine).map({"x": range(150)}, map_over="x")
    assert [r["z"] for r in rows] == list(range(150))
    assert sync_gauge.peak == 100
    assert async_gauge.peak == 100
    assert time.monotonic() < deadline, "the calls waited out the deadline: fewer than 100 at once"


def test_works_when_the_caller_already_runs_an_event_loop():
    @node(output_name="y")
    async def plus_one(x: int) -> int:
        await asyncio.sleep(0)
        return x + 1

    @node(output_name="z")
    def times_two(y: int) -> int:
        return y * 2

    async def notebook_cell():
        # Like a Jupyter cell: a loop is running in this thread while the sync API is called.
        with HypernodesEngine(node_executor="async", map_executor="async") as engine:
            pipeline = Pipeline([plus_one, times_two], engine=engine)
            return pipeline.run({"x": 1}), pipeline.map({"x": [1, 2, 3]}, map_over="x")

    single, rows = asyncio.run(notebook_cell())
    assert single == {"y": 2, "z": 4}
    assert rows == [{"y": 2, "z": 4}, {"y": 3, "z": 6}, {"y": 4, "z": 8}]


def test_async_node_executor_overlaps_independent_nodes():
    @node(output_name="a")
    async def first(x: int) -> int:
        await asyncio.sleep(0.3)
        return x

    @node(output_name="b")
    def second(x: int) -> int:
        time.sleep(0.3)
        return x

    @node(output_name="c")
    async def third(x: int) -> int:
        await asyncio.sleep(0.3)
        return x

    @node(output_name="total")
    def add(a: int, b: int, c: int) -> int:
        return a + b + c

    with HypernodesEngine(node_executor="async") as engine:
        pipeline = Pipeline([first, second, third, add], engine=engine)
        start = time.perf_counter()
        result = pipeline.run({"x": 2})
        elapsed = time.perf_counter() - start
    assert result == {"a": 2, "b": 2, "c": 2, "total": 6}
    assert elapsed < 0.75  # 0.9 s one after the other


def test_threaded_nodes_and_threaded_items_overlap_both():
    gauge = Gauge()

    def napping(name: str):
        def nap(x: int) -> int:
            with gauge:
                time.sleep(0.25)
            return x

        return node(nap, output_name=name)

    # The node pool of one nesting level serves every item of the map: 2 items x 4 nodes.
    engine = HypernodesEngine(
        node_executor=ThreadedExecutor(max_workers=8), map_executor=ThreadedExecutor(max_workers=2)
    )
    with engine:
        pipeline = Pipeline([napping(name) for name in "pqrs"], engine=engine)
        start = time.perf_counter()
        rows = pipeline.map({"x": [1, 2]}, map_over="x")
        elapsed = time.perf_counter() - start
    assert rows == [{"p": x, "q": x, "r": x, "s": x} for x in (1, 2)]
    assert gauge.peak == 8  # every node of both items slept at the same time
    assert elapsed < 0.9  # 2 s one after the other
