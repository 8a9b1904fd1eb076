"""The remote kit: a plan spec compiled once per worker, events and cache writes relayed back.

These cover the two bugs that came from the worker machinery being private to ``"parallel"``: a
user's process executor with callbacks, and a ``MemoryCache`` filled by a parallel map.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import loky
import pytest

from hypernodes import HypernodesEngine, MemoryCache, Pipeline, PipelineCallback, node
from hypernodes.execution import remote

pytestmark = pytest.mark.timeout(120)


@node(output_name="y")
def add_one(x: int) -> int:
    return x + 1


@node(output_name="z")
def double(y: int) -> int:
    return 2 * y


@node(output_name="pid")
def pid_of(x: int) -> int:
    return os.getpid()


class Recorder(PipelineCallback):
    """Keeps ``(hook, path, items, subject)`` for node and item events."""

    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.overlaps = 0
        self._inside = 0

    def _add(self, hook, context, subject):
        self._inside += 1
        self.overlaps += self._inside > 1
        self.events.append((hook, context.path, context.items, subject))
        self._inside -= 1

    def on_node_end(self, *, node, outputs, duration, context):
        self._add("on_node_end", context, node)

    def on_map_item_end(self, *, index, duration, context):
        self._add("on_map_item_end", context, index)

    def on_map_item_cached(self, *, index, context):
        self._add("on_map_item_cached", context, index)


def expected(n: int) -> list[dict[str, int]]:
    return [{"y": x + 1, "z": 2 * (x + 1)} for x in range(n)]


@pytest.fixture(params=["loky", "process"])
def process_pool(request):
    if request.param == "loky":
        pool = loky.ProcessPoolExecutor(max_workers=2)
    else:
        import multiprocessing

        pool = ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn"))
    yield pool
    pool.shutdown(wait=True)


def test_a_user_process_executor_with_callbacks_relays_every_event(process_pool):
    recorder = Recorder()
    engine = HypernodesEngine(map_executor=process_pool)
    pipeline = Pipeline([add_one, double], engine=engine, callbacks=[recorder], name="p")
    rows = pipeline.map({"x": range(40)}, map_over="x")
    assert rows == expected(40)
    ends = [e for e in recorder.events if e[0] == "on_node_end"]
    assert len(ends) == 80
    items = [e[3] for e in recorder.events if e[0] == "on_map_item_end"]
    assert items == list(range(40))  # replayed in item order
    assert recorder.overlaps == 0


def test_a_user_process_executor_runs_items_in_its_workers(process_pool):
    engine = HypernodesEngine(map_executor=process_pool)
    rows = Pipeline([pid_of], engine=engine).map({"x": range(16)}, map_over="x")
    assert os.getpid() not in {row["pid"] for row in rows}


def test_a_user_thread_pool_stays_in_process():
    with ThreadPoolExecutor(max_workers=2) as pool:
        engine = HypernodesEngine(map_executor=pool)
        rows = Pipeline([pid_of], engine=engine).map({"x": range(8)}, map_over="x")
    assert {row["pid"] for row in rows} == {os.getpid()}


@pytest.mark.parametrize("executor", ["parallel", "custom"])
def test_memory_cache_under_worker_processes_ends_with_every_entry(executor):
    calls = MemoryCache()
    pool = loky.ProcessPoolExecutor(max_workers=2) if executor == "custom" else None
    try:
        engine = HypernodesEngine(map_executor=pool or "parallel", max_workers=2)
        pipeline = Pipeline([add_one, double], engine=engine, cache=calls)
        assert pipeline.map({"x": range(50)}, map_over="x") == expected(50)
        assert len(calls) == 100  # two outputs per item
        recorder = Recorder()
        warm = pipeline.with_callbacks([recorder])
        assert warm.map({"x": range(50)}, map_over="x") == expected(50)
        cached = [e for e in recorder.events if e[0] == "on_map_item_cached"]
        assert len(cached) == 50 and not [e for e in recorder.events if e[0] == "on_node_end"]
        engine.shutdown()
    finally:
        if pool is not None:
            pool.shutdown()


def test_a_worker_compiles_a_spec_once_and_runs_chunks_of_it():
    pipeline = Pipeline([add_one, double], name="p")
    plan = pipeline.plan(None, frozenset({"x"}))
    ctx = pipeline._root_context()
    spec = remote.PlanSpec.for_call(plan, ctx, None, "raise", "a test")
    assert remote.PlanSpec.for_call(plan, ctx, None, "raise", "a test") is spec
    first = remote.run_items(spec.token, spec.blob, [{"x": 1}, {"x": 2}], 0)
    second = remote.run_items(spec.token, spec.blob, [{"x": 3}], 2)
    assert remote.compiled(spec.token, spec.blob) is remote.compiled(spec.token, spec.blob)
    assert first.rows == [{"y": 2, "z": 4}, {"y": 3, "z": 6}] and second.rows == [{"y": 4, "z": 8}]
    assert first.error is None and first.events == [] and first.writes == []


def test_an_error_travels_in_the_reply_with_its_type_and_item():
    @node(output_name="y")
    def fails_on_three(x: int) -> int:
        if x == 3:
            raise KeyError("three")
        return x

    pipeline = Pipeline([fails_on_three], name="p")
    plan = pipeline.plan(None, frozenset({"x"}))
    spec = remote.PlanSpec.for_call(plan, pipeline._root_context(), None, "raise", "a test")
    reply = remote.run_items(spec.token, spec.blob, [{"x": 1}, {"x": 3}, {"x": 4}], 10)
    assert reply.rows == [{"y": 1}] and isinstance(reply.error, KeyError)
    with pytest.raises(KeyError) as info:
        spec.receive(remote.dump_reply(reply, 10), pipeline._root_context())
    from hypernodes.execution.failure import add_failure_note

    add_failure_note(info.value)
    assert info.value.__notes__ == [
        "hypernodes: raised by node 'fails_on_three' of pipeline p[item 11]; inputs: x=3"
    ]


def test_chunks_of_a_map_of_unknown_length_double_up_to_the_cap():
    from hypernodes.execution.driver import growing_sizes

    sizes = [len(chunk) for _, chunk in remote.split(iter(range(5000)), growing_sizes(64, 1024))]
    assert sizes == [64, 128, 256, 512, 1024, 1024, 1024, 968]
    starts = [start for start, _ in remote.split(range(300), growing_sizes(100, 150), 7)]
    assert starts == [7, 107, 257]
