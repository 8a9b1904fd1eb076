"""Defaults of optional inputs nobody provides are bound into the step when the plan compiles.

They never enter the values dict, yet every way a node can be called gets them: plain, in the
middle of the signature, keyword-only, ``async def``, batch and batch-only nodes, under every
executor; callbacks and error notes show them by name; the cache keys them like inputs.
"""

from __future__ import annotations

import asyncio

import pytest

from hypernodes import (
    DiskCache,
    HypernodesEngine,
    MemoryCache,
    Pipeline,
    PipelineCallback,
    node,
)
from hypernodes.cache import CacheWarning


@node(output_name="out")
def middle(x: int, a: int = 10, b: int = 100) -> tuple:
    return (x, a, b)


@node(output_name="out")
def keyword(x: int, *, scale: int = 2, shift: int = 5) -> int:
    return x * scale + shift


@node(output_name="out")
async def awaited(x: int, pause: float = 0.0, plus: int = 7) -> int:
    await asyncio.sleep(pause)
    return x + plus


def test_a_default_before_a_provided_input_is_put_in_its_place():
    pipeline = Pipeline([middle])
    assert pipeline.run({"x": 1, "b": 2}) == {"out": (1, 10, 2)}
    assert pipeline.run({"x": 1, "a": 3}) == {"out": (1, 3, 100)}
    assert pipeline.run({"x": 1}) == {"out": (1, 10, 100)}
    rows = pipeline.map({"x": [1, 2], "b": 0}, map_over="x")
    assert rows == [{"out": (1, 10, 0)}, {"out": (2, 10, 0)}]


def test_keyword_only_defaults():
    pipeline = Pipeline([keyword])
    assert pipeline.run({"x": 1}) == {"out": 7}
    assert pipeline.run({"x": 1, "shift": 0}) == {"out": 2}


@pytest.mark.parametrize("map_executor", ["sequential", "threaded", "async"])
def test_async_node_defaults(map_executor):
    with HypernodesEngine(map_executor=map_executor) as engine:
        pipeline = Pipeline([awaited], engine=engine)
        assert pipeline.map({"x": [1, 2]}, map_over="x") == [{"out": 8}, {"out": 9}]
        assert pipeline.map({"x": [1], "plus": 0}, map_over="x") == [{"out": 1}]


def test_batch_nodes_get_a_default_once_per_item():
    seen: list = []

    def per_item(x: int, k: int = 4) -> int:
        return x + k

    def per_batch(x: list, k: list) -> list:
        seen.append(list(k))
        return [a + b for a, b in zip(x, k)]

    dual = node(output_name="y", batch=per_batch)(per_item)

    @node(output_name="y", batch=True)
    def only_batch(x: list, k: list = None) -> list:  # noqa: RUF013 - a batch gets lists
        seen.append(list(k))
        return [a + b for a, b in zip(x, k)]

    for item in (dual, only_batch):
        seen.clear()
        pipeline = Pipeline([item])
        expected = [{"y": x + (4 if item is dual else 0)} for x in range(3)]
        if item is only_batch:  # its default is None: give the batch function a number
            expected = [{"y": x + 1} for x in range(3)]
            rows = pipeline.map({"x": range(3), "k": 1}, map_over="x")
        else:
            rows = pipeline.map({"x": range(3)}, map_over="x")
        assert rows == expected
        if item is dual:
            assert seen == [[4, 4, 4]]  # the default, once per item of the batch


def test_a_batch_only_node_run_alone_gets_its_default_as_a_list():
    @node(output_name="y", batch=True)
    def tagged(x: list, tag: str = "t") -> list:
        assert tag == ["t"] * len(x), tag
        return [f"{tag[0]}{v}" for v in x]

    assert Pipeline([tagged]).run({"x": 1}) == {"y": "t1"}


def test_callbacks_see_defaults_by_name_in_signature_order():
    seen: list = []

    class Inputs(PipelineCallback):
        def on_node_start(self, *, node, inputs, context):
            seen.append(list(inputs.items()))

    Pipeline([middle], callbacks=[Inputs()]).run({"x": 1, "b": 2})
    assert seen == [[("x", 1), ("a", 10), ("b", 2)]]


def test_an_error_note_shows_the_default_it_was_called_with():
    @node(output_name="y")
    def fragile(x: int, limit: int = 3) -> int:
        if x > limit:
            raise ValueError("too big")
        return x

    with pytest.raises(ValueError, match="too big") as info:
        Pipeline([fragile]).map({"x": [1, 5]}, map_over="x")
    assert any("inputs: x=5, limit=3" in note for note in info.value.__notes__)


def _scaler(default: int):
    def scale(x: int, factor: int = default) -> int:
        CALLS.append((x, factor))
        return x * factor

    return node(output_name="y")(scale)


CALLS: list = []


def test_the_cache_keys_a_default_like_an_input(tmp_path):
    cache = DiskCache(tmp_path / "c")
    CALLS.clear()
    assert Pipeline([_scaler(2)], cache=cache).map({"x": [1, 2]}, map_over="x") == [
        {"y": 2},
        {"y": 4},
    ]
    assert Pipeline([_scaler(2)], cache=cache).map({"x": [1, 2]}, map_over="x")  # all hits
    assert CALLS == [(1, 2), (2, 2)]
    rows = Pipeline([_scaler(3)], cache=cache).map({"x": [1, 2]}, map_over="x")
    assert rows == [{"y": 3}, {"y": 6}]  # another default: another key
    assert CALLS[2:] == [(1, 3), (2, 3)]
    # passing the default's value explicitly is the same computation: a hit
    CALLS.clear()
    assert Pipeline([_scaler(3)], cache=cache).map({"x": [1], "factor": 3}, map_over="x") == [
        {"y": 3}
    ]
    assert CALLS == []


def test_a_default_without_a_deterministic_hash_runs_uncached_with_a_warning():
    class Opaque:
        __slots__ = ()  # no state to hash

    @node(output_name="y")
    def uses(x: int, thing: Opaque = Opaque()) -> int:  # noqa: B008 - the point of the test
        CALLS.append(x)
        return x

    CALLS.clear()
    cache = MemoryCache()
    with pytest.warns(CacheWarning, match="'uses' runs uncached: its input 'thing'"):
        for _ in range(2):
            assert Pipeline([uses], cache=cache).run({"x": 1}) == {"y": 1}
    assert CALLS == [1, 1]
