"""``resources={"max_concurrency": n}``: at most ``n`` calls of a node at once in a process, under
threaded and async maps, for sync and ``async def`` nodes; nodes without it are not limited."""

from __future__ import annotations

import pytest
from ml_cases import GAUGE, limited_async, limited_slow, unlimited_slow

from hypernodes import HypernodesEngine, Pipeline

XS = list(range(16))


@pytest.fixture(autouse=True)
def _fresh_gauge():
    GAUGE.now = GAUGE.most = 0
    yield


@pytest.mark.parametrize("executor", ["threaded", "async"])
def test_at_most_two_calls_at_once(executor):
    with HypernodesEngine(map_executor=executor, max_workers=8) as engine:
        rows = Pipeline([limited_slow], engine=engine).map({"x": XS}, map_over="x")
    assert [row["slow"] for row in rows] == XS
    assert GAUGE.most == 2  # the limit was reached, never passed


def test_an_async_node_waits_for_a_slot_without_blocking_the_loop():
    with HypernodesEngine(map_executor="async", node_executor="async") as engine:
        rows = Pipeline([limited_async], engine=engine).map({"x": XS}, map_over="x")
    assert [row["slow"] for row in rows] == XS
    assert GAUGE.most == 2


def test_the_limit_holds_across_pipelines_and_copies_of_the_node():
    with HypernodesEngine(map_executor="threaded", max_workers=8) as engine:
        first = Pipeline([limited_slow], engine=engine)
        second = Pipeline([limited_slow.with_output("slow")], engine=engine, name="second")
        import threading

        threads = [
            threading.Thread(target=p.map, args=({"x": XS}, "x")) for p in (first, first, second)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert GAUGE.most == 2  # three maps at once, one shared limit


def test_without_the_hint_calls_overlap_freely():
    with HypernodesEngine(map_executor="threaded", max_workers=8) as engine:
        Pipeline([unlimited_slow], engine=engine).map({"x": XS}, map_over="x")
    assert GAUGE.most > 2  # the gauge can see more than two at once


def _wrapped_names(pipeline):
    run = pipeline.plan(None, frozenset({"x"})).steps[0].run
    return {getattr(cell.cell_contents, "__name__", "") for cell in run.__closure__}


def test_the_limit_wraps_only_nodes_that_set_it():
    assert "call_limited" not in _wrapped_names(Pipeline([unlimited_slow]))
    assert "call_limited" in _wrapped_names(Pipeline([limited_slow]))
