"""Nested pipelines: inner nodes use the caller's cache; downstream keys use output values."""

from __future__ import annotations

from collections import Counter

from hypernodes import MemoryCache, Pipeline, node


def inner_pipeline(calls: Counter) -> Pipeline:
    @node(output_name="doubled")
    def double(v):
        calls["double"] += 1
        return v * 2

    @node(output_name="plus")
    def plus_one(doubled):
        calls["plus_one"] += 1
        return doubled + 1

    return Pipeline([double, plus_one], name="inner")


def outer_pipeline(calls: Counter, inner: Pipeline, cache) -> Pipeline:
    @node(output_name="v")
    def prepare(x):
        calls["prepare"] += 1
        return x + 100

    @node(output_name="report")
    def report(plus):
        calls["report"] += 1
        return f"result {plus}"

    return Pipeline([prepare, inner, report], cache=cache, name="outer")


def test_nested_pipeline_uses_the_parents_cache(make_cache):
    calls = Counter()
    inner = inner_pipeline(calls)
    assert inner.cache is None
    outer = outer_pipeline(calls, inner, make_cache())
    expected = {"v": 101, "doubled": 202, "plus": 203, "report": "result 203"}
    assert outer.run({"x": 1}) == expected
    assert outer.run({"x": 1}) == expected
    assert calls == {"prepare": 1, "double": 1, "plus_one": 1, "report": 1}
    assert inner.cache is None  # inherited at run time, never set on the inner object
    calls.clear()
    # the inner pipeline's own entries are shared with running it on its own
    assert inner.with_cache(outer.cache).run({"v": 101}) == {"doubled": 202, "plus": 203}
    assert calls == {}


def test_downstream_of_a_nested_pipeline_is_keyed_by_the_values_it_returns():
    calls = Counter()
    cache = MemoryCache()
    outer = outer_pipeline(calls, inner_pipeline(calls), cache)
    outer.run({"x": 1})
    calls.clear()
    # warm: the nested step runs (its nodes are loaded), report is a hit by value
    assert outer.run({"x": 1}, output_name="report") == {"report": "result 203"}
    assert calls == {}


def test_nested_map_over_caches_per_inner_item():
    calls = Counter()
    inner = inner_pipeline(calls)
    node_ = inner.as_node(input_mapping={"values": "v"}, map_over="values", name="each")

    @node(output_name="total")
    def total(plus):
        calls["total"] += 1
        return sum(plus)

    outer = Pipeline([node_, total], cache=MemoryCache())
    assert outer.run({"values": [1, 2, 3]}) == {
        "doubled": [2, 4, 6],
        "plus": [3, 5, 7],
        "total": 15,
    }
    calls.clear()
    assert outer.run({"values": [1, 2, 3, 4]})["total"] == 24
    assert calls == {"double": 1, "plus_one": 1, "total": 1}


def test_changing_an_inner_node_invalidates_outer_downstream():
    calls = Counter()
    cache = MemoryCache()
    inner = inner_pipeline(calls)
    outer_pipeline(calls, inner, cache).run({"x": 1})

    @node(output_name="plus")
    def plus_two(doubled):
        calls["plus_two"] += 1
        return doubled + 2

    double = inner.nodes[0]
    changed_inner = Pipeline([double, plus_two], name="inner")
    calls.clear()
    result = outer_pipeline(calls, changed_inner, cache).run({"x": 1})
    assert result["report"] == "result 204"
    assert calls == {"plus_two": 1, "report": 1}
