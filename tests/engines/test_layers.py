"""Step layers: retries and timeouts under every executor, combined with cache and callbacks;
``Step.call``; dataflow scheduling of the nodes of one item."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from engine_cases import MAP_EXECUTORS, NODE_EXECUTORS, make_engine

from hypernodes import HypernodesEngine, ItemError, MemoryCache, Pipeline, PipelineCallback, node
from hypernodes.exceptions import InvalidNodeError, NodeTimeoutError

pytestmark = pytest.mark.timeout(120)

_ATTEMPTS: Counter[int] = Counter()


@node(output_name="y", retries=2, retry_delay=0.01, backoff=2.0, retry_on=(OSError,))
def flaky(x: int) -> int:
    """Fails twice for each x (in the process that runs it), then succeeds."""
    _ATTEMPTS[x] += 1
    if _ATTEMPTS[x] % 3 != 0:
        raise ConnectionError(f"attempt {_ATTEMPTS[x]}")
    return x * 10


@node(output_name="z")
def plus_one(y: int) -> int:
    return y + 1


@node(output_name="slow", timeout=0.3)
def sleeps(x: int) -> int:
    if x == 1:
        time.sleep(30)
    return x


@node(output_name="slow", timeout=0.3)
async def asleep(x: int) -> int:
    if x == 1:
        await asyncio.sleep(30)
    return x


class Retries(PipelineCallback):
    def __init__(self) -> None:
        self.retries: list[tuple[str, int, str, float]] = []
        self.ends: Counter[str] = Counter()

    def on_node_retry(self, *, node, attempt, error, delay, context):
        self.retries.append((node, attempt, type(error).__name__, delay))

    def on_node_end(self, *, node, outputs, duration, context):
        self.ends[node] += 1


@pytest.fixture(scope="module")
def engines():
    pool = ThreadPoolExecutor(max_workers=3)
    pairs = [(n, m) for n in NODE_EXECUTORS for m in MAP_EXECUTORS]
    made = {pair: make_engine(*pair, pool) for pair in pairs}
    yield made
    for engine in made.values():
        engine.shutdown()
    pool.shutdown()


@pytest.mark.parametrize("map_executor", MAP_EXECUTORS)
@pytest.mark.parametrize("node_executor", NODE_EXECUTORS)
def test_a_node_failing_twice_then_succeeding_is_retried_with_events(
    engines, node_executor, map_executor
):
    _ATTEMPTS.clear()
    seen = Retries()
    cache = MemoryCache()
    pipeline = Pipeline(
        [flaky, plus_one],
        engine=engines[(node_executor, map_executor)],
        callbacks=[seen],
        cache=cache,
    )
    rows = pipeline.map({"x": [1, 2, 3]}, map_over="x")
    assert rows == [{"y": 10, "z": 11}, {"y": 20, "z": 21}, {"y": 30, "z": 31}]
    assert sorted(seen.retries) == sorted(
        [("flaky", 1, "ConnectionError", 0.01), ("flaky", 2, "ConnectionError", 0.02)] * 3
    )
    assert seen.ends == {"flaky": 3, "plus_one": 3}
    assert len(cache) == 6
    if map_executor == "parallel":
        return  # a fresh worker digests flaky's mutated global counter anew: a new key
    # the cache holds the successful results: a second map is all hits, no retries
    again = Retries()
    assert pipeline.with_callbacks([again]).map({"x": [1, 2, 3]}, map_over="x") == rows
    assert again.retries == [] and not again.ends


def test_errors_outside_retry_on_are_not_retried():
    calls = []

    @node(output_name="y", retries=3, retry_on=KeyError)
    def wrong_kind(x: int) -> int:
        calls.append(x)
        raise ValueError("not retried")

    with pytest.raises(ValueError, match="not retried"):
        Pipeline([wrong_kind]).run({"x": 1})
    assert calls == [1]


def test_the_last_attempts_error_is_raised_after_the_retries():
    calls = []

    @node(output_name="y", retries=2)
    def always(x: int) -> int:
        calls.append(x)
        raise RuntimeError(f"attempt {len(calls)}")

    with pytest.raises(RuntimeError, match="attempt 3"):
        Pipeline([always], name="p").run({"x": 1})
    assert len(calls) == 3


@pytest.mark.parametrize(
    "bad",
    [
        {"retries": -1},
        {"retries": 1.5},
        {"timeout": 0},
        {"retry_on": "IOError"},
        {"retry_delay": -1},
    ],
)
def test_bad_retry_and_timeout_options_are_refused(bad):
    with pytest.raises(InvalidNodeError):
        node(output_name="y", **bad)(lambda x: x)


@pytest.mark.parametrize("map_executor", MAP_EXECUTORS)
@pytest.mark.parametrize("fn", [sleeps, asleep], ids=["sync", "async"])
def test_a_timed_out_item_fails_alone_under_continue(engines, map_executor, fn):
    pipeline = Pipeline([fn], engine=engines[("sequential", map_executor)], name="p")
    start = time.perf_counter()
    rows = pipeline.map({"x": [0, 1, 2]}, map_over="x", on_error="continue")
    assert time.perf_counter() - start < 10
    assert rows[0] == {"slow": 0} and rows[2] == {"slow": 2}
    error = rows[1]["slow"]
    assert isinstance(error, ItemError) and isinstance(error.exception, NodeTimeoutError)
    assert isinstance(error.exception, TimeoutError)
    assert "0.3 s" in str(error.exception) and "'slow'" not in str(error.exception)
    assert "p[item 1]" in error.exception.__notes__[-1]


@pytest.mark.parametrize("node_executor", NODE_EXECUTORS)
def test_a_timeout_raises_naming_the_node_item_and_limit(engines, node_executor):
    pipeline = Pipeline([sleeps], engine=engines[(node_executor, "sequential")], name="p")
    start = time.perf_counter()
    with pytest.raises(
        NodeTimeoutError, match=r"node 'sleeps' ran longer than its timeout of 0.3 s"
    ) as info:
        pipeline.map({"x": [0, 1]}, map_over="x")
    assert time.perf_counter() - start < 10
    assert info.value.__notes__ == [
        "hypernodes: raised by node 'sleeps' of pipeline p[item 1]; inputs: x=1"
    ]


def test_step_call_is_a_pure_call_of_one_node():
    @node(output_name=("q", "r"))
    def divide(a: int, b: int = 3) -> tuple[int, int]:
        return divmod(a, b)

    plan = Pipeline([divide, plus_one.with_inputs(y="q")]).plan(None, frozenset({"a", "b"}))
    step = plan.steps[0]
    assert step.call(7, 2) == {"q": 3, "r": 1}
    assert plan.steps[1].call(3) == {"z": 4}


def test_step_call_awaits_an_async_node():
    @node(output_name="y")
    async def later(x: int) -> int:
        await asyncio.sleep(0)
        return x + 1

    (step,) = Pipeline([later]).plan(None, frozenset({"x"})).steps
    assert step.call(1) == {"y": 2}


@node(output_name="a")
def branch_a(x: int) -> int:
    time.sleep(0.5)
    return x


@node(output_name="b")
def branch_b(x: int) -> int:
    return x


@node(output_name="c")
def after_b(b: int) -> int:
    time.sleep(0.5)
    return b


@node(output_name="d")
def join_ac(a: int, c: int) -> int:
    return a + c


@pytest.mark.parametrize("node_executor", ["threaded", "async"])
def test_nodes_start_as_soon_as_their_own_inputs_are_ready(node_executor):
    # a (0.5 s) runs beside b -> c (0 s + 0.5 s): by generations this takes 1.0 s, by dataflow 0.5 s
    with HypernodesEngine(node_executor=node_executor) as engine:
        pipeline = Pipeline([branch_a, branch_b, after_b, join_ac], engine=engine)
        pipeline.run({"x": 0})  # warm the pools
        start = time.perf_counter()
        assert pipeline.run({"x": 2}) == {"a": 2, "b": 2, "c": 2, "d": 4}
        assert time.perf_counter() - start < 0.85
