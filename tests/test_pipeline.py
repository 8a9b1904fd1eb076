"""Pipeline construction, validation, properties, run, pruning, bind and copies."""

from __future__ import annotations

import networkx as nx
import pytest

from hypernodes import HypernodesEngine, MemoryCache, Pipeline, PipelineCallback, node
from hypernodes.exceptions import (
    CycleError,
    DuplicateOutputError,
    HyperNodesError,
    InvalidNodeError,
    MissingInputError,
    UnknownOutputError,
)


@node(output_name="cleaned")
def clean(text: str) -> str:
    return text.strip().lower()


@node(output_name="words")
def split(cleaned: str) -> list[str]:
    return cleaned.split()


@node(output_name="count")
def count(words: list[str]) -> int:
    return len(words)


@node(output_name="shout")
def shout(cleaned: str, suffix: str = "!") -> str:
    return cleaned.upper() + suffix


@pytest.fixture
def text_pipeline() -> Pipeline:
    return Pipeline(nodes=[clean, split, count, shout], name="text")


def test_properties(text_pipeline):
    assert text_pipeline.root_args == ("text", "suffix")
    assert set(text_pipeline.output_names) == {"cleaned", "words", "count", "shout"}
    assert text_pipeline.output_names.index("cleaned") < text_pipeline.output_names.index("words")
    assert isinstance(text_pipeline.graph, nx.DiGraph)
    assert text_pipeline.graph.has_edge(clean, split)
    assert text_pipeline.graph[clean][split]["names"] == ["cleaned"]
    assert text_pipeline.nodes == [clean, split, count, shout]
    assert "text" in repr(text_pipeline) and "clean(text) -> cleaned" in repr(text_pipeline)


def test_run_returns_all_outputs(text_pipeline):
    result = text_pipeline.run(inputs={"text": "  Hello World "})
    assert result == {
        "cleaned": "hello world",
        "words": ["hello", "world"],
        "count": 2,
        "shout": "HELLO WORLD!",
    }
    assert text_pipeline(text="a b", suffix="?") == text_pipeline.run(
        {"text": "a b", "suffix": "?"}
    )


def test_pruning_runs_only_what_is_needed():
    calls = []

    @node(output_name="a")
    def make_a(x):
        calls.append("a")
        return x + 1

    @node(output_name="b")
    def make_b(y):
        calls.append("b")
        return y * 2

    pipeline = Pipeline([make_a, make_b])
    # Only 'a' is requested, so 'y' is not required.
    assert pipeline.run({"x": 1}, output_name="a") == {"a": 2}
    assert calls == ["a"]
    assert pipeline.run({"x": 1, "y": 2}, output_name=["b", "a"]) == {"b": 4, "a": 2}
    with pytest.raises(MissingInputError) as info:
        pipeline.run({"x": 1}, output_name="b")
    assert "'y'" in str(info.value) and "make_b" in str(info.value)
    assert info.value.missing == {"y": ["make_b"]}


def test_missing_input_names_input_and_nodes(text_pipeline):
    with pytest.raises(MissingInputError, match=r"'text' \(needed by 'clean'\)") as info:
        text_pipeline.run({})
    assert "bind" in str(info.value)


def test_unknown_output(text_pipeline):
    with pytest.raises(UnknownOutputError, match="no output") as info:
        text_pipeline.run({"text": "x"}, output_name="nope")
    assert "count" in str(info.value)


def test_provided_value_overrides_an_intermediate(text_pipeline):
    result = text_pipeline.run({"cleaned": "already clean"}, output_name="count")
    assert result == {"count": 2}


def test_duplicate_outputs_are_refused():
    @node(output_name="cleaned")
    def other(text):
        return text

    with pytest.raises(DuplicateOutputError, match="'cleaned' is produced by both"):
        Pipeline([clean, other])


