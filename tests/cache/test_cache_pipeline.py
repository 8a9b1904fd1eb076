"""Cache semantics through Pipeline.run/map: hits, misses, what runs and what is loaded."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from hypernodes import DiskCache, MemoryCache, Pipeline, node
from hypernodes.cache import CacheWarning


class Calls(Counter):
    """Counts calls per node name."""

    def hit(self, name: str) -> None:
        self[name] += 1


class LoggingCache(MemoryCache):
    """A MemoryCache that records how many entries it hands out."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded = 0

    def get_many(self, keys):
        found = super().get_many(keys)
        self.loaded += len(found)
        return found


def diamond(calls: Calls) -> list:
    @node(output_name="a")
    def a(x):
        calls.hit("a")
        return x + 1

    @node(output_name="b")
    def b(a):
        calls.hit("b")
        return a * 2

    @node(output_name="c")
    def c(a, b):
        calls.hit("c")
        return a + b

    return [a, b, c]


def test_second_run_is_served_from_the_cache(make_cache):
    calls = Calls()
    nodes = diamond(calls)
    assert Pipeline(nodes, cache=make_cache()).run({"x": 1}) == {"a": 2, "b": 4, "c": 6}
    assert Pipeline(nodes, cache=make_cache()).run({"x": 1}) == {"a": 2, "b": 4, "c": 6}
    assert calls == {"a": 1, "b": 1, "c": 1}


def test_one_one_point_oh_true_and_the_string_are_different_keys(make_cache):
    seen = []

    @node(output_name="y")
    def f(x):
        seen.append(x)
        return repr(x)

    pipeline = Pipeline([f], cache=make_cache())
    results = [pipeline.run({"x": v})["y"] for v in (1, 1.0, True, "1", 1, True)]
    assert results == ["1", "1.0", "True", "'1'", "1", "True"]
    assert [type(v) for v in seen] == [int, float, bool, str]


def test_map_of_more_items_computes_only_the_new_ones(make_cache):
    calls = Calls()
    pipeline = Pipeline(diamond(calls), cache=make_cache())
    first = pipeline.map({"x": list(range(100))}, map_over="x")
    assert calls == {"a": 100, "b": 100, "c": 100}
    calls.clear()
    second = pipeline.map({"x": list(range(150))}, map_over="x")
    assert calls == {"a": 50, "b": 50, "c": 50}
    assert second[:100] == first
    assert second[149] == {"a": 150, "b": 300, "c": 450}


def test_run_and_map_share_entries(make_cache):
    calls = Calls()
    pipeline = Pipeline(diamond(calls), cache=make_cache())
    pipeline.run({"x": 5})
    pipeline.map({"x": [5, 6]}, map_over="x")
    assert calls == {"a": 2, "b": 2, "c": 2}
    calls.clear()
    assert pipeline.run({"x": 6}) == {"a": 7, "b": 14, "c": 21}
    assert calls == {}


def test_shared_map_inputs_are_part_of_the_key(make_cache):
    calls = Calls()

    @node(output_name="y")
    def scale(x, factor):
        calls.hit("scale")
        return x * factor

    pipeline = Pipeline([scale], cache=make_cache())
    assert pipeline.map({"x": [1, 2], "factor": 10}, map_over="x") == [{"y": 10}, {"y": 20}]
    assert pipeline.map({"x": [1, 2], "factor": 3}, map_over="x") == [{"y": 3}, {"y": 6}]
    assert pipeline.map({"x": [1, 2], "factor": 10}, map_over="x") == [{"y": 10}, {"y": 20}]
    assert calls["scale"] == 4


def test_defaults_are_part_of_the_key(make_cache):
    @node(output_name="y")
    def f(x, k=2):
        return x * k

    assert Pipeline([f], cache=make_cache()).run({"x": 3}) == {"y": 6}

    @node(output_name="y")
    def f(x, k=5):
        return x * k

    assert Pipeline([f], cache=make_cache()).run({"x": 3}) == {"y": 15}


def test_cache_false_node_always_runs_and_downstream_is_keyed_by_its_value(make_cache):
    calls = Calls()
    clock = {"now": 1}

    @node(output_name="t", cache=False)
    def now(x):
        calls.hit("now")
        return clock["now"]

    @node(output_name="y")
    def stamp(x, t):
        calls.hit("stamp")
        return (x, t)

    pipeline = Pipeline([now, stamp], cache=make_cache())
    assert pipeline.run({"x": 1}) == {"t": 1, "y": (1, 1)}
    assert pipeline.run({"x": 1}, output_name="y") == {"y": (1, 1)}
    assert calls == {"now": 2, "stamp": 1}
    clock["now"] = 2
    assert pipeline.run({"x": 1}, output_name="y") == {"y": (1, 2)}
    assert calls == {"now": 3, "stamp": 2}


def test_cache_version_forces_a_miss(make_cache):
    calls = Calls()

    def make(version):
        @node(output_name="y", cache_version=version)
        def f(x):
            calls.hit("f")
            return x

        return Pipeline([f], cache=make_cache())

    make(None).run({"x": 1})
    make(None).run({"x": 1})
    make("v2").run({"x": 1})
    make("v2").run({"x": 1})
    assert calls["f"] == 2


def test_tuple_outputs_are_cached_and_loaded_one_by_one():
    calls = Calls()
    cache = LoggingCache()

    @node(output_name=("lo", "hi"))
    def split(x):
        calls.hit("split")
        return x - 1, x + 1

    @node(output_name="width")
    def width(lo, hi):
        calls.hit("width")
        return hi - lo

    pipeline = Pipeline([split, width], cache=cache)
    assert pipeline.run({"x": 5}) == {"lo": 4, "hi": 6, "width": 2}
    assert len(cache) == 3
    cache.loaded = 0
    assert pipeline.run({"x": 5}, output_name="hi") == {"hi": 6}
    assert cache.loaded == 1
    assert pipeline.run({"x": 5}) == {"lo": 4, "hi": 6, "width": 2}
    assert calls == {"split": 1, "width": 1}


