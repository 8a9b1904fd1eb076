"""``@node(check=...)``: a value that fails its check raises OutputCheckError (an ItemError under
``on_error="continue"``) naming node, output and item, under every engine, and is never cached."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pandas as pd
import pydantic
import pytest
from engine_kinds import KINDS

from hypernodes import DiskCache, ItemError, Pipeline, node
from hypernodes.exceptions import InvalidNodeError, OutputCheckError
from hypernodes.execution.layers import call_layers

pytestmark = pytest.mark.timeout(180)

XS = [0, 1, 2, 3, 4, 5]


def non_negative(value: int) -> bool:
    return value >= 0


@node(output_name="y", check=non_negative)
def shifted(x: int, log: str) -> int:
    """Logs each call to the file ``log`` (worker processes too); negative for x == 3."""
    with open(log, "a") as out:
        out.write(f"{x}\n")
    return -1 if x == 3 else x * 10


@node(output_name="z")
def after(y: int) -> int:
    return y + 1


@node(output_name="sq", check=lambda sq: sq != 16)
async def async_square(x: int) -> int:
    await asyncio.sleep(0)
    return x * x


def calls(log: Path) -> list[int]:
    return [int(line) for line in log.read_text().split()] if log.exists() else []


@pytest.mark.parametrize("kind", KINDS)
def test_a_failed_check_raises_naming_node_output_and_item(engine, kind, tmp_path):
    pipeline = Pipeline([shifted, after], engine=engine, name="checked")
    with pytest.raises(OutputCheckError) as info:
        pipeline.map({"x": XS, "log": str(tmp_path / "log")}, map_over="x")
    error = info.value
    assert (error.node, error.output) == ("shifted", "y")
    assert "node 'shifted' returned an invalid 'y' = -1" in str(error)
    assert "non_negative returned False" in str(error)
    assert (
        "hypernodes: raised by node 'shifted' of pipeline checked[item 3]; inputs: x=3"
        in (error.__notes__[-1])
    )


@pytest.mark.parametrize("kind", KINDS)
def test_continue_gives_an_item_error_and_caches_only_valid_values(engine, kind, tmp_path):
    log = tmp_path / "log"
    pipeline = Pipeline(
        [shifted, after], engine=engine, cache=DiskCache(tmp_path / "cache"), name="checked"
    )
    inputs = {"x": XS, "log": str(log)}
    rows = pipeline.map(inputs, map_over="x", on_error="continue")
    failed = rows[3]["y"]
    assert isinstance(failed, ItemError) and failed.index == 3 and failed.node == "shifted"
    assert isinstance(failed.exception, OutputCheckError)
    assert rows[3]["z"] is failed  # nothing downstream ran on the invalid value
    assert [row["z"] for i, row in enumerate(rows) if i != 3] == [1, 11, 21, 41, 51]
    assert sorted(calls(log)) == XS
    # again: the valid items are cache hits, the invalid one was never stored and runs again
    again = pipeline.map(inputs, map_over="x", on_error="continue")
    assert isinstance(again[3]["y"], ItemError)
    assert sorted(calls(log)) == sorted([*XS, 3])


@pytest.mark.parametrize("kind", KINDS)
def test_async_node_check(engine, kind):
    rows = Pipeline([async_square], engine=engine).map({"x": XS}, map_over="x", on_error="continue")
    assert [isinstance(row["sq"], ItemError) for row in rows] == [i == 4 for i in XS]


def test_pydantic_model_check():
    class Point(pydantic.BaseModel):
        x: int
        y: int

    @node(output_name="point", check=Point)
    def make_point(x: int) -> dict:
        return {"x": x, "y": "north" if x == 2 else x}

    rows = Pipeline([make_point]).map({"x": [1, 2]}, map_over="x", on_error="continue")
    assert rows[0] == {"point": {"x": 1, "y": 1}}  # the value is kept as returned
    error = rows[1]["point"].exception
    assert isinstance(error, OutputCheckError) and error.item == 1
    assert "pydantic model" in str(error) and "Point" in str(error)
    assert isinstance(error.__cause__, pydantic.ValidationError)


def test_pandera_schema_check():
    pa = pytest.importorskip("pandera.pandas", reason="pandera checks need pandera installed")
    schema = pa.DataFrameSchema({"price": pa.Column(float, pa.Check.ge(0))}, name="prices")

    @node(output_name="frame", check=schema)
    def prices(values: list) -> pd.DataFrame:
        return pd.DataFrame({"price": values})

    pipeline = Pipeline([prices])
    assert pipeline.run({"values": [1.0, 2.5]})["frame"]["price"].tolist() == [1.0, 2.5]
    with pytest.raises(OutputCheckError, match="schema prices raised SchemaError") as info:
        pipeline.run({"values": [1.0, -2.0]})
    assert info.value.item is None  # a run has no item


def test_dict_of_checks_for_several_outputs_and_bad_checks_are_refused():
    @node(output_name=("q", "r"), check={"r": lambda r: r != 2})
    def split(x: int) -> tuple[int, int]:
        return divmod(x, 3)

    rows = Pipeline([split]).map({"x": [4, 5]}, map_over="x", on_error="continue")
    assert rows[0] == {"q": 1, "r": 1}
    assert rows[1]["q"].exception.output == "r"
    with pytest.raises(InvalidNodeError, match=r"give check a dict naming the output"):
        node(output_name=("q", "r"), check=non_negative)(lambda x: (x, x))
    with pytest.raises(InvalidNodeError, match="check names output 'nope'"):
        node(output_name="y", check={"nope": non_negative})(lambda x: x)
    with pytest.raises(InvalidNodeError, match="check must be a function"):
        node(output_name="y", check=3)(lambda x: x)


def test_a_check_that_raises_is_the_cause():
    def positive(value: int) -> bool:
        if value <= 0:
            raise ValueError(f"{value} is not positive")
        return True

    pipeline = Pipeline([node(output_name="y", check=positive)(lambda x: x)])
    with pytest.raises(OutputCheckError, match="positive raised ValueError: 0 is not positive"):
        pipeline.run({"x": 0})


def test_batch_node_results_are_checked_one_by_one():
    @node(output_name="y", batch=True, check=non_negative)
    def minus_one(x: list[int]) -> list[int]:
        return [v - 1 for v in x]

    pipeline = Pipeline([minus_one])
    assert pipeline.map({"x": [1, 2]}, map_over="x") == [{"y": 0}, {"y": 1}]
    with pytest.raises(OutputCheckError, match="-1"):
        pipeline.map({"x": [1, 0]}, map_over="x")


def test_no_check_means_no_layer():
    assert [entry.name for entry in call_layers(after)] == []
    assert [entry.name for entry in call_layers(shifted)] == ["check"]