def test_cycle_is_refused_with_the_cycle_in_the_message():
    @node(output_name="a")
    def f(c):
        return c

    @node(output_name="b")
    def g(a):
        return a

    @node(output_name="c")
    def h(b):
        return b

    with pytest.raises(CycleError) as info:
        Pipeline([f, g, h], name="loop")
    message = str(info.value)
    assert "cycle" in message and "f" in message and "g" in message and "h" in message
    assert len(info.value.cycle) == 4 and info.value.cycle[0] == info.value.cycle[-1]


def test_non_nodes_are_refused():
    def plain(x):
        return x

    with pytest.raises(InvalidNodeError, match=r"nodes\[0\].*@node"):
        Pipeline([plain])
    with pytest.raises(InvalidNodeError):
        Pipeline([clean, 3])
    with pytest.raises(InvalidNodeError):
        Pipeline(clean)


def test_bind_and_unbind_return_new_pipelines(text_pipeline):
    bound = text_pipeline.bind(text="A B C")
    assert bound is not text_pipeline
    assert bound.bound_inputs == {"text": "A B C"}
    assert text_pipeline.bound_inputs == {}
    assert bound.run(output_name="count") == {"count": 3}
    assert bound.run({"text": "x"}, output_name="count") == {"count": 1}  # inputs win
    assert bound.unbound_args == ("suffix",)
    with pytest.raises(MissingInputError):
        bound.unbind("text").run(output_name="count")
    assert bound.unbind().bound_inputs == {}
    with pytest.raises(HyperNodesError, match="no input"):
        text_pipeline.bind(nope=1)
    # an input that is not bound is left as it is (the original's behaviour); a typo raises
    assert text_pipeline.unbind("text").bound_inputs == {}
    assert bound.unbind("suffix").bound_inputs == {"text": "A B C"}
    with pytest.raises(HyperNodesError, match="no input"):
        text_pipeline.unbind("txet")


def test_with_methods_return_new_pipelines(text_pipeline):
    engine = HypernodesEngine()
    cache, callback = MemoryCache(), PipelineCallback()
    assert text_pipeline.with_engine(engine).engine is engine
    assert text_pipeline.with_cache(cache).cache is cache
    assert text_pipeline.with_callbacks([callback]).callbacks == [callback]
    assert text_pipeline.with_name("renamed").name == "renamed"
    assert text_pipeline.engine is None and text_pipeline.cache is None
    assert text_pipeline.callbacks is None and text_pipeline.name == "text"


def test_defaults_are_per_node():
    @node(output_name="a")
    def f(x=1):
        return x

    @node(output_name="b")
    def g(x=2):
        return x

    pipeline = Pipeline([f, g])
    assert pipeline.run() == {"a": 1, "b": 2}
    assert pipeline.run({"x": 5}) == {"a": 5, "b": 5}


def test_default_input_produced_by_another_node_is_wired():
    @node(output_name="x")
    def make_x():
        return 10

    @node(output_name="y")
    def use(x=1):
        return x + 1

    assert Pipeline([use, make_x]).run(output_name="y") == {"y": 11}


def test_keyword_only_and_positional_only_parameters():
    def f(a, /, b, *, c=3):
        return a + b + c

    pipeline = Pipeline([node(f, output_name="y").with_inputs(c="cc")])
    assert pipeline.run({"a": 1, "b": 2}) == {"y": 6}
    assert pipeline.run({"a": 1, "b": 2, "cc": 10}) == {"y": 13}


def test_empty_pipeline_runs_to_empty_dict():
    assert Pipeline([]).run({}) == {}


def test_plan_is_compiled_once_per_outputs_and_inputs(text_pipeline):
    first = text_pipeline.plan(("count",), frozenset({"text"}))
    assert text_pipeline.plan(("count",), frozenset({"text"})) is first
    assert text_pipeline.bind(text="x").plan(("count",), frozenset({"text"})) is first
    assert [s.name for s in first.steps] == ["clean", "split", "count"]
    assert text_pipeline.plan(None, frozenset({"text"})) is not first
