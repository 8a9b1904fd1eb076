"""Threaded and async maps hand items to workers in batches: rows stay in input order, the error
policy is the same as one task per item, slow items still overlap, and streams stay streams."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from hypernodes import HypernodesEngine, ItemError, Pipeline, node
from hypernodes.execution.streams import (
    MAX_BATCH,
    Batches,
    run_batch,
    stream_batched,
)

pytestmark = pytest.mark.timeout(120)

BATCHED = ["threaded", "async"]

RAN: list[int] = []
_ran_lock = threading.Lock()


@node(output_name="y")
def record(x: int) -> int:
    with _ran_lock:
        RAN.append(x)
    return x * 2


@node(output_name="y")
def fails_at_1200_and_3000(x: int) -> int:
    if x in (1200, 3000):
        raise ValueError(f"bad {x}")
    return x * 2


@node(output_name="y")
def fails_every_97th(x: int) -> int:
    if x % 97 == 5:
        raise ValueError(f"bad {x}")
    return x * 2


SLOW_FROM = 400


@node(output_name="y")
def quick_then_slow(x: int) -> int:
    if x >= SLOW_FROM:
        time.sleep(0.1)
    return x


@pytest.fixture(scope="module")
def engines():
    made = {kind: HypernodesEngine(map_executor=kind) for kind in BATCHED}
    yield made
    for engine in made.values():
        engine.shutdown()


# ---------------------------------------------------------------------------------------------
# The scheduler itself


def test_trivial_items_share_tasks_and_keep_their_order():
    submitted = []
    with ThreadPoolExecutor(4) as pool:

        def submit(fn, *args):
            submitted.append(len(args[1]))  # the batch's items
            return pool.submit(fn, *args)

        rows = list(stream_batched(submit, lambda i, v: v * 3, range(5000), window=8))
    assert rows == [(i, i * 3) for i in range(5000)]
    assert sum(submitted) == 5000
    assert len(submitted) < 1000, "trivial items went one task each"
    assert max(submitted) > 1


def test_batches_start_with_one_item_and_size_by_speed():
    batches = Batches(range(10_000), window=4, ordered=True)
    first = batches.to_submit()
    assert [len(slot.pairs) for slot in first] == [1, 1, 1, 1]  # nothing measured yet
    batches.finished(first[0], ([0], None, 1e-6, 1e-6))  # a quick item
    assert batches.size() == MAX_BATCH
    batches.finished(first[1], ([2], None, 0.05, 1e-5))  # a slow one (I/O): one at a time again
    assert batches.size() == 1
    # quick items slowed down only by the batches running beside them: sized by their CPU time
    batches.finished(first[2], ([4], None, 0.003, 0.001))
    assert batches.size() == int(0.002 / 0.001)


def test_a_batch_gives_back_what_it_did_not_reach():
    stop = Batches(range(3), window=1, ordered=True).stop

    def slow(index, values):
        time.sleep(0.03)
        return values

    rows, error, _, _ = run_batch(slow, [(0, "a"), (1, "b"), (2, "c")], stop)
    assert error is None and rows == ["a"]  # it ran past the cutoff after the first item


def test_items_turning_slow_still_run_concurrently():
    def run(index, values):
        if index >= SLOW_FROM:
            time.sleep(0.1)
        return index

    items = range(SLOW_FROM + 24)
    with ThreadPoolExecutor(24) as pool:
        start = time.perf_counter()
        rows = list(stream_batched(pool.submit, run, items, window=24))
        took = time.perf_counter() - start
    assert rows == [(i, i) for i in items]
    assert took < 1.5, f"24 slow items took {took:.2f} s: batching serialised them (2.4 s)"


# ---------------------------------------------------------------------------------------------
# Through Pipeline.map / imap


@pytest.mark.parametrize("kind", BATCHED)
def test_rows_in_input_order(engines, kind):
    pipeline = Pipeline([record], engine=engines[kind])
    items = list(range(20_000))
    assert pipeline.map({"x": items}, map_over="x") == [{"y": x * 2} for x in items]
    got = [index for index, _ in pipeline.imap({"x": items}, map_over="x", ordered=False)]
    assert sorted(got) == items


@pytest.mark.parametrize("kind", BATCHED)
def test_lowest_failing_index_wins_and_rows_before_it_stream(engines, kind):
    pipeline = Pipeline([fails_at_1200_and_3000], engine=engines[kind])
    seen = []
    with pytest.raises(ValueError, match="bad 1200"):
        for index, row in pipeline.imap({"x": range(5000)}, map_over="x"):
            seen.append((index, row))
    assert seen == [(i, {"y": i * 2}) for i in range(1200)]
    with pytest.raises(ValueError, match="bad 1200") as info:
        pipeline.map({"x": range(5000)}, map_over="x")
    assert "item 1200" in "".join(info.value.__notes__)


@pytest.mark.parametrize("kind", BATCHED)
def test_continue_puts_item_errors_in_place(engines, kind):
    pipeline = Pipeline([fails_every_97th], engine=engines[kind])
    rows = pipeline.map({"x": range(3000)}, map_over="x", on_error="continue")
    assert len(rows) == 3000
    for x, row in enumerate(rows):
        if x % 97 == 5:
            assert isinstance(row["y"], ItemError) and row["y"].index == x
        else:
            assert row == {"y": x * 2}


@pytest.mark.parametrize("kind", BATCHED)
def test_nothing_much_runs_after_a_failure(engines, kind):
    @node(output_name="y")
    def fails_at_50(x: int) -> int:
        with _ran_lock:
            RAN.append(x)
        if x == 50:
            raise ValueError("stop")
        return x

    RAN.clear()
    with pytest.raises(ValueError, match="stop"):
        Pipeline([fails_at_50], engine=engines[kind]).map({"x": range(100_000)}, map_over="x")
    assert len(RAN) < 20_000


@pytest.mark.parametrize("kind", BATCHED)
def test_a_consumer_that_stops_early_stops_the_batches(engines, kind):
    RAN.clear()
    rows = Pipeline([record], engine=engines[kind]).imap({"x": range(1_000_000)}, map_over="x")
    for index, _ in rows:
        if index == 10:
            break
    rows.close()
    time.sleep(0.3)
    settled = len(RAN)
    time.sleep(0.3)
    assert len(RAN) == settled < 1_000_000


@pytest.mark.parametrize("kind", BATCHED)
def test_quick_items_then_slow_ones_overlap(engines, kind):
    pipeline = Pipeline([quick_then_slow], engine=engines[kind])
    items = list(range(SLOW_FROM + 20))
    start = time.perf_counter()
    assert pipeline.map({"x": items}, map_over="x") == [{"y": x} for x in items]
    took = time.perf_counter() - start
    # one after the other the 20 slow items take 2 s; the threaded default has >= 5 workers
    assert took < 1.5, took


@pytest.mark.parametrize("kind", BATCHED)
def test_a_slow_source_streams_rows_as_items_arrive(engines, kind):
    produced = []

    def source():
        for x in range(30):
            produced.append(x)
            yield x
            time.sleep(0.02)

    pipeline = Pipeline([record], engine=engines[kind])
    received_when = {}
    for index, _ in pipeline.imap({"x": source()}, map_over="x"):
        received_when[index] = len(produced)
    assert sorted(received_when) == list(range(30))
    # the row of item 5 arrived long before the source ran out
    assert received_when[5] < 25, received_when


@node(output_name="y")
def half_second(x: int) -> int:
    time.sleep(0.5)
    return x


@pytest.mark.parametrize("kind", BATCHED)
def test_a_slow_source_of_slow_items_still_overlaps(engines, kind):
    def source():
        for x in range(16):
            yield x
            time.sleep(0.02)

    pipeline = Pipeline([half_second], engine=engines[kind])
    start = time.perf_counter()
    got = [index for index, _ in pipeline.imap({"x": source()}, map_over="x")]
    took = time.perf_counter() - start
    assert got == list(range(16))
    # one after the other: 8 s; overlapped: about 0.3 s of arrivals + 0.5 s
    assert took < 4, took
