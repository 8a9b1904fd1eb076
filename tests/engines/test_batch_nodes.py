"""Batch and dual nodes: how they are declared and checked, which implementation runs where,
per-item callback events and cache entries, and the shapes their results must have."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from ml_cases import batch_sizes, finish, prepare, shifted, shifted_batch

from hypernodes import (
    HypernodesEngine,
    ItemError,
    MemoryCache,
    Pipeline,
    PipelineCallback,
    node,
)
from hypernodes.exceptions import InvalidNodeError, OutputShapeError, TypeMismatchError

XS = list(range(11))


class Events(PipelineCallback):
    """Records ``(hook, item index, node or index)`` of every node and item event."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, object, object]] = []

    def _add(self, hook, context, subject):
        self.seen.append((hook, context.items, subject))

    def on_node_start(self, *, node, inputs, context):
        self._add("start", context, (node, tuple(sorted(inputs.items()))))

    def on_node_end(self, *, node, outputs, duration, context):
        self._add("end", context, (node, tuple(sorted(outputs.items()))))

    def on_node_cached(self, *, node, signature, context):
        self._add("cached", context, node)

    def on_error(self, *, node, error, context):
        self._add("error", context, node)

    def on_map_item_start(self, *, index, context):
        self._add("item_start", context, index)

    def on_map_item_end(self, *, index, duration, context):
        self._add("item_end", context, index)

    def on_map_item_cached(self, *, index, context):
        self._add("item_cached", context, index)


def _pipelines(**options):
    dual = Pipeline([prepare, shifted_batch, finish], **options).bind(factor=1.0)
    plain = Pipeline([prepare, shifted, finish], **options).bind(factor=1.0)
    return dual, plain


def test_a_dual_node_runs_per_item_in_run_and_in_batches_in_map():
    dual, plain = _pipelines()
    batch_sizes.clear()
    assert dual.run({"x": 3}) == plain.run({"x": 3})
    assert batch_sizes == []  # run used the per-item function
    with HypernodesEngine(batch_size=4) as engine:
        rows = dual.with_engine(engine).map({"x": XS}, map_over="x")
    assert rows == plain.map({"x": XS}, map_over="x")
    assert batch_sizes == [4, 4, 3]


def test_declaring_batch_and_dual_nodes():
    def per_item(a: int) -> int:
        return a + 1

    def many(a: list[int]) -> list[int]:
        return [v + 1 for v in a]

    dual = node(output_name="b", batch=many)(per_item)
    assert dual.is_batch and dual.per_item and dual.batch_func is many
    assert dual(1) == 2  # still the plain per-item function
    only = node(output_name="b", batch=True)(many)
    assert only.is_batch and not only.per_item
    assert only([1, 2]) == [2, 3]
    plain = node(output_name="b")(per_item)
    assert not plain.is_batch and plain.batch(many).is_batch and not plain.is_batch
    assert "dual" in repr(dual) and "batch" in repr(only)


def test_a_batch_function_with_other_parameters_is_refused():
    @node(output_name="b")
    def per_item(a: int, k: int) -> int:
        return a + k

    with pytest.raises(InvalidNodeError, match=r"takes \['a'\], but the node takes \['a', 'k'\]"):
        per_item.batch(lambda a: a)
    with pytest.raises(InvalidNodeError, match="batch must be True, False"):
        node(output_name="b", batch="yes")(lambda a: a)


def test_a_batch_result_of_the_wrong_length_names_the_node():
    @node(output_name="b", batch=True)
    def short(a: list[float]) -> list[float]:
        return a[:-1]

    pipeline = Pipeline([prepare, short])
    with pytest.raises(OutputShapeError, match="batch node 'short' got 5 item"):
        pipeline.with_engine(HypernodesEngine(batch_size=5)).map({"x": XS}, map_over="x")
    with pytest.raises(OutputShapeError, match="got 1 item"):
        pipeline.run({"x": 1})


def test_several_outputs_must_be_a_tuple_of_lists():
    @node(output_name=("p", "q"), batch=True)
    def wrong(a: list[float]) -> list[float]:
        return a

    with pytest.raises(OutputShapeError, match="declares 2 outputs"):
        Pipeline([prepare, wrong]).map({"x": XS}, map_over="x")


def test_callback_events_are_per_item_and_match_the_per_item_twin():
    for engine in (HypernodesEngine(batch_size=4), HypernodesEngine(map_executor="threaded")):
        got, want = Events(), Events()
        dual, _ = _pipelines(callbacks=[got])
        _, plain = _pipelines(callbacks=[want])
        with engine:
            assert dual.with_engine(engine).map({"x": XS}, map_over="x") == plain.map(
                {"x": XS}, map_over="x"
            )
        assert Counter(got.seen) == Counter(want.seen)
        assert Counter(hook for hook, _, _ in got.seen)["start"] == 3 * len(XS)


