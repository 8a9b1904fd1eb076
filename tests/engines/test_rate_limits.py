"""``resources={"rate_limit": "N/s"}``: at most N starts of a node in any window of the period,
per process, under every map executor; async nodes wait without blocking their loop."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from pathlib import Path

import pytest
from engine_kinds import LOCAL_AND_DASK

from hypernodes import Pipeline, node
from hypernodes.exceptions import InvalidNodeError
from hypernodes.execution.layers import call_layers

pytestmark = pytest.mark.timeout(180)

KINDS = LOCAL_AND_DASK
#: threads of the threaded and async executors (conftest.local_engines)
LOCAL_WORKERS = 4
#: a lower bound with room for clocks: N+1 starts never fit in less than the period
SLACK = 0.05


@node(output_name="y", resources={"rate_limit": "4/s"})
def call_api(x: int, log: str) -> int:
    with open(log, "a") as out:
        out.write(f"{os.getpid()} {time.time()}\n")
    return x


@node(output_name="y", resources={"rate_limit": "3/s", "max_concurrency": 2})
async def acall_api(x: int) -> int:
    STARTS.append(time.monotonic())
    await asyncio.sleep(0)
    return x


STARTS: list[float] = []


def starts_by_process(log: Path) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {}
    for line in log.read_text().splitlines():
        pid, at = line.split()
        found.setdefault(pid, []).append(float(at))
    return {pid: sorted(times) for pid, times in found.items()}


def assert_within(times: list[float], count: int, period: float) -> None:
    """No ``count + 1`` starts within ``period`` seconds."""
    for first, later in zip(times, times[count:]):
        assert later - first >= period - SLACK, (times, count, period)


@pytest.mark.parametrize("kind", KINDS)
def test_starts_per_second_per_process(engine, kind, tmp_path):
    log = tmp_path / "log"
    items = list(range(10))
    rows = Pipeline([call_api], engine=engine).map({"x": items, "log": str(log)}, map_over="x")
    assert rows == [{"y": x} for x in items]
    by_process = starts_by_process(log)
    assert sum(len(times) for times in by_process.values()) == len(items)
    for times in by_process.values():  # worker processes each keep their own window
        assert_within(times, 4, 1.0)
    if kind in ("sequential", "threaded", "async"):  # one process: the limit really bit
        (times,) = by_process.values()
        assert times[-1] - times[0] >= 2.0 - SLACK  # 10 starts at 4/s span at least 2 s


def test_async_nodes_wait_without_blocking_the_loop():
    STARTS.clear()
    ticks: list[float] = []

    async def ticker(stop: asyncio.Event) -> None:
        while not stop.is_set():
            ticks.append(time.monotonic())
            await asyncio.sleep(0.02)

    async def main() -> list[dict]:
        stop = asyncio.Event()
        task = asyncio.create_task(ticker(stop))
        rows = await Pipeline([acall_api]).amap({"x": list(range(7))}, map_over="x")
        stop.set()
        await task
        return rows

    rows = asyncio.run(main())
    assert rows == [{"y": x} for x in range(7)]
    assert_within(sorted(STARTS), 3, 1.0)
    assert STARTS[-1] - STARTS[0] >= 2.0 - SLACK
    # the loop kept running while calls waited for their start: many ticks, no long gap
    assert len(ticks) >= 20
    assert max(b - a for a, b in itertools.pairwise(ticks)) < 0.5


def test_rate_limits_are_checked_when_the_node_is_made():
    for good in ("10/s", "600/min", "1 / second", "100/hour", "5/h", "2/minutes"):
        node(output_name="y", resources={"rate_limit": good})(lambda x: x)
    for bad in ("10", "10/day", "0/s", "1.5/s", 10, "ten/s"):
        with pytest.raises(InvalidNodeError, match=r"such as '10/s', '600/min'"):
            node(output_name="y", resources={"rate_limit": bad})(lambda x: x)


def test_only_rate_limited_nodes_get_the_layer():
    plain = node(output_name="y")(lambda x: x)
    assert [entry.name for entry in call_layers(plain)] == []
    assert [entry.name for entry in call_layers(call_api)] == ["rate_limit"]
