"""``as_node(namespace=...)``: one pipeline used twice in a parent, every name prefixed, under
every engine; clashes are named errors."""

from __future__ import annotations

import pytest
from engine_cases import add_one, double
from engine_kinds import KINDS

from hypernodes import MemoryCache, Pipeline, node
from hypernodes.exceptions import DuplicateOutputError, MappingError, NamespaceError

pytestmark = pytest.mark.timeout(180)

XS = [0, 1, 2, 3]


@node(output_name="gap")
def gap(train_b: int, test_b: int) -> int:
    return train_b - test_b


@node(output_name="sum_b")
def sum_b(train_b: list[int]) -> int:
    return sum(train_b)


def inner() -> Pipeline:
    return Pipeline([add_one, double], name="steps")


@pytest.mark.parametrize("kind", KINDS)
def test_one_pipeline_twice_in_a_parent(engine, kind):
    steps = inner()
    outer = Pipeline(
        [steps.as_node(namespace="train"), steps.as_node(namespace="test"), gap],
        engine=engine,
        cache=MemoryCache(),
        name="outer",
    )
    assert outer.root_args == ("train_x", "test_x")
    assert [n.name for n in outer.nodes] == ["train", "test", "gap"]
    rows = outer.map({"train_x": XS, "test_x": [10, 20, 30, 40]}, map_over=["train_x", "test_x"])
    assert rows == [
        {"train_a": x + 1, "train_b": 2 * (x + 1), "test_a": t + 1, "test_b": 2 * (t + 1),
         "gap": 2 * (x + 1) - 2 * (t + 1)}
        for x, t in zip(XS, [10, 20, 30, 40])
    ]  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
def test_a_namespaced_map_over(engine, kind):
    train = inner().as_node(namespace="train", map_over="train_x")
    outer = Pipeline([train, sum_b], engine=engine, name="outer")
    assert outer.run({"train_x": XS}) == {
        "train_a": [x + 1 for x in XS],
        "train_b": [2 * (x + 1) for x in XS],
        "sum_b": sum(2 * (x + 1) for x in XS),
    }


def test_mappings_win_and_bound_inputs_stay_inside():
    @node(output_name="scaled")
    def scale(x: int, factor: int) -> int:
        return x * factor

    steps = Pipeline([scale], name="scale").bind(factor=3)
    adapted = steps.as_node(namespace="a", input_mapping={"raw": "x"}, name="first")
    assert (adapted.name, adapted.inputs, adapted.outputs) == ("first", ("raw",), ("a_scaled",))
    assert Pipeline([adapted]).run({"raw": 2}) == {"a_scaled": 6}
    kept = steps.as_node(namespace="a", output_mapping={"scaled": "y"})
    assert kept.outputs == ("y",) and kept.inputs == ("a_x",)


def test_clashes_are_named_errors():
    steps = inner()
    with pytest.raises(NamespaceError, match="a namespace is a Python identifier"):
        steps.as_node(namespace="train-set")
    with pytest.raises(NamespaceError, match="'b' becomes 't_b', a name that output_mapping"):
        steps.as_node(namespace="t", output_mapping={"a": "t_b"})
    with pytest.raises(NamespaceError) as info:
        Pipeline([add_one, double, gap]).as_node(namespace="t", input_mapping={"t_x": "train_b"})
    assert isinstance(info.value, MappingError)
    with pytest.raises(DuplicateOutputError, match=r"as_node\(namespace=\.\.\.\)"):
        Pipeline([steps.as_node(namespace="train"), steps.as_node(namespace="train")])