def test_per_item_cache_entries_and_events_on_a_warm_cache():
    cache = MemoryCache()
    dual, plain = _pipelines(cache=cache)
    batch_sizes.clear()
    dual.map({"x": XS[:5]}, map_over="x")
    assert batch_sizes == [5]
    got = Events()
    batch_sizes.clear()
    with HypernodesEngine(batch_size=100) as engine:
        rows = dual.with_callbacks([got]).with_engine(engine).map({"x": XS}, map_over="x")
    assert rows == plain.with_cache(None).map({"x": XS}, map_over="x")
    assert batch_sizes == [len(XS) - 5]  # only the new items were in the batch
    cached = Counter(subject for hook, _, subject in got.seen if hook == "item_cached")
    assert sorted(cached) == [0, 1, 2, 3, 4]
    # a one-item run of the dual node (its per-item function) finds the entry a batch wrote
    single = Events()
    assert dual.with_callbacks([single]).run({"x": 2}) == rows[2]
    assert [subject for hook, _, subject in single.seen if hook == "cached"] == [
        "prepare",
        "shifted",
        "finish",
    ]


def test_a_pending_batch_step_behind_an_uncached_node_is_signed_per_item():
    calls = []

    @node(output_name="a", cache=False)
    def uncached(x: int) -> float:
        return float(x)

    @node(output_name="b", batch=True)
    def double(a: list[float]) -> list[float]:
        calls.append(len(a))
        return [v * 2 for v in a]

    cache = MemoryCache()
    pipeline = Pipeline([uncached, double], cache=cache)
    first = pipeline.map({"x": XS}, map_over="x")
    again = pipeline.map({"x": XS}, map_over="x")
    assert first == again == [{"a": float(x), "b": 2.0 * x} for x in XS]
    assert calls == [len(XS)]  # the second map loaded every item's entry


def test_continue_blocks_what_depends_on_a_failed_item():
    @node(output_name="a")
    def picky(x: int) -> float:
        if x == 3:
            raise KeyError("three")
        return float(x)

    @node(output_name="b", batch=True)
    def double(a: list[float]) -> list[float]:
        return [v * 2 for v in a]

    rows = Pipeline([picky, double]).map({"x": XS}, map_over="x", on_error="continue")
    assert isinstance(rows[3]["a"], ItemError) and rows[3]["b"] is rows[3]["a"]
    assert [rows[i]["b"] for i in XS if i != 3] == [2.0 * i for i in XS if i != 3]


def test_raise_reports_the_lowest_failing_item_as_a_sequential_run_would():
    @node(output_name="a")
    def early(x: int) -> int:
        if x == 6:
            raise ValueError("six")
        return x

    @node(output_name="b", batch=True)
    def passthrough(a: list[int]) -> list[int]:
        return a

    @node(output_name="c")
    def late(b: int) -> int:
        if b == 2:
            raise KeyError("two")
        return b

    pipeline = Pipeline([early, passthrough, late])
    with pytest.raises(KeyError, match="two") as info:
        pipeline.with_engine(HypernodesEngine(batch_size=8)).map({"x": XS}, map_over="x")
    assert any("[item 2]" in note for note in info.value.__notes__)
    rows = list(pipeline.imap({"x": XS[:6]}, map_over="x", on_error="continue"))
    assert [i for i, row in rows if isinstance(row["c"], ItemError)] == [2]


def test_async_batch_functions_and_retries():
    attempts = []

    @node(output_name="b", batch=True, retries=1)
    async def flaky(a: list[float]) -> list[float]:
        await asyncio.sleep(0)
        attempts.append(len(a))
        if len(attempts) == 1:
            raise ConnectionError("once")
        return [v + 1 for v in a]

    rows = Pipeline([prepare, flaky]).map({"x": XS}, map_over="x", output_name="b")
    assert rows == [{"b": x + 1.5} for x in XS]
    assert attempts == [len(XS), len(XS)]


def test_type_checks_read_a_batch_nodes_per_item_types():
    @node(output_name="b", batch=True)
    def takes_text(a: list[str]) -> list[int]:
        return [len(v) for v in a]

    @node(output_name="c")
    def needs_int(b: int) -> int:
        return b

    @node(output_name="c")
    def needs_str(b: str) -> str:
        return b

    with pytest.raises(TypeMismatchError, match="takes it as str"):
        Pipeline([prepare, takes_text])  # prepare gives float
    assert Pipeline([takes_text, needs_int], type_check="error").root_args == ("a",)
    with pytest.raises(TypeMismatchError):
        Pipeline([takes_text, needs_str])


def test_runtime_type_checks_apply_to_the_batch_calls():
    @node(output_name="b", batch=True)
    def lying(a: list[float]) -> list[int]:
        return [v * 2 for v in a]

    pipeline = Pipeline([prepare, lying], type_check="runtime")
    with pytest.raises(TypeMismatchError, match="lying"):
        pipeline.map({"x": XS}, map_over="x")


def test_a_dual_nodes_cache_key_covers_both_functions():
    from hypernodes.cache.signatures import CallInfo, cache_plan

    def statics(pipeline):
        plan = pipeline.plan(None, frozenset({"x", "factor"}))
        return CallInfo(plan, cache_plan(plan)).statics

    dual, plain = _pipelines()
    assert statics(dual)[0] == statics(plain)[0]  # prepare: the same node
    assert statics(dual)[1] != statics(plain)[1]  # shifted: its batch twin is part of its code
