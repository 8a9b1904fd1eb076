"""Single flight: items in flight that need the same signed miss (same node, code and inputs)
compute it once; the others wait and take it as a cache hit."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from hypernodes import DiskCache, HypernodesEngine, MemoryCache, Pipeline, PipelineCallback, node

pytestmark = pytest.mark.timeout(120)

CALLS: Counter[int] = Counter()
LOCK = threading.Lock()


@node(output_name="key")
def bucket(x: int) -> int:
    return x % 5


@node(output_name="slow")
def expensive(key: int) -> int:
    with LOCK:
        CALLS[key] += 1
    time.sleep(0.05)
    return key * 100


class Count(PipelineCallback):
    def __init__(self) -> None:
        self.ran: Counter[str] = Counter()
        self.cached: Counter[str] = Counter()

    def on_node_end(self, *, node, outputs, duration, context):
        self.ran[node] += 1

    def on_node_cached(self, *, node, signature, context):
        self.cached[node] += 1


@pytest.mark.parametrize("cache_kind", ["memory", "disk"])
@pytest.mark.parametrize("map_executor", ["threaded", "async"])
def test_concurrent_items_compute_a_shared_value_once(tmp_path, map_executor, cache_kind):
    CALLS.clear()
    cache = MemoryCache() if cache_kind == "memory" else DiskCache(tmp_path / "c")
    seen = Count()
    with HypernodesEngine(map_executor=map_executor, max_workers=8) as engine:
        pipeline = Pipeline([bucket, expensive], engine=engine, cache=cache, callbacks=[seen])
        rows = pipeline.map({"x": [x % 5 for x in range(40)]}, map_over="x")
    assert [row["slow"] for row in rows] == [(x % 5) * 100 for x in range(40)]
    assert dict(CALLS) == {k: 1 for k in range(5)}  # 40 items, 5 distinct inputs: 5 calls
    assert seen.ran["expensive"] == 5 and seen.cached["expensive"] == 35


def test_a_failing_leader_lets_its_followers_compute():
    attempts: Counter[int] = Counter()

    @node(output_name="slow")
    def fails_first(key: int) -> int:
        with LOCK:
            attempts[key] += 1
            first = attempts[key] == 1
        time.sleep(0.05)
        if first:
            raise RuntimeError("first attempt fails")
        return key

    with HypernodesEngine(map_executor="threaded", max_workers=4) as engine:
        pipeline = Pipeline([bucket, fails_first], engine=engine, cache=MemoryCache())
        rows = pipeline.map({"x": [0, 0, 0, 0]}, map_over="x", on_error="continue")
    assert sum(1 for row in rows if row["slow"] == 0) == 3  # the followers computed it
    assert attempts[0] == 2  # the failed leader, then one follower; the others were its hits
