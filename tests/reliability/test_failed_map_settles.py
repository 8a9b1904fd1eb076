"""A map that raises lets the items already running finish first.

A thread cannot be stopped: before, the error reached the caller while a neighbour item was
still computing in a pool thread, so its cache write landed later (a fresh cache opened at once
missed it, and a rerun computed it again) and its node events arrived after the map had ended.
Now nothing new starts after a failure and the items in flight land before the error is raised.
"""

from __future__ import annotations

import threading
import time

import pytest

from hypernodes import DiskCache, HypernodesEngine, Pipeline, PipelineCallback, node

pytestmark = pytest.mark.timeout(60)


class Order(PipelineCallback):
    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def on_node_end(self, *, node, outputs, duration, context):
        self.events.append(("node", outputs))

    def on_map_end(self, *, pipeline, total, duration, context):
        self.events.append(("map_end", None))


@pytest.mark.parametrize("map_executor", ["threaded", "async"])
def test_items_in_flight_land_before_the_error(tmp_path, map_executor):
    slow_started = threading.Event()
    calls: list[int] = []

    @node(output_name="y")
    def work(x: int) -> int:
        calls.append(x)
        if x == 0:
            assert slow_started.wait(5), "item 1 never started beside item 0"
            raise ValueError("item zero fails")
        slow_started.set()
        time.sleep(0.3)
        return x * 10

    order = Order()
    with HypernodesEngine(map_executor=map_executor, max_workers=4) as engine:
        pipeline = Pipeline(
            [work], engine=engine, cache=DiskCache(tmp_path / "c"), callbacks=[order]
        )
        with pytest.raises(ValueError, match="item zero fails"):
            pipeline.map({"x": [0, 1]}, map_over="x")
    # item 1 was running when item 0 failed: its result is stored and its event came first
    assert ("node", {"y": 10}) in order.events
    assert order.events[-1] == ("map_end", None)
    calls.clear()
    fresh = Pipeline([work], cache=DiskCache(tmp_path / "c"))
    assert fresh.run({"x": 1}) == {"y": 10}
    assert calls == []  # a hit: nothing computed again
