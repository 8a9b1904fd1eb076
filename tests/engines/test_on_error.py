"""Per-item error policy of ``map``: ``raise`` stops at the first failing item, ``continue``
attempts every item and returns error values; the same under every map executor."""

from __future__ import annotations

import threading
import time

import pytest
from engine_cases import after_picky, independent, picky

from hypernodes import HypernodesEngine, ItemError, Pipeline, node
from hypernodes.engines import AsyncExecutor, ThreadedExecutor
from hypernodes.exceptions import MapError

pytestmark = pytest.mark.timeout(60)

MAP_EXECUTORS = ["sequential", "threaded", "async", "parallel"]


@pytest.fixture(scope="module")
def engines():
    made = {
        "sequential": HypernodesEngine(),
        "threaded": HypernodesEngine(map_executor=ThreadedExecutor(max_workers=2)),
        "async": HypernodesEngine(map_executor=AsyncExecutor(max_workers=2)),
        "parallel": HypernodesEngine(map_executor="parallel", max_workers=2),
    }
    yield made
    for engine in made.values():
        engine.shutdown()


STARTED: list[int] = []
_started_lock = threading.Lock()


@node(output_name="y")
def slow_and_fails_at_five(x: int) -> int:
    with _started_lock:
        STARTED.append(x)
    time.sleep(0.02)
    if x == 5:
        raise KeyError(f"item {x} is broken")
    return x


@pytest.mark.parametrize("kind", ["threaded", "async"])
def test_raise_cancels_the_remaining_items(engines, kind):
    STARTED.clear()
    pipeline = Pipeline([slow_and_fails_at_five], engine=engines[kind], name="p")
    start = time.perf_counter()
    with pytest.raises(KeyError) as info:
        pipeline.map({"x": range(300)}, map_over="x")
    elapsed = time.perf_counter() - start
    assert (
        "hypernodes: raised by node 'slow_and_fails_at_five' of pipeline p[item 5]; inputs: x=5"
        in (info.value.__notes__)
    )
    time.sleep(0.1)  # anything still running has finished; nothing new may start
    assert len(STARTED) < 20  # 300 items would take 3 s on two workers
    assert elapsed < 1.5


@node(output_name="y")
def fails_late_or_early(x: int) -> int:
    if x == 3:
        time.sleep(0.3)
        raise ValueError("item 3, slow to fail")
    if x == 7:
        raise ValueError("item 7, quick to fail")
    return x


@pytest.mark.parametrize("kind", MAP_EXECUTORS)
def test_the_lowest_failing_item_is_raised_like_a_sequential_run(engines, kind):
    pipeline = Pipeline([fails_late_or_early], engine=engines[kind], name="p")
    with pytest.raises(ValueError, match="item 3, slow to fail") as info:
        pipeline.map({"x": range(10)}, map_over="x")
    assert info.value.__notes__ == [
        "hypernodes: raised by node 'fails_late_or_early' of pipeline p[item 3]; inputs: x=3"
    ]


CALLS: list[int] = []


@node(output_name="seen")
def record(x: int) -> int:
    CALLS.append(x)
    return x


@node(output_name="second")
def second_failure(x: int) -> int:
    if x == 6:
        raise RuntimeError("second branch fails for 6")
    return x


@pytest.mark.parametrize("kind", MAP_EXECUTORS)
def test_continue_attempts_every_item_and_keeps_what_it_can(engines, kind):
    CALLS.clear()
    pipeline = Pipeline(
        [record, picky, after_picky, independent, second_failure],
        engine=engines[kind],
        name="p",
    )
    xs = list(range(10))
    rows = pipeline.map({"x": xs}, map_over="x", on_error="continue")
    if kind != "parallel":  # worker processes record in their own memory
        assert sorted(CALLS) == xs
    assert [row["seen"] for row in rows] == xs
    assert [row["independent"] for row in rows] == [-x for x in xs]
    for i, row in enumerate(rows):
        if i in (4, 8):
            error = row["picky"]
            assert isinstance(error, ItemError) and not error
            assert row["after_picky"] is error  # downstream of the failure: the same error value
            assert (error.node, error.index) == ("picky", i)
            assert isinstance(error.exception, ValueError)
            assert error.exception.__notes__ == [
                f"hypernodes: raised by node 'picky' of pipeline p[item {i}]; inputs: x={i}"
            ]
            assert error.inputs == {"x": i}  # enough to re-run the node by hand
            assert f"item={i}" in repr(error) and "ValueError" in repr(error)
        else:
            assert row["picky"] == i and row["after_picky"] == i + 100
        if i == 6:
            assert isinstance(row["second"], ItemError)
            assert row["second"].node == "second_failure"
            with pytest.raises(RuntimeError, match="second branch"):
                row["second"].reraise()
        else:
            assert row["second"] == i


@pytest.mark.parametrize("kind", MAP_EXECUTORS)
def test_continue_through_a_failing_nested_pipeline(engines, kind):
    inner = Pipeline([picky], name="inner").as_node(name="checker")
    outer = Pipeline([inner, independent], engine=engines[kind], name="outer")
    columns = outer.map(
        {"x": [3, 4, 5]}, map_over="x", on_error="continue", return_format="columns"
    )
    assert columns["independent"] == [-3, -4, -5]
    assert columns["picky"][0] == 3 and columns["picky"][2] == 5
    error = columns["picky"][1]
    assert isinstance(error, ItemError) and (error.node, error.index) == ("checker", 1)
    assert error.exception.__notes__ == [
        "hypernodes: raised by node 'picky' of pipeline outer[item 1] > checker; inputs: x=4"
    ]


@pytest.mark.parametrize("node_executor", ["threaded", "async"])
def test_continue_with_concurrent_nodes_inside_items(node_executor):
    with HypernodesEngine(node_executor=node_executor, map_executor="threaded") as engine:
        pipeline = Pipeline([picky, after_picky, independent, second_failure], engine=engine)
        rows = pipeline.map({"x": range(9)}, map_over="x", on_error="continue")
    assert [isinstance(r["after_picky"], ItemError) for r in rows] == [
        x in (4, 8) for x in range(9)
    ]
    assert [isinstance(r["second"], ItemError) for r in rows] == [x == 6 for x in range(9)]
    assert [r["independent"] for r in rows] == [-x for x in range(9)]


def test_unknown_policy_is_refused():
    with pytest.raises(MapError, match="on_error must be 'raise' or 'continue'"):
        Pipeline([picky]).map({"x": [1]}, map_over="x", on_error="ignore")


def test_continue_with_no_failure_returns_plain_rows():
    rows = Pipeline([picky, after_picky]).map({"x": [1, 2]}, map_over="x", on_error="continue")
    assert rows == [{"picky": 1, "after_picky": 101}, {"picky": 2, "after_picky": 102}]
