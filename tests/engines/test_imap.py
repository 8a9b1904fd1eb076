"""``Pipeline.imap``: rows stream as items finish, in input order or as completed, with bounded
memory, under every map executor; ``map`` gives the same rows."""

from __future__ import annotations

import itertools
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from engine_cases import MAP_EXECUTORS, make_engine

from hypernodes import ItemError, Pipeline, PipelineCallback, node

pytestmark = pytest.mark.timeout(120)


@node(output_name="y")
def slow_when_even(x: int) -> int:
    if x % 2 == 0:
        time.sleep(0.05)
    return x * 10


@node(output_name="z")
def fails_on_five(y: int) -> int:
    if y == 50:
        raise ValueError("five")
    return y + 1


@pytest.fixture(scope="module")
def engines():
    pool = ThreadPoolExecutor(max_workers=3)
    made = {name: make_engine("sequential", name, pool) for name in MAP_EXECUTORS}
    yield made
    for engine in made.values():
        engine.shutdown()
    pool.shutdown()


@pytest.mark.parametrize("executor", MAP_EXECUTORS)
def test_ordered_imap_yields_every_row_in_input_order(engines, executor):
    pipeline = Pipeline([slow_when_even], engine=engines[executor])
    got = list(pipeline.imap({"x": range(12)}, map_over="x"))
    assert got == [(i, {"y": i * 10}) for i in range(12)]
    assert [row for _, row in got] == pipeline.map({"x": range(12)}, map_over="x")


@pytest.mark.parametrize("executor", MAP_EXECUTORS)
def test_unordered_imap_yields_each_index_once(engines, executor):
    pipeline = Pipeline([slow_when_even], engine=engines[executor])
    got = list(pipeline.imap({"x": range(12)}, map_over="x", ordered=False))
    assert sorted(got) == [(i, {"y": i * 10}) for i in range(12)]


def test_unordered_imap_lets_fast_items_overtake_slow_ones(engines):
    pipeline = Pipeline([slow_when_even], engine=engines["threaded"])
    order = [index for index, _ in pipeline.imap({"x": [0, 1]}, map_over="x", ordered=False)]
    assert order == [1, 0]


@pytest.mark.parametrize("executor", MAP_EXECUTORS)
def test_imap_raises_the_first_failing_item_after_the_rows_before_it(engines, executor):
    pipeline = Pipeline([slow_when_even, fails_on_five], engine=engines[executor], name="p")
    seen = []
    with pytest.raises(ValueError, match="five") as info:
        for index, _row in pipeline.imap({"x": range(10)}, map_over="x"):
            seen.append(index)
    assert seen == [0, 1, 2, 3, 4]
    assert info.value.__notes__ == [
        "hypernodes: raised by node 'fails_on_five' of pipeline p[item 5]; inputs: y=50"
    ]


@pytest.mark.parametrize("executor", MAP_EXECUTORS)
def test_imap_continue_gives_item_errors(engines, executor):
    pipeline = Pipeline([slow_when_even, fails_on_five], engine=engines[executor])
    rows = dict(pipeline.imap({"x": range(8)}, map_over="x", on_error="continue"))
    assert isinstance(rows[5]["z"], ItemError) and rows[4] == {"y": 40, "z": 41}


@pytest.mark.parametrize("executor", ["sequential", "threaded", "async", "parallel"])
def test_imap_reads_a_generator_of_inputs_lazily(engines, executor):
    drawn = itertools.count()

    def numbers():
        for i in range(100_000):
            next(drawn)
            yield i

    pipeline = Pipeline([slow_when_even], engine=engines[executor])
    stream = pipeline.imap({"x": numbers()}, map_over="x")
    first = next(stream)
    stream.close()
    assert first == (0, {"y": 0})
    # only what is in flight was read: far from the 100k items of the generator
    assert next(drawn) < 5_000


def test_imap_reports_map_events_around_the_stream():
    class Count(PipelineCallback):
        def __init__(self):
            self.events = []

        def on_map_start(self, *, pipeline, total, context):
            self.events.append(("start", total))

        def on_map_item_end(self, *, index, duration, context):
            self.events.append(("item", index))

        def on_map_end(self, *, pipeline, total, duration, context):
            self.events.append(("end", total))

    counter = Count()
    pipeline = Pipeline([slow_when_even], callbacks=[counter])
    assert len(list(pipeline.imap({"x": [1, 3]}, map_over="x"))) == 2
    assert counter.events == [("start", 2), ("item", 0), ("item", 1), ("end", 2)]
