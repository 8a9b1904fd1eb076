"""The same events and the same cache hits under every node_executor x map_executor pair."""

from __future__ import annotations

import asyncio

import pytest
from executor_pairs import PAIRS
from recorder import Recorder

from hypernodes import DiskCache, HypernodesEngine, Pipeline, node


@node(output_name="left")
def left(x: int) -> int:
    return x + 1


@node(output_name="right")
async def right(x: int) -> int:
    await asyncio.sleep(0)
    return x * 10


@node(output_name="parts")
def parts(left: int, right: int) -> list[int]:
    return [left, right]


@node(output_name="scaled")
def scale(part: int) -> int:
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


def build(engine, callbacks=None, cache=None) -> Pipeline:
    return Pipeline(
        [left, right, parts, each, total],
        engine=engine,
        callbacks=callbacks,
        cache=cache,
        name="diamond",
    )


XS = [1, 2, 3, 4]
EXPECTED = [{"total": 3 * (x + 1 + 10 * x)} for x in XS]


def reference_events():
    rec = Recorder()
    build(None, [rec]).map({"x": XS}, map_over="x", output_name="total")
    return rec


@pytest.mark.parametrize("pair", PAIRS, ids=["-".join(p) for p in PAIRS])
def test_events_match_sequential(engines, pair):
    reference = reference_events()
    rec = Recorder()
    result = build(engines[pair], [rec]).map({"x": XS}, map_over="x", output_name="total")
    assert result == EXPECTED
    assert rec.multiset() == reference.multiset()
    assert rec.overlaps == 0  # never two hooks at once
    # within one item, a node starts before it ends and upstream nodes end before downstream start
    for index in range(len(XS)):
        mine = [e for e in rec.events if e[2][:1] == (index,) and e[1] == ("diamond",)]
        names = [(hook, subject) for hook, _, _, subject in mine]
        assert names.index(("on_node_end", "left")) < names.index(("on_node_start", "parts"))
        assert names.index(("on_node_end", "right")) < names.index(("on_node_start", "parts"))
        assert names[0] == ("on_map_item_start", index) and names[-1] == ("on_map_item_end", index)


@pytest.mark.parametrize("pair", PAIRS, ids=["-".join(p) for p in PAIRS])
def test_every_executor_hits_what_another_wrote(engines, pair, tmp_path):
    cache = DiskCache(tmp_path / "cache")
    writer = (
        ("threaded", "parallel")
        if pair != ("threaded", "parallel")
        else ("sequential", "sequential")
    )
    assert (
        build(engines[writer], cache=cache).map({"x": XS}, map_over="x", output_name="total")
        == EXPECTED
    )
    rec = Recorder()
    result = build(engines[pair], [rec], cache).map({"x": XS}, map_over="x", output_name="total")
    assert result == EXPECTED
    hooks = rec.hooks()
    assert "on_node_start" not in hooks and "on_node_end" not in hooks
    cached_items = [e for e in rec.events if e[0] == "on_map_item_cached"]
    assert len([e for e in cached_items if e[1] == ("diamond",)]) == len(XS)
    assert len([e for e in cached_items if e[1] == ("diamond", "each")]) == 2 * len(XS)
    # the nested map's items are cached at their own level too
    assert {e[3] for e in rec.events if e[0] == "on_node_cached"} >= {"total"}


def test_progress_bar_under_a_threaded_map_reaches_50():
    import io
    import re

    from hypernodes.telemetry import ProgressCallback

    out = io.StringIO()
    with HypernodesEngine(map_executor="threaded", node_executor="threaded") as engine:
        pipeline = build(engine, [ProgressCallback(mode="rich", file=out)])
        pipeline.map({"x": list(range(50))}, map_over="x", output_name="total")
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
    final = text[text.rindex("diamond (map)") :]
    assert re.search(r"diamond \(map\)\s.*50/50", final)
    assert final.count("diamond (map)") == 1
    assert re.search(r"each \(map\)\s.*100/100", final)


def test_parallel_events_keep_worker_times():
    from hypernodes.observe.callbacks import PipelineCallback

    class Times(PipelineCallback):
        def __init__(self):
            self.stamps = []

        def on_node_end(self, *, node, outputs, duration, context):
            self.stamps.append(context.timestamp)

    times = Times()
    with HypernodesEngine(map_executor="parallel", max_workers=2) as engine:
        build(engine, [times]).map({"x": XS}, map_over="x", output_name="total")
    assert len(times.stamps) == len(XS) * 4 + 2 * len(XS)  # 4 nodes + 2 nested items per item
    assert all(isinstance(stamp, float) for stamp in times.stamps)  # relayed with their time
