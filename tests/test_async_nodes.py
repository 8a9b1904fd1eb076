"""``async def`` nodes under the sequential engine, also from inside a running event loop."""

from __future__ import annotations

import asyncio

from hypernodes import Pipeline, node


@node(output_name="fetched")
async def fetch(key: str) -> str:
    await asyncio.sleep(0.001)
    return key.upper()


@node(output_name="size")
def size(fetched: str) -> int:
    return len(fetched)


pipeline = Pipeline([fetch, size], name="async")


def test_sequential_run_awaits_async_node():
    assert pipeline.run({"key": "abc"}) == {"fetched": "ABC", "size": 3}


def test_sequential_map_awaits_async_nodes():
    result = pipeline.map({"key": ["a", "bb"]}, map_over="key", output_name="size")
    assert result == [{"size": 1}, {"size": 2}]


def test_run_from_inside_a_running_loop_like_a_notebook_cell():
    async def cell():
        # a notebook cell calls the synchronous API while the kernel's loop is running
        return pipeline.run({"key": "xyz"}), pipeline.map({"key": ["q"]}, map_over="key")

    single, mapped = asyncio.run(cell())
    assert single == {"fetched": "XYZ", "size": 3}
    assert mapped == [{"fetched": "Q", "size": 1}]


def test_async_node_errors_keep_type():
    @node(output_name="y")
    async def broken(x):
        raise LookupError("gone")

    try:
        Pipeline([broken], name="p").run({"x": 1})
    except LookupError as exc:
        assert exc.__notes__ == ["hypernodes: raised by node 'broken' of pipeline p; inputs: x=1"]
    else:  # pragma: no cover - the run must raise
        raise AssertionError("expected LookupError")


def test_async_node_reuses_one_loop_per_thread():
    loops = []

    @node(output_name="y")
    async def record(x):
        loops.append(asyncio.get_running_loop())
        return x

    Pipeline([record]).map({"x": [1, 2, 3]}, map_over="x")
    assert len(loops) == 3 and len({id(loop) for loop in loops}) == 1
