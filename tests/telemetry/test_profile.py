"""``ProfileCallback``: wall and CPU time per node across a map, peak memory when asked, and a
printed table; calls from worker processes count for wall time with their CPU left unknown."""

from __future__ import annotations

import time

from hypernodes import HypernodesEngine, Pipeline, node
from hypernodes.telemetry import ProfileCallback


@node(output_name="spun")
def spin(x: int) -> int:
    end = time.thread_time() + 0.01
    while time.thread_time() < end:  # 10 ms of CPU
        pass
    return x


@node(output_name="slept")
def nap(spun: int) -> int:
    time.sleep(0.01)  # 10 ms of wall time, next to no CPU
    return spun


@node(output_name="big")
def allocate(slept: int) -> int:
    block = bytearray(4_000_000)
    return len(block) + slept


def test_wall_cpu_and_peak_memory_per_node_across_a_map(capsys):
    profile = ProfileCallback(memory=True)
    Pipeline([spin, nap, allocate], callbacks=[profile]).map({"x": list(range(5))}, map_over="x")
    spun, slept, big = (profile.stats[n] for n in ("spin", "nap", "allocate"))
    assert (spun.calls, slept.calls, big.calls) == (5, 5, 5)
    assert spun.cpu >= 0.045 and spun.wall >= spun.cpu * 0.9
    assert slept.wall >= 0.045 and slept.cpu < slept.wall / 2
    assert big.peak >= 4_000_000 > spun.peak
    profile.print_table()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "node",
        "calls",
        "wall",
        "mean",
        "slowest",
        "cpu",
        "cpu/wall",
        "peak",
        "memory",
    ]
    assert {line.split()[0] for line in lines[1:]} == {"spin", "nap", "allocate"}
    assert "MiB" in next(line for line in lines if line.startswith("allocate"))


def test_calls_in_worker_processes_count_for_wall_time_only():
    profile = ProfileCallback()
    engine = HypernodesEngine(map_executor="parallel", max_workers=2)
    try:
        Pipeline([spin, nap], engine=engine, callbacks=[profile]).map(
            {"x": list(range(4))}, map_over="x"
        )
    finally:
        engine.shutdown()
    assert profile.stats["spin"].calls == 4 and profile.stats["spin"].wall >= 0.035
    assert profile.stats["spin"].cpu_calls == 0
    row = next(line for line in profile.table().splitlines() if line.startswith("spin"))
    assert row.split()[-2:] == ["-", "-"]
