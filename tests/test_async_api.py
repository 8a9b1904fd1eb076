"""``await pipeline.arun``, ``await pipeline.amap`` and ``async for ... in pipeline.aimap`` share
the caller's event loop: ``async def`` nodes run on it, sync nodes off it."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from hypernodes import HypernodesEngine, ItemError, Pipeline, PipelineCallback, node

pytestmark = pytest.mark.timeout(60)


@node(output_name="fetched")
async def fetch(x: int) -> int:
    await asyncio.sleep(0.05)
    return x


@node(output_name="parsed")
def parse(fetched: int) -> int:
    return fetched * 2


def test_arun_awaits_async_nodes_on_the_callers_loop_and_sync_nodes_off_it():
    threads: dict[str, int] = {}

    @node(output_name="a")
    async def where_async(x: int) -> int:
        threads["async"] = threading.get_ident()
        return x

    @node(output_name="b")
    def where_sync(a: int) -> int:
        threads["sync"] = threading.get_ident()
        return a + 1

    async def main() -> dict:
        threads["caller"] = threading.get_ident()
        return await Pipeline([where_async, where_sync]).arun({"x": 1})

    assert asyncio.run(main()) == {"a": 1, "b": 2}
    assert threads["async"] == threads["caller"] != threads["sync"]


@pytest.mark.parametrize("map_executor", ["sequential", "async", "threaded", "parallel"])
def test_amap_gives_the_rows_of_map(map_executor):
    with HypernodesEngine(map_executor=map_executor, max_workers=2) as engine:
        pipeline = Pipeline([fetch, parse], engine=engine)

        async def main():
            return await pipeline.amap({"x": range(6)}, map_over="x")

        assert asyncio.run(main()) == pipeline.map({"x": range(6)}, map_over="x")


def test_amap_with_the_async_executor_overlaps_items_on_the_callers_loop():
    pipeline = Pipeline([fetch, parse], engine=HypernodesEngine(map_executor="async"))

    async def main():
        start = time.perf_counter()
        rows = await pipeline.amap({"x": range(40)}, map_over="x", return_format="columns")
        return rows, time.perf_counter() - start

    rows, took = asyncio.run(main())
    assert rows == {"fetched": list(range(40)), "parsed": [2 * x for x in range(40)]}
    assert took < 1.0  # 40 x 50 ms one after the other would take 2 s


def test_the_loop_keeps_running_while_amap_works():
    ticks = []

    async def ticker():
        for _ in range(5):
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.01)

    async def main():
        pipeline = Pipeline([fetch, parse], engine=HypernodesEngine(map_executor="async"))
        await asyncio.gather(ticker(), pipeline.amap({"x": range(10)}, map_over="x"))

    asyncio.run(main())
    assert len(ticks) == 5


def test_aimap_streams_rows_and_errors_like_imap():
    @node(output_name="checked")
    def check(parsed: int) -> int:
        if parsed == 6:
            raise ValueError("six")
        return parsed

    pipeline = Pipeline([fetch, parse, check], name="p")

    async def collect(**kw):
        return [pair async for pair in pipeline.aimap({"x": range(5)}, map_over="x", **kw)]

    rows = asyncio.run(collect(on_error="continue"))
    assert [i for i, _ in rows] == [0, 1, 2, 3, 4]
    assert isinstance(rows[3][1]["checked"], ItemError)
    with pytest.raises(ValueError, match="six") as info:
        asyncio.run(collect())
    assert info.value.__notes__ == [
        "hypernodes: raised by node 'check' of pipeline p[item 3]; inputs: parsed=6"
    ]


def test_async_api_reports_callback_events():
    class Seen(PipelineCallback):
        def __init__(self):
            self.hooks = []

        def on_pipeline_start(self, *, pipeline, inputs, context):
            self.hooks.append("pipeline_start")

        def on_node_end(self, *, node, outputs, duration, context):
            self.hooks.append(node)

        def on_map_start(self, *, pipeline, total, context):
            self.hooks.append(("map", total))

    seen = Seen()
    pipeline = Pipeline([fetch, parse], callbacks=[seen])
    asyncio.run(pipeline.arun({"x": 1}))
    asyncio.run(pipeline.amap({"x": [1, 2]}, map_over="x"))
    assert seen.hooks == [
        "pipeline_start",
        "fetch",
        "parse",
        ("map", 2),
        "fetch",
        "parse",
        "fetch",
        "parse",
    ]
