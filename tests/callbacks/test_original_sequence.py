"""The original HyperNodes' map item sequence for callbacks written its way: an item the cache
serves whole gets ``on_map_item_cached`` instead of start/end.  Our keyword hooks keep theirs
(start, cached, end), and a nested step served whole from the cache gets ``on_node_cached``."""

from __future__ import annotations

import pytest

from hypernodes import HypernodesEngine, MemoryCache, Pipeline, PipelineCallback, node


@node(output_name="y")
def inc(x: int) -> int:
    return x + 1


class Original(PipelineCallback):
    """Positional hooks, the original way."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def on_map_item_start(self, item_index, ctx):
        self.events.append(("start", item_index))

    def on_map_item_end(self, item_index, duration, ctx):
        self.events.append(("end", item_index))

    def on_map_item_cached(self, item_index, signature, ctx):
        self.events.append(("cached", item_index))

    def on_node_start(self, node_id, inputs, ctx):
        self.events.append(("node", node_id))


class Ours(PipelineCallback):
    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def on_map_item_start(self, *, index, **kw):
        self.events.append(("start", index))

    def on_map_item_end(self, *, index, **kw):
        self.events.append(("end", index))

    def on_map_item_cached(self, *, index, **kw):
        self.events.append(("cached", index))


class OnlyStarts(PipelineCallback):
    """A progress counter the original way that overrides start alone."""

    def __init__(self) -> None:
        self.started: list[int] = []

    def on_map_item_start(self, item_index, ctx):
        self.started.append(item_index)


class ChosenOriginal(Ours):
    """Keyword hooks that ask for the original sequence explicitly."""

    original_item_events = True


@pytest.mark.parametrize("executor", ["sequential", "threaded", "async", "parallel"])
def test_warm_items_reach_original_hooks_as_cached_only(executor):
    original, ours = Original(), Ours()
    engine = HypernodesEngine(map_executor=executor, max_workers=2)
    pipeline = Pipeline([inc], cache=MemoryCache(), callbacks=[original, ours], engine=engine)
    try:
        pipeline.map({"x": [1, 2]}, map_over="x")
        original.events.clear()
        ours.events.clear()
        assert pipeline.map({"x": [1, 2, 3]}, map_over="x") == [{"y": 2}, {"y": 3}, {"y": 4}]
    finally:
        engine.shutdown()
    assert sorted(original.events, key=repr) == sorted(
        [("cached", 0), ("cached", 1), ("start", 2), ("node", "inc"), ("end", 2)], key=repr
    )
    assert original.events.index(("start", 2)) < original.events.index(("node", "inc"))
    # ours keep start, cached, end for every cache-served item
    assert sorted(ours.events, key=repr) == sorted(
        [
            ("start", 0),
            ("cached", 0),
            ("end", 0),
            ("start", 1),
            ("cached", 1),
            ("end", 1),
            ("start", 2),
            ("end", 2),
        ],
        key=repr,
    )


def test_a_start_only_counter_counts_computed_items():
    counter = OnlyStarts()
    pipeline = Pipeline([inc], cache=MemoryCache(), callbacks=[counter])
    pipeline.map({"x": [1, 2]}, map_over="x")
    pipeline.map({"x": [1, 2, 3, 4]}, map_over="x")
    assert counter.started == [0, 1, 2, 3]


def test_original_item_events_attribute_chooses_the_sequence():
    chosen = ChosenOriginal()
    pipeline = Pipeline([inc], cache=MemoryCache(), callbacks=[chosen])
    pipeline.map({"x": [1]}, map_over="x")
    chosen.events.clear()
    pipeline.map({"x": [1]}, map_over="x")
    assert chosen.events == [("cached", 0)]


def test_nested_cached_items_inside_a_cached_item_are_not_started():
    inner = Pipeline([inc], name="inner")
    step = inner.as_node(input_mapping={"xs": "x"}, output_mapping={"y": "ys"}, map_over="xs")
    original = Original()
    pipeline = Pipeline([step], cache=MemoryCache(), callbacks=[original], name="outer")
    items = {"xs": [[1, 2], [3]]}
    pipeline.map(items, map_over="xs")
    original.events.clear()
    assert pipeline.map(items, map_over="xs") == [{"ys": [2, 3]}, {"ys": [4]}]
    # inner items 0 and 1, then outer item 0; inner item 0, then outer item 1: no start or end
    assert original.events == [
        ("cached", 0),
        ("cached", 1),
        ("cached", 0),
        ("cached", 0),
        ("cached", 1),
    ]


class Cached(PipelineCallback):
    def __init__(self) -> None:
        self.cached: list[tuple[str, tuple[str, ...]]] = []

    def on_node_cached(self, *, node, context, **kw):
        self.cached.append((node, context.path))


@pytest.mark.parametrize("mapped", [True, False])
def test_a_nested_step_served_whole_gets_on_node_cached(mapped):
    inner = Pipeline([inc], name="inner")
    if mapped:
        step = inner.as_node(
            input_mapping={"xs": "x"}, output_mapping={"y": "ys"}, map_over="xs", name="step"
        )
        inputs = {"xs": [1, 2]}
    else:
        step = inner.as_node(name="step")
        inputs = {"x": 1}
    seen = Cached()
    pipeline = Pipeline([step], cache=MemoryCache(), callbacks=[seen], name="outer")
    pipeline.run(inputs)
    assert seen.cached == []  # cold: the step computed
    pipeline.run(inputs)
    assert ("step", ("outer",)) in seen.cached
    assert ("inc", ("outer", "step")) in seen.cached


def test_a_nested_step_that_computes_gets_no_on_node_cached():
    inner = Pipeline([inc], name="inner")
    step = inner.as_node(
        input_mapping={"xs": "x"}, output_mapping={"y": "ys"}, map_over="xs", name="step"
    )
    seen = Cached()
    pipeline = Pipeline([step], cache=MemoryCache(), callbacks=[seen], name="outer")
    pipeline.run({"xs": [1, 2]})
    pipeline.run({"xs": [1, 2, 3]})  # item 3 is new: the step computes
    assert ("step", ("outer",)) not in seen.cached
    assert seen.cached.count(("inc", ("outer", "step"))) == 2
