"""Pipeline.map: zip and product modes, broadcast inputs, formats, sequences and errors."""

from __future__ import annotations

import numpy as np
import pytest

from hypernodes import MemoryCache, Pipeline, node
from hypernodes.exceptions import MapError, MissingInputError


@node(output_name="scaled")
def scale(x: float, factor: float = 1.0) -> float:
    return x * factor


@node(output_name="label")
def label(scaled: float, prefix: str) -> str:
    return f"{prefix}{scaled}"


@pytest.fixture
def pipeline() -> Pipeline:
    return Pipeline([scale, label], name="labels")


def test_zip_map_keeps_input_order_and_broadcasts_fixed_inputs(pipeline):
    result = pipeline.map({"x": [3, 1, 2], "prefix": "v=", "factor": 2}, map_over="x")
    assert result == [
        {"scaled": 6, "label": "v=6"},
        {"scaled": 2, "label": "v=2"},
        {"scaled": 4, "label": "v=4"},
    ]


def test_zip_over_two_inputs(pipeline):
    result = pipeline.map(
        {"x": [1, 2], "factor": [10, 100], "prefix": ""}, map_over=["x", "factor"]
    )
    assert [r["scaled"] for r in result] == [10, 200]


def test_product_mode(pipeline):
    result = pipeline.map(
        {"x": [1, 2], "prefix": ["a", "b", "c"]},
        map_over=["x", "prefix"],
        map_mode="product",
        output_name="label",
    )
    assert [r["label"] for r in result] == ["a1.0", "b1.0", "c1.0", "a2.0", "b2.0", "c2.0"]


def test_columns_format(pipeline):
    result = pipeline.map({"x": [1, 2], "prefix": "#"}, map_over="x", return_format="columns")
    assert result == {"scaled": [1.0, 2.0], "label": ["#1.0", "#2.0"]}


def test_output_name_prunes_map(pipeline):
    assert pipeline.map({"x": [1, 2]}, map_over="x", output_name="scaled") == [
        {"scaled": 1.0},
        {"scaled": 2.0},
    ]


@pytest.mark.parametrize(
    "seq",
    [(1, 2, 3), range(1, 4), np.array([1, 2, 3]), (i for i in (1, 2, 3))],
    ids=["tuple", "range", "numpy", "generator"],
)
def test_any_sequence_can_be_mapped(pipeline, seq):
    result = pipeline.map({"x": seq}, map_over="x", output_name="scaled")
    assert [r["scaled"] for r in result] == [1, 2, 3]


def test_empty_input_gives_empty_result(pipeline):
    assert pipeline.map({"x": [], "prefix": ""}, map_over="x") == []
    assert pipeline.map({"x": [], "prefix": ""}, map_over="x", return_format="columns") == {
        "scaled": [],
        "label": [],
    }


def test_zip_length_mismatch(pipeline):
    with pytest.raises(MapError, match=r"x: 2, factor: 3.*product"):
        pipeline.map({"x": [1, 2], "factor": [1, 2, 3], "prefix": ""}, map_over=["x", "factor"])


@pytest.mark.parametrize("value", [5, "abc", {1, 2}, None])
def test_mapping_a_non_sequence(pipeline, value):
    with pytest.raises(MapError, match="must be a sequence"):
        pipeline.map({"x": value, "prefix": ""}, map_over="x")


def test_map_over_unknown_parameter(pipeline):
    with pytest.raises(MapError, match="takes no input 'y'"):
        pipeline.map({"x": [1], "y": [1]}, map_over="y")


def test_map_over_name_missing_from_inputs(pipeline):
    with pytest.raises(MapError, match="no value"):
        pipeline.map({"prefix": ""}, map_over="x")


def test_bad_map_arguments(pipeline):
    with pytest.raises(MapError, match="map_mode"):
        pipeline.map({"x": [1]}, map_over="x", map_mode="cross")
    with pytest.raises(MapError, match="return_format"):
        pipeline.map({"x": [1]}, map_over="x", return_format="frame")
    with pytest.raises(MapError, match="map_over"):
        pipeline.map({"x": [1]}, map_over=[])


def test_missing_fixed_input_in_map(pipeline):
    with pytest.raises(MissingInputError, match="prefix"):
        pipeline.map({"x": [1]}, map_over="x")


def test_map_does_not_change_callers_inputs(pipeline):
    inputs = {"x": [1, 2], "prefix": ""}
    pipeline.map(inputs, map_over="x")
    assert inputs == {"x": [1, 2], "prefix": ""}


def test_map_with_bound_inputs(pipeline):
    bound = pipeline.bind(prefix=">", factor=3)
    assert [r["label"] for r in bound.map({"x": [1, 2]}, map_over="x")] == [">3", ">6"]


def test_a_bound_input_can_be_mapped_over():
    @node(output_name="scaled")
    def scale(value: int, factor: int) -> int:
        return value * factor

    bound = Pipeline([scale]).bind(value=[1, 2, 3], factor=10)
    expected = [{"scaled": 10}, {"scaled": 20}, {"scaled": 30}]
    assert bound.map(map_over="value") == expected
    assert bound.map(inputs={}, map_over="value") == expected
    assert list(bound.imap(map_over="value")) == list(enumerate(expected))
    # a value passed to map still wins over the bound one
    assert bound.map(inputs={"value": [5]}, map_over="value") == [{"scaled": 50}]


def test_a_bound_mapped_input_with_a_cache_keys_each_item():
    calls = []

    @node(output_name="scaled")
    def scale(value: int, factor: int) -> int:
        calls.append(value)
        return value * factor

    bound = Pipeline([scale], cache=MemoryCache()).bind(value=[1, 2], factor=10)
    assert bound.map(map_over="value") == [{"scaled": 10}, {"scaled": 20}]
    assert bound.bind(value=[1, 2, 3]).map(map_over="value")[-1] == {"scaled": 30}
    assert calls == [1, 2, 3]
