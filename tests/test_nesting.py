"""Nested pipelines: plain nesting, as_node mappings, map_over inside map, sharing, inheritance."""

from __future__ import annotations

import threading

import pytest

from hypernodes import HypernodesEngine, Pipeline, node
from hypernodes.exceptions import (
    DuplicateOutputError,
    MappingError,
    MissingInputError,
    UnknownInputError,
)


@node(output_name="doubled")
def double(x: int) -> int:
    return 2 * x


@node(output_name="plus")
def add(doubled: int, offset: int = 0) -> int:
    return doubled + offset


inner = Pipeline([double, add], name="inner")


def test_pipeline_as_a_node_exposes_inner_outputs():
    @node(output_name="final")
    def final(plus: int) -> int:
        return plus * 10

    outer = Pipeline([inner, final], name="outer")
    assert outer.root_args == ("x", "offset")
    assert outer.run({"x": 2}) == {"doubled": 4, "plus": 4, "final": 40}
    assert outer.run({"x": 2, "offset": 1}, output_name="final") == {"final": 50}


def test_as_node_mappings():
    adapted = inner.as_node(
        input_mapping={"value": "x"}, output_mapping={"plus": "result"}, name="adapted"
    )
    assert adapted.inputs == ("value", "offset")
    assert set(adapted.outputs) == {"doubled", "result"}
    outer = Pipeline([adapted])
    assert outer.run({"value": 5}, output_name="result") == {"result": 10}


def test_nested_pruning_only_requires_inner_inputs_that_matter():
    @node(output_name="other")
    def other(y: int) -> int:
        return y

    two_branch = Pipeline([double, other], name="two")
    outer = Pipeline([two_branch.as_node(name="two")])
    assert outer.run({"x": 3}, output_name="doubled") == {"doubled": 6}
    with pytest.raises(MissingInputError, match="'y'"):
        outer.run({"x": 3}, output_name="other")


def test_map_over_in_as_node():
    @node(output_name="total")
    def total(results: list[int]) -> int:
        return sum(results)

    mapped = inner.as_node(
        input_mapping={"xs": "x"}, output_mapping={"plus": "results"}, map_over="xs", name="each"
    )
    outer = Pipeline([mapped, total], name="outer")
    result = outer.run({"xs": [1, 2, 3], "offset": 1})
    assert result["results"] == [3, 5, 7]
    assert result["doubled"] == [2, 4, 6]
    assert result["total"] == 15


def test_three_levels_with_map_at_two_of_them():
    """outer maps over documents; each document maps over its words through a middle pipeline."""

    @node(output_name="length")
    def word_length(word: str) -> int:
        return len(word)

    level3 = Pipeline([word_length], name="word")

    @node(output_name="words")
    def split(doc: str) -> list[str]:
        return doc.split()

    @node(output_name="longest")
    def longest(lengths: list[int]) -> int:
        return max(lengths, default=0)

    level2 = Pipeline(
        [
            split,
            level3.as_node(
                input_mapping={"words": "word"},
                output_mapping={"length": "lengths"},
                map_over="words",
                name="per_word",
            ),
            longest,
        ],
        name="doc",
    )

    @node(output_name="summary")
    def summary(longests: list[int]) -> dict:
        return {"docs": len(longests), "max": max(longests)}

    level1 = Pipeline(
        [
            level2.as_node(
                input_mapping={"docs": "doc"},
                output_mapping={"longest": "longests"},
                map_over="docs",
                name="per_doc",
            ),
            summary,
        ],
        name="corpus",
    )
    docs = ["a bb ccc", "dddd e", ""]
    assert level1.run({"docs": docs}, output_name="summary") == {"summary": {"docs": 3, "max": 4}}
    # and the whole thing mapped once more from the outside: three levels of map
    mapped = level1.map({"docs": [docs, ["xyzzy"]]}, map_over="docs", output_name="summary")
    assert mapped == [{"summary": {"docs": 3, "max": 4}}, {"summary": {"docs": 1, "max": 5}}]


def test_product_map_over_in_as_node():
    @node(output_name="pair")
    def pair(a: str, b: str) -> str:
        return a + b

    grid = Pipeline([pair]).as_node(map_over=["a", "b"], map_mode="product", name="grid")
    assert Pipeline([grid]).run({"a": ["x", "y"], "b": ["1", "2"]}) == {
        "pair": ["x1", "x2", "y1", "y2"]
    }


def test_inner_bound_inputs_stay_bound_unless_mapped():
    bound_inner = inner.bind(offset=100)
    outer = Pipeline([bound_inner])
    assert outer.root_args == ("x",)
    assert outer.run({"x": 1}, output_name="plus") == {"plus": 102}
    # the outer pipeline does not take the bound inner input: giving it is an error, not ignored
    with pytest.raises(UnknownInputError, match="'offset'"):
        outer.run({"x": 1, "offset": 5}, output_name="plus")
    overridable = Pipeline([bound_inner.as_node(input_mapping={"offset": "offset"})])
    assert overridable.run({"x": 1}, output_name="plus") == {"plus": 102}
    assert overridable.run({"x": 1, "offset": 5}, output_name="plus") == {"plus": 7}


def test_one_pipeline_object_nested_in_several_parents_and_threads():
    first = Pipeline([inner.as_node(output_mapping={"plus": "p1", "doubled": "d1"})])
    second = Pipeline(
        [inner.as_node(input_mapping={"y": "x"}, output_mapping={"plus": "p2", "doubled": "d2"})]
    )
    results = {}

    def work(i):
        results[i] = (first.run({"x": i}, output_name="p1"), second.run({"y": i}, output_name="p2"))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: ({"p1": 2 * i}, {"p2": 2 * i}) for i in range(8)}
    assert inner.engine is None and inner.cache is None and inner.callbacks is None


def test_inner_inherits_engine_without_mutation_and_keeps_its_own():
    seen = []

    class SpyEngine(HypernodesEngine):
        def __init__(self, label):
            super().__init__()
            self.label = label

        def run(self, plan, values, ctx):
            seen.append((self.label, ctx.path))
            return super().run(plan, values, ctx)

    outer_engine, inner_engine = SpyEngine("outer"), SpyEngine("inner")
    outer = Pipeline([inner], engine=outer_engine, name="outer")
    outer.run({"x": 1})
    assert seen == [("outer", ("outer",)), ("outer", ("outer", "inner"))]
    assert inner.engine is None
    seen.clear()
    Pipeline([inner.with_engine(inner_engine)], engine=outer_engine, name="outer").run({"x": 1})
    assert seen == [("outer", ("outer",)), ("inner", ("outer", "inner"))]


def test_bad_as_node_mappings():
    with pytest.raises(MappingError, match="no input 'nope'"):
        inner.as_node(input_mapping={"a": "nope"})
    with pytest.raises(MappingError, match="no output 'nope'"):
        inner.as_node(output_mapping={"nope": "a"})
    with pytest.raises(MappingError, match="two outer names"):
        inner.as_node(input_mapping={"a": "x", "b": "x"})
    with pytest.raises(MappingError, match="map_over"):
        inner.as_node(map_over="nope")
    with pytest.raises(MappingError, match="map_over"):
        inner.as_node(input_mapping={"a": "x"}, map_over="x")  # must use the outer name
    with pytest.raises(MappingError, match="map_mode"):
        inner.as_node(map_mode="cross")


def test_nested_output_clash_is_a_duplicate():
    @node(output_name="doubled")
    def clash(y):
        return y

    with pytest.raises(DuplicateOutputError, match="doubled"):
        Pipeline([inner, clash])
