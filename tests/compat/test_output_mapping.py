"""Which inner outputs a nested pipeline exposes: all (ours), the mapped ones (0.4's), or a
list; inner outputs nothing asks for are never computed."""

from __future__ import annotations

import pytest

from hypernodes import Pipeline, node
from hypernodes.exceptions import MappingError


def build(calls: list[str]) -> Pipeline:
    @node(output_name="tokens")
    def tokenize(text: str) -> list[str]:
        calls.append("tokenize")
        return text.split()

    @node(output_name="count")
    def count(tokens: list[str]) -> int:
        calls.append("count")
        return len(tokens)

    @node(output_name="upper")
    def upper(text: str) -> str:
        calls.append("upper")
        return text.upper()

    return Pipeline([tokenize, count, upper], name="inner")


def test_all_outputs_are_exposed_by_default():
    calls: list[str] = []
    step = build(calls).as_node(output_mapping={"count": "n"})
    assert set(step.outputs) == {"tokens", "n", "upper"}
    assert Pipeline([step]).run({"text": "a b"}) == {"tokens": ["a", "b"], "n": 2, "upper": "A B"}


def test_mapped_exposes_only_the_mapped_outputs_and_computes_nothing_else():
    calls: list[str] = []
    step = build(calls).as_node(output_mapping={"count": "n"}, expose="mapped")
    assert step.outputs == ("n",)
    outer = Pipeline([step])
    assert outer.run({"text": "a b c"}) == {"n": 3}
    assert calls == ["tokenize", "count"]  # "upper" is not exposed: never computed
    assert outer.output_names == ("n",)


def test_mapped_works_in_a_nested_map():
    calls: list[str] = []
    step = build(calls).as_node(
        input_mapping={"texts": "text"}, output_mapping={"count": "counts"}, map_over="texts",
        expose="mapped",
    )  # fmt: skip
    assert Pipeline([step]).run({"texts": ["a", "b c"]}) == {"counts": [1, 2]}
    assert "upper" not in calls


def test_a_list_hides_the_intermediates():
    calls: list[str] = []
    step = build(calls).as_node(expose=["count", "upper"])
    assert Pipeline([step]).run({"text": "x y"}) == {"count": 2, "upper": "X Y"}


def test_bad_expose_values_raise():
    inner = build([])
    with pytest.raises(MappingError, match="needs an output_mapping"):
        inner.as_node(expose="mapped")
    with pytest.raises(MappingError, match="expose takes 'all', 'mapped' or a list"):
        inner.as_node(expose=["nope"])
