"""DaftEngine reports the same callback events and the same cache hits as the local engine,
with the plan as one UDF and split into stages by a node with resources."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("daft", reason="DaftEngine needs daft (the dev extra installs it)")

from recorder import Recorder

from hypernodes import DiskCache, HypernodesEngine, MemoryCache, Pipeline, node
from hypernodes.engines import DaftEngine

pytestmark = pytest.mark.timeout(300)


@node(output_name="left")
def left(x: int) -> int:
    return x + 1


@node(output_name="right")
async def right(x: int) -> int:
    await asyncio.sleep(0)
    return x * 10


@node(output_name="right", resources={"num_cpus": 1})
async def right_on_its_own(x: int) -> int:
    await asyncio.sleep(0)
    return x * 10


@node(output_name="parts")
def parts(left: int, right: int) -> list[int]:
    return [left, right]


@node(output_name="scaled")
def scale(part: int) -> int:
    if part == 13:
        raise ValueError("thirteen")
    return part * 3


each = Pipeline([scale], name="scale").as_node(
    input_mapping={"parts": "part"},
    output_mapping={"scaled": "scaled_parts"},
    map_over="parts",
    name="each",
)


@node(output_name="total")
def total(scaled_parts: list[int]) -> int:
    return sum(scaled_parts)


SHAPES = {
    "one stage": [left, right, parts, each, total],
    "three stages": [left, right_on_its_own, parts, each, total],
}
XS = [1, 2, 3, 4, 5]
EXPECTED = [{"total": 3 * (x + 1 + 10 * x)} for x in XS]


def build(nodes, engine=None, callbacks=None, cache=None) -> Pipeline:
    return Pipeline(nodes, engine=engine, callbacks=callbacks, cache=cache, name="diamond")


def reference(nodes, **options) -> Recorder:
    rec = Recorder()
    build(nodes, None, [rec]).map({"x": XS}, map_over="x", **options)
    return rec


@pytest.fixture(scope="module")
def engine():
    with DaftEngine(batch_size=2) as made:  # several batches: events come from each
        yield made


@pytest.mark.parametrize("shape", SHAPES)
def test_map_events_match_the_local_engine(engine, shape):
    nodes = SHAPES[shape]
    rec = Recorder()
    assert build(nodes, engine, [rec]).map({"x": XS}, map_over="x", output_name="total") == EXPECTED
    assert rec.multiset() == reference(nodes, output_name="total").multiset()
    assert rec.overlaps == 0
    items = [e[3] for e in rec.events if e[0] == "on_map_item_end" and e[1] == ("diamond",)]
    assert items == list(range(len(XS)))  # once per item, replayed in item order
    for index in range(len(XS)):
        mine = [(e[0], e[3]) for e in rec.events if e[2][:1] == (index,) and e[1] == ("diamond",)]
        assert mine[0] == ("on_map_item_start", index) and mine[-1] == ("on_map_item_end", index)
        assert mine.index(("on_node_end", "left")) < mine.index(("on_node_start", "parts"))
        right_end = ("on_node_end", nodes[1].name)
        assert mine.index(right_end) < mine.index(("on_node_start", "parts"))


@pytest.mark.parametrize("shape", SHAPES)
def test_run_events_match_the_local_engine(engine, shape):
    nodes = SHAPES[shape]
    rec, ref = Recorder(), Recorder()
    assert build(nodes, engine, [rec]).run({"x": 2}) == build(nodes, None, [ref]).run({"x": 2})
    assert rec.multiset() == ref.multiset()
    assert "on_map_item_start" not in [e[0] for e in rec.events if e[1] == ("diamond",)]


@pytest.mark.parametrize("shape", SHAPES)
def test_events_of_failing_items_match_with_on_error_continue(engine, shape):
    nodes = SHAPES[shape]
    rec = Recorder()
    xs = [1, 12, 2]  # x=12: left is 13, which the nested map's scale refuses
    rows = build(nodes, engine, [rec]).map({"x": xs}, map_over="x", on_error="continue")
    ref = Recorder()
    expected = build(nodes, None, [ref]).map({"x": xs}, map_over="x", on_error="continue")
    assert [row["total"] for row in rows[::2]] == [row["total"] for row in expected[::2]]
    assert type(rows[1]["total"]).__name__ == "ItemError"
    assert rec.multiset() == ref.multiset()


@pytest.mark.parametrize("shape", SHAPES)
def test_a_raised_error_replays_the_events_up_to_it(engine, shape):
    nodes = SHAPES[shape]
    rec, ref = Recorder(), Recorder()
    xs = [1, 2, 12, 3, 4]
    with pytest.raises(ValueError, match="thirteen") as info:
        build(nodes, engine, [rec]).map({"x": xs}, map_over="x")
    with pytest.raises(ValueError):
        build(nodes, None, [ref]).map({"x": xs}, map_over="x")
    assert info.value.__notes__ == [
        "hypernodes: raised by node 'scale' of pipeline diamond[item 2] > each[item 0]; inputs: part=13"
    ]
    assert rec.multiset() == ref.multiset()


def test_disk_cache_written_by_daft_is_all_hits_for_the_local_engine(engine, tmp_path):
    nodes = SHAPES["one stage"]
    cache = DiskCache(tmp_path / "cache")
    result = build(nodes, engine, cache=cache).map({"x": XS}, map_over="x", output_name="total")
    assert result == EXPECTED
    rec = Recorder()
    local = build(nodes, HypernodesEngine(), [rec], cache)
    assert local.map({"x": XS}, map_over="x", output_name="total") == EXPECTED
    assert "on_node_end" not in rec.hooks()
    cached = [e for e in rec.events if e[0] == "on_map_item_cached" and e[1] == ("diamond",)]
    assert len(cached) == len(XS)


def test_stages_cache_their_own_outputs(engine, tmp_path):
    nodes = SHAPES["three stages"]
    cache = DiskCache(tmp_path / "cache")
    build(nodes, engine, cache=cache).map({"x": XS}, map_over="x", output_name="total")
    rec = Recorder()
    warm = build(nodes, engine, [rec], cache).map({"x": XS}, map_over="x", output_name="total")
    assert warm == EXPECTED
    assert "on_node_end" not in rec.hooks()
    cached = [e for e in rec.events if e[0] == "on_map_item_cached" and e[1] == ("diamond",)]
    assert len(cached) == len(XS)
    # The stages before the resource node read only inputs: the local engine shares their
    # entries.  Later stages are keyed by the values they receive (see docs/daft.md).
    rec = Recorder()
    build(nodes, HypernodesEngine(), [rec], cache).map({"x": XS}, map_over="x")
    cached = {e[3] for e in rec.events if e[0] == "on_node_cached" and e[1] == ("diamond",)}
    assert {"left", "right_on_its_own"} <= cached


def test_disk_cache_written_by_the_local_engine_is_all_hits_under_daft(engine, tmp_path):
    nodes = SHAPES["one stage"]
    cache = DiskCache(tmp_path / "cache")
    build(nodes, HypernodesEngine(), cache=cache).map({"x": XS}, map_over="x", output_name="total")
    rec = Recorder()
    result = build(nodes, engine, [rec], cache).map({"x": XS}, map_over="x", output_name="total")
    assert result == EXPECTED
    assert "on_node_start" not in rec.hooks() and "on_node_end" not in rec.hooks()
    cached = [e for e in rec.events if e[0] == "on_map_item_cached" and e[1] == ("diamond",)]
    assert len(cached) == len(XS)
    assert rec.multiset() == reference_warm(nodes, cache).multiset()


def reference_warm(nodes, cache) -> Recorder:
    rec = Recorder()
    build(nodes, None, [rec], cache).map({"x": XS}, map_over="x", output_name="total")
    return rec


@pytest.mark.parametrize("shape", SHAPES)
def test_memory_cache_is_filled_through_the_relay(engine, shape):
    nodes = SHAPES[shape]
    cache = MemoryCache()
    assert build(nodes, engine, cache=cache).map({"x": XS}, map_over="x") is not None
    assert len(cache) > 0
    rec = Recorder()
    build(nodes, engine, [rec], cache).map({"x": XS}, map_over="x")
    assert "on_node_end" not in rec.hooks()
    items = [e for e in rec.events if e[0] == "on_map_item_cached" and e[1] == ("diamond",)]
    assert len(items) == len(XS)  # one per item, even when the plan runs as three stages
