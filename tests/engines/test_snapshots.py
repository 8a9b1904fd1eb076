"""Reproducing a failure: ``err.hypernodes_snapshot`` (node, pipeline path, item, inputs) on a
node's exception and ``ItemError.snapshot``, and ``.reproduce()`` in the caller's process."""

from __future__ import annotations

import os

import pytest
from engine_cases import neighbours, picky
from engine_kinds import KINDS

from hypernodes import ItemError, Pipeline, Resource, node
from hypernodes.exceptions import HyperNodesError, WorkerCrashedError

pytestmark = pytest.mark.timeout(180)


called_in: list[int] = []


@node(output_name="ratio")
def divide(a: int, b: int = 0) -> float:
    called_in.append(os.getpid())
    return a / b


@pytest.mark.parametrize("kind", KINDS)
def test_a_raised_error_carries_a_snapshot_that_reproduces_here(engine, kind):
    pipeline = Pipeline([divide], engine=engine, name="maths")
    with pytest.raises(ZeroDivisionError) as info:
        pipeline.map({"a": [1, 2, 3], "b": [1, 1, 0]}, map_over=["a", "b"])
    snapshot = info.value.hypernodes_snapshot
    assert (snapshot.node, snapshot.path, snapshot.item) == ("divide", ("maths",), 2)
    assert snapshot.inputs == {"a": 3, "b": 0}
    called_in.clear()
    with pytest.raises(ZeroDivisionError):
        snapshot.reproduce()
    assert called_in == [os.getpid()]  # called again in this process, whatever ran the map


@pytest.mark.parametrize("kind", KINDS)
def test_item_errors_of_a_nested_map_have_the_inner_snapshot(engine, kind):
    inner = Pipeline([picky], name="inner").as_node(
        input_mapping={"xs": "x"}, output_mapping={"picky": "checked"}, map_over="xs"
    )
    outer = Pipeline([neighbours, inner], engine=engine, name="outer")
    rows = outer.map({"x": [0, 7, 2]}, map_over="x", on_error="continue")
    error = rows[1]["checked"]
    assert isinstance(error, ItemError)
    snapshot = error.snapshot
    assert snapshot.node == "picky" and snapshot.path == ("outer", "inner")
    assert snapshot.items == (1, 1) and snapshot.item == 1 and snapshot.inputs == {"x": 8}
    with pytest.raises(ValueError, match="no multiples of four: 8"):
        error.reproduce()
    fixed = dict(snapshot.inputs, x=9)
    assert picky(**fixed) == 9  # .inputs are plain values, to try a fix by hand


def test_run_snapshot_with_defaults_async_and_resources():
    assert Pipeline([divide]).run({"a": 1, "b": 2}) == {"ratio": 0.5}
    with pytest.raises(ZeroDivisionError) as info:
        Pipeline([divide]).run({"a": 1})
    snapshot = info.value.hypernodes_snapshot
    assert snapshot.item is None and snapshot.inputs == {"a": 1, "b": 0}

    @node(output_name="out")
    async def lookup(key: str, table: dict) -> int:
        return table[key]

    table = Resource(dict, one=1)
    with pytest.raises(KeyError) as info:
        Pipeline([lookup.with_inputs(key="k")]).run({"k": "two", "table": table})
    snapshot = info.value.hypernodes_snapshot
    assert snapshot.inputs["k"] == "two"
    with pytest.raises(KeyError):
        snapshot.reproduce()  # the resource built here, the coroutine run to completion
    assert repr(snapshot).startswith("ErrorSnapshot(node 'lookup' of the pipeline; inputs: k='two'")


def test_an_error_outside_any_node_cannot_be_reproduced():
    error = ItemError(WorkerCrashedError("the worker died", [3]), None, 3)
    assert error.snapshot is None
    with pytest.raises(HyperNodesError, match="outside any node"):
        error.reproduce()