def test_warm_run_loads_only_what_is_requested():
    calls = Calls()
    cache = LoggingCache()
    pipeline = Pipeline(diamond(calls), cache=cache)
    pipeline.run({"x": 1})
    cache.loaded = 0
    assert pipeline.run({"x": 1}, output_name="c") == {"c": 6}
    assert cache.loaded == 1
    cache.loaded = 0
    assert pipeline.map({"x": [1, 1, 1]}, map_over="x", output_name="c") == [{"c": 6}] * 3
    assert cache.loaded == 3
    assert calls == {"a": 1, "b": 1, "c": 1}


def test_a_miss_loads_its_inputs_but_nothing_further_upstream():
    calls = Calls()
    cache = LoggingCache()

    @node(output_name="a")
    def a(x):
        calls.hit("a")
        return x + 1

    @node(output_name="b")
    def b(a):
        calls.hit("b")
        return a * 2

    def tail(version):
        @node(output_name="c", cache_version=version)
        def c(b):
            calls.hit("c")
            return b + 1

        return c

    Pipeline([a, b, tail(1)], cache=cache).run({"x": 1})
    cache.loaded = 0
    assert Pipeline([a, b, tail(2)], cache=cache).run({"x": 1}, output_name="c") == {"c": 5}
    assert calls == {"a": 1, "b": 1, "c": 2}
    assert cache.loaded == 1  # b only: a was neither run nor loaded


def test_unhashable_input_runs_uncached_with_one_warning(make_cache):
    calls = Calls()

    class Box:
        __slots__ = ()  # no state to hash

    @node(output_name="y")
    def f(box, x):
        calls.hit("f")
        return x

    @node(output_name="z")
    def g(y):
        calls.hit("g")
        return y + 1

    pipeline = Pipeline([f, g], cache=make_cache())
    with pytest.warns(CacheWarning, match="'f' runs uncached.*'box'") as record:
        assert pipeline.run({"box": Box(), "x": 1}) == {"y": 1, "z": 2}
        assert pipeline.run({"box": Box(), "x": 1}) == {"y": 1, "z": 2}
        assert pipeline.run({"box": Box(), "x": 2}) == {"y": 2, "z": 3}
    assert len([w for w in record if issubclass(w.category, CacheWarning)]) == 1
    # f runs every time; g is keyed by the value of y, so the repeat is a hit
    assert calls == {"f": 3, "g": 2}


def test_unpicklable_output_is_not_cached_but_the_run_succeeds(tmp_path):
    calls = Calls()

    @node(output_name="lock")
    def make_lock(x):
        calls.hit("lock")
        return threading.Lock()

    @node(output_name="kind")
    def kind(lock):
        calls.hit("kind")
        return type(lock).__name__

    pipeline = Pipeline([make_lock, kind], cache=DiskCache(tmp_path / "c"))
    with pytest.warns(CacheWarning, match="'lock' of node 'make_lock' is not cached"):
        first = pipeline.run({"x": 1})
    second = pipeline.run({"x": 1})
    assert type(first["lock"]) is type(second["lock"]) and second["kind"] == "lock"
    assert calls == {"lock": 2, "kind": 1}  # downstream of it is still cached
    assert pipeline.run({"x": 1}, output_name="kind") == {"kind": "lock"}
    assert calls == {"lock": 2, "kind": 1}


def test_memory_cache_keeps_private_copies():
    @node(output_name="items")
    def items(x):
        return [x]

    @node(output_name="grown")
    def grow(items):
        items.append("mutated")  # a node that mutates its input in place
        return len(items)

    pipeline = Pipeline([items, grow], cache=MemoryCache())
    assert pipeline.run({"x": 1}) == {"items": [1, "mutated"], "grown": 2}
    assert pipeline.run({"x": 1}, output_name="items") == {"items": [1]}


def test_errors_name_the_failing_node_even_when_earlier_steps_were_loaded(make_cache):
    @node(output_name="a")
    def a(x):
        return x

    @node(output_name="b")
    def b(a):
        if a > 1:
            raise ValueError("too big")
        return a

    pipeline = Pipeline([a, b], cache=make_cache())
    pipeline.run({"x": 2}, output_name="a")
    with pytest.raises(ValueError) as info:
        pipeline.map({"x": [1, 2]}, map_over="x")
    assert any("node 'b'" in n and "item 1" in n for n in info.value.__notes__)


def test_threads_sharing_one_cache_agree(make_cache):
    calls = Calls()
    pipeline = Pipeline(diamond(calls), cache=make_cache())
    expected = [{"a": x + 1, "b": 2 * x + 2, "c": 3 * x + 3} for x in range(40)]
    results = [None] * 8

    def work(i):
        results[i] = pipeline.map({"x": list(range(40))}, map_over="x")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r == expected for r in results)
    assert pipeline.map({"x": list(range(40))}, map_over="x") == expected
    assert 40 <= calls["a"] <= 8 * 40


def test_no_cache_means_no_cache_work():
    calls = Calls()
    pipeline = Pipeline(diamond(calls))
    pipeline.run({"x": 1})
    pipeline.run({"x": 1})
    plan = pipeline.plan(None, frozenset({"x"}))
    assert calls["a"] == 2 and plan.cache_plan is None
