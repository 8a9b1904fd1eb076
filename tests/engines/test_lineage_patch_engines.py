"""A subpipeline and a patched pipeline run the same under every map executor and Dask."""

from __future__ import annotations

import pytest
from engine_cases import add_one, double, join, left, minus_three, right
from engine_kinds import LOCAL_AND_DASK

from hypernodes import MemoryCache, Pipeline
from hypernodes.testing import patch

pytestmark = pytest.mark.timeout(120)

KINDS = LOCAL_AND_DASK
XS = list(range(6))


def negative_double(a: int) -> int:
    """Stands in for engine_cases.double (importable, so worker processes find it)."""
    return -2 * a


def fixed_right(x: int, offset: int) -> int:
    return 1000 + offset


@pytest.mark.parametrize("kind", KINDS)
def test_subpipeline_maps_on_every_engine(engine, kind):
    pipeline = Pipeline([add_one, double, minus_three, left, right, join], engine=engine)
    sub = pipeline.subpipeline(inputs="b", outputs="c")
    assert [n.name for n in sub.nodes] == ["minus_three"]
    assert sub.map({"b": XS}, map_over="b") == [{"c": b - 3} for b in XS]
    upstream = pipeline.subpipeline(outputs="joined")
    rows = upstream.map({"x": XS}, map_over="x", output_name="joined")
    assert rows == [{"joined": (x * 10, x + 5)} for x in XS]


@pytest.mark.parametrize("kind", KINDS)
def test_patched_node_runs_on_every_engine(engine, kind):
    pipeline = Pipeline([add_one, double, minus_three], engine=engine, cache=MemoryCache())
    patched = pipeline.with_node_function("double", negative_double)
    assert patched.map({"x": XS}, map_over="x", output_name="c") == [
        {"c": -2 * (x + 1) - 3} for x in XS
    ]
    # the cache keeps the real and the patched node apart
    assert pipeline.map({"x": XS}, map_over="x", output_name="c") == [
        {"c": 2 * (x + 1) - 3} for x in XS
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_patch_of_a_nested_pipeline_reaches_workers(engine, kind):
    inner = Pipeline([left, right, join], name="inner")
    outer = Pipeline([inner.as_node(name="inner")], engine=engine, name="outer")
    before = outer.map({"x": XS, "offset": 1}, map_over="x", output_name="joined")
    assert before == [{"joined": (x * 10, x + 1)} for x in XS]  # workers now hold the plan
    with patch(inner, "right", fixed_right):
        rows = outer.map({"x": XS, "offset": 1}, map_over="x", output_name="joined")
    assert rows == [{"joined": (x * 10, 1001)} for x in XS]
    rows = outer.map({"x": XS, "offset": 1}, map_over="x", output_name="joined")
    assert rows == [{"joined": (x * 10, x + 1)} for x in XS]
