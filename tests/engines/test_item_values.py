"""An item's values dict holds the user's names only: inputs and outputs.

The machinery's per-item state (the cache's item state, the map call's code digests and shared
input tokens, the "ran" flag, failures) lives in the item's context, and defaults of optional
inputs are bound into the steps when the plan is compiled.  So nothing has to be stripped before
an item travels to a worker, and what travels is what the user passed.
"""

from __future__ import annotations

import pickle

import pytest

from hypernodes import DiskCache, HypernodesEngine, MemoryCache, Pipeline, PipelineCallback, node
from hypernodes.cache.item import prepare_call
from hypernodes.execution import remote
from hypernodes.execution.context import RunContext

pytestmark = pytest.mark.timeout(120)


@node(output_name="y")
def scaled(x: int, factor: int = 3) -> int:
    return x * factor


@node(output_name="z")
def shifted(y: int, offset: int = 1) -> int:
    return y + offset


class Nodes(PipelineCallback):
    """Keeps every ``on_node_start`` input dict."""

    def __init__(self) -> None:
        self.inputs: list[dict] = []

    def on_node_start(self, *, node, inputs, context):
        self.inputs.append(dict(inputs))


def recording_extract(plan, seen: list[frozenset]) -> None:
    """Record the names in each item's values when its row is taken out of them."""
    extract = plan.extract

    def record(values):
        seen.append(frozenset(values))
        return extract(values)

    plan.extract = record


@pytest.mark.parametrize("map_executor", ["sequential", "threaded", "async"])
@pytest.mark.parametrize("node_executor", ["sequential", "threaded"])
@pytest.mark.parametrize("cache_kind", [None, "memory", "disk"])
def test_values_hold_only_inputs_and_outputs(tmp_path, map_executor, node_executor, cache_kind):
    cache = {None: None, "memory": MemoryCache(), "disk": DiskCache(tmp_path / "c")}[cache_kind]
    nodes = Nodes()
    with HypernodesEngine(map_executor=map_executor, node_executor=node_executor) as engine:
        pipeline = Pipeline([scaled, shifted], engine=engine, cache=cache, callbacks=[nodes])
        plan = pipeline.plan(None, frozenset({"x", "offset"}))
        seen: list[frozenset] = []
        recording_extract(plan, seen)
        for _ in range(2):  # cold, then (with a cache) warm
            rows = pipeline.map({"x": range(20), "offset": 10}, map_over="x")
            assert rows == [{"y": 3 * x, "z": 3 * x + 10} for x in range(20)]
    assert len(seen) == 40
    assert set(seen) == {frozenset({"x", "offset", "y", "z"})}  # no `factor`, nothing private
    # the default still reaches the node, and callbacks see it by its name
    assert {"x": 0, "factor": 3} in nodes.inputs


def test_items_sent_to_workers_hold_only_what_the_user_passed(tmp_path, monkeypatch):
    sent: list[tuple] = []
    dump = remote.PlanSpec.dump_items

    def recording(self, chunk, start, tokens=None):
        sent.append((chunk, tokens))
        return dump(self, chunk, start, tokens)

    monkeypatch.setattr(remote.PlanSpec, "dump_items", recording)
    cache = DiskCache(tmp_path / "c")
    with HypernodesEngine(map_executor="parallel", max_workers=2) as engine:
        pipeline = Pipeline([scaled, shifted], engine=engine, cache=cache)
        rows = pipeline.map({"x": range(12), "offset": 5}, map_over="x")
    assert rows == [{"y": 3 * x, "z": 3 * x + 5} for x in range(12)]
    assert sent
    for chunk, tokens in sent:
        assert {frozenset(values) for values in chunk} == {frozenset({"x", "offset"})}
        assert set(tokens) == {"offset"}  # the shared input's token, computed once here
    # what the workers wrote is a hit here: the same keys on both sides
    calls = Nodes()
    fresh = Pipeline([scaled, shifted], cache=DiskCache(tmp_path / "c"), callbacks=[calls])
    assert fresh.map({"x": range(12), "offset": 5}, map_over="x") == rows
    assert calls.inputs == []


class Counted:
    """A shared input whose cache token counts how often it is computed."""

    hashed = 0

    def __init__(self, value: int) -> None:
        self.value = value

    def __cache_key__(self) -> int:
        Counted.hashed += 1
        return self.value


@node(output_name="w")
def weighted(x: int, weight: Counted) -> int:
    return x * weight.value


def test_a_worker_takes_the_callers_tokens_for_shared_inputs_and_its_digests():
    cache = MemoryCache()
    pipeline = Pipeline([weighted], cache=cache, name="p")
    plan = pipeline.plan(None, frozenset({"x", "weight"}))
    weight = Counted(7)
    Counted.hashed = 0
    ctx = RunContext(HypernodesEngine(), cache, path=("p",), items=(None,))
    ctx = prepare_call(plan, {"weight": weight}, ctx)
    assert Counted.hashed == 1  # the map call hashes the shared input once
    spec = remote.PlanSpec.for_call(plan, ctx, None, "raise", "a test worker")
    assert remote.compiled(spec.token, spec.blob).statics == ctx.call.statics
    items = [{"x": x, "weight": weight} for x in range(6)]
    blob = spec.dump_items(items, 0, remote.tokens_of(ctx))
    reply = pickle.loads(remote.run_chunk(spec.token, spec.blob, blob, 0))
    assert spec.receive(reply, ctx) == [{"w": 7 * x} for x in range(6)]
    assert Counted.hashed == 1  # the worker took the caller's token: no hashing per item
    # and the entries it wrote are the caller's keys: a local map of the same items only loads
    assert len(cache) == 6
    assert pipeline.map({"x": range(6), "weight": weight}, map_over="x") == reply.rows
    assert len(cache) == 6

    # Without tokens (an engine that has none) the worker hashes the shared input itself, once
    # per chunk (it is the same object in every item of the chunk), not once per item.
    Counted.hashed = 0
    blob = spec.dump_items(items, 0, None)
    pickle.loads(remote.run_chunk(spec.token, spec.blob, blob, 0))
    assert 1 <= Counted.hashed <= len(items)


def test_the_spec_follows_the_code_digests_of_each_call():
    cache = MemoryCache()
    pipeline = Pipeline([weighted], cache=cache, name="p")
    plan = pipeline.plan(None, frozenset({"x", "weight"}))
    base = RunContext(HypernodesEngine(), cache, path=("p",), items=(None,))
    first = prepare_call(plan, {"weight": Counted(1)}, base)
    again = prepare_call(plan, {"weight": Counted(2)}, base)
    spec = remote.PlanSpec.for_call(plan, first, None, "raise", "w")
    assert remote.PlanSpec.for_call(plan, again, None, "raise", "w") is spec  # same code
    changed = prepare_call(plan, {"weight": Counted(1)}, base)
    changed.call.statics = (b"\x01" * 16,)  # as if the node's code had changed meanwhile
    assert remote.PlanSpec.for_call(plan, changed, None, "raise", "w") is not spec
