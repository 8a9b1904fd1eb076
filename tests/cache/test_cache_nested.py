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


# ---------------------------------------------------------------------------------------------
# A nested step keyed as a whole: a warm nested map is one read


class CountingCache(MemoryCache):
    """A MemoryCache that counts the keys it is asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = 0

    def get_many(self, keys):
        self.asked += len(keys)
        return super().get_many(keys)


def retrieval(calls: Counter, cache, score_cached: bool = True) -> Pipeline:
    @node(output_name="score", cache=score_cached)
    def score(query: str, doc: str) -> int:
        calls["score"] += 1
        return len(set(query) & set(doc))

    @node(output_name="best")
    def best(scores: list[int]) -> int:
        calls["best"] += 1
        return max(range(len(scores)), key=scores.__getitem__)

    per_doc = Pipeline([score], name="per_doc")
    per_query = Pipeline(
        [
            per_doc.as_node(
                input_mapping={"docs": "doc"},
                output_mapping={"score": "scores"},
                map_over="docs",
            ),
            best,
        ],
        name="per_query",
    )

    @node(output_name="total")
    def total(bests: list[int]) -> int:
        calls["total"] += 1
        return sum(bests)

    each = per_query.as_node(
        input_mapping={"queries": "query"}, output_mapping={"best": "bests"}, map_over="queries"
    )
    return Pipeline([each, total], cache=cache, name="eval")


DOCS = ["apple", "banana", "cherry", "date", "elderberry"]
QUERIES = ["ban", "che", "app"]


def test_a_warm_nested_map_is_read_whole(make_cache):
    calls = Counter()
    inputs = {"queries": QUERIES, "docs": DOCS}
    first = retrieval(calls, make_cache()).run(inputs, output_name="total")
    assert calls == {"score": 15, "best": 3, "total": 1}
    calls.clear()
    assert retrieval(calls, make_cache()).run(inputs, output_name="total") == first
    assert calls == {}


def test_a_warm_nested_map_reads_a_few_keys_not_one_per_inner_item():
    calls = Counter()
    cache = CountingCache()
    inputs = {"queries": QUERIES, "docs": DOCS}
    retrieval(calls, cache).run(inputs, output_name="total")
    cache.asked = 0
    retrieval(calls, cache).run(inputs, output_name="total")
    assert cache.asked <= 3  # the nested step as a whole, then total; not 15 + 3 + 1


def test_changed_inputs_of_a_nested_map_reuse_its_inner_entries():
    calls = Counter()
    cache = MemoryCache()
    retrieval(calls, cache).run({"queries": QUERIES, "docs": DOCS})
    calls.clear()
    more = retrieval(calls, cache).run({"queries": [*QUERIES, "dat"], "docs": DOCS})
    assert more["bests"][-1] == 3
    # a new query: the whole-step entry misses, the old queries' inner entries still hit
    assert calls == {"score": 5, "best": 1, "total": 1}


def test_an_uncached_inner_node_keeps_running(make_cache):
    calls = Counter()
    inputs = {"queries": QUERIES, "docs": DOCS}
    retrieval(calls, make_cache(), score_cached=False).run(inputs, output_name="total")
    calls.clear()
    retrieval(calls, make_cache(), score_cached=False).run(inputs, output_name="total")
    assert calls["score"] == 15  # cache=False: it runs every time, so the step is not read whole


def test_a_changed_bound_input_of_the_inner_pipeline_misses():
    calls = Counter()

    @node(output_name="y")
    def scale(x: int, factor: int) -> int:
        calls["scale"] += 1
        return x * factor

    cache = MemoryCache()
    for factor, expected in [(2, [2, 4]), (3, [3, 6]), (2, [2, 4])]:
        inner = Pipeline([scale], name="inner").bind(factor=factor)
        outer = Pipeline([inner.as_node(map_over="x")], cache=cache)
        assert outer.run({"x": [1, 2]}) == {"y": expected}
    assert calls["scale"] == 4  # factor 2, then 3; factor 2 again is a hit


def test_an_inner_pipeline_with_callbacks_of_its_own_still_reports(make_cache):
    from hypernodes import PipelineCallback

    class Seen(PipelineCallback):
        def __init__(self):
            self.cached = 0

        def on_node_cached(self, *, node, signature, context):
            self.cached += 1

    seen = Seen()

    @node(output_name="y")
    def inc(x: int) -> int:
        return x + 1

    inner = Pipeline([inc], name="inner", callbacks=[seen])
    outer = Pipeline([inner.as_node(map_over="x")], cache=make_cache())
    outer.run({"x": [1, 2, 3]})
    outer.run({"x": [1, 2, 3]})
    assert seen.cached == 3  # the warm run still ran the inner pipeline, which reported its hits
