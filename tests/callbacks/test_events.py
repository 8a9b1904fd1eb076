"""The event stream: which hooks fire, in what order, with which context."""

from __future__ import annotations

import warnings

import pytest
from recorder import Recorder

from hypernodes import MemoryCache, Pipeline, PipelineCallback, node
from hypernodes.observe.callbacks import CallbackWarning


@node(output_name="a")
def make_a(x: int) -> int:
    return x + 1


@node(output_name="b")
def make_b(a: int) -> int:
    return a * 2


def test_run_events_in_order():
    rec = Recorder()
    result = Pipeline([make_a, make_b], callbacks=[rec], name="p").run({"x": 1})
    assert result == {"a": 2, "b": 4}
    top = (("p",), (None,))
    assert rec.events == [
        ("on_pipeline_start", *top, "p"),
        ("on_node_start", *top, "make_a"),
        ("on_node_end", *top, "make_a"),
        ("on_node_start", *top, "make_b"),
        ("on_node_end", *top, "make_b"),
        ("on_pipeline_end", *top, "p"),
    ]


def test_map_events_carry_item_index():
    rec = Recorder()
    Pipeline([make_a], callbacks=[rec], name="p").map({"x": [5, 6]}, map_over="x")
    assert rec.events == [
        ("on_map_start", ("p",), (None,), 2),
        ("on_map_item_start", ("p",), (0,), 0),
        ("on_node_start", ("p",), (0,), "make_a"),
        ("on_node_end", ("p",), (0,), "make_a"),
        ("on_map_item_end", ("p",), (0,), 0),
        ("on_map_item_start", ("p",), (1,), 1),
        ("on_node_start", ("p",), (1,), "make_a"),
        ("on_node_end", ("p",), (1,), "make_a"),
        ("on_map_item_end", ("p",), (1,), 1),
        ("on_map_end", ("p",), (None,), 2),
    ]


def test_nested_pipeline_events():
    rec = Recorder()
    inner = Pipeline([make_b], name="inner")
    outer = Pipeline([make_a, inner.as_node(name="inner")], callbacks=[rec], name="outer")
    outer.run({"x": 1})
    nested = (("outer", "inner"), (None, None))
    assert rec.events[3:8] == [
        ("on_nested_pipeline_start", ("outer",), (None,), "inner"),
        ("on_pipeline_start", *nested, "inner"),
        ("on_node_start", *nested, "make_b"),
        ("on_node_end", *nested, "make_b"),
        ("on_pipeline_end", *nested, "inner"),
    ]
    assert rec.events[8] == ("on_nested_pipeline_end", ("outer",), (None,), "inner")


def test_nested_map_events():
    rec = Recorder()
    inner = Pipeline([make_b], name="inner")
    outer = Pipeline(
        [
            inner.as_node(
                input_mapping={"xs": "a"}, output_mapping={"b": "bs"}, map_over="xs", name="each"
            )
        ],
        callbacks=[rec],
        name="outer",
    )
    assert outer.run({"xs": [1, 2]}) == {"bs": [2, 4]}
    hooks = [(h, path, items) for h, path, items, _ in rec.events]
    assert ("on_map_start", ("outer", "each"), (None, None)) in hooks
    assert ("on_node_end", ("outer", "each"), (None, 1)) in hooks
    assert rec.hooks().count("on_map_item_end") == 2


def test_cached_run_emits_cached_events():
    cache = MemoryCache()
    pipeline = Pipeline([make_a, make_b], cache=cache, name="p")
    pipeline.map({"x": [1, 2]}, map_over="x")
    rec = Recorder()
    pipeline.with_callbacks([rec]).map({"x": [1, 2, 3]}, map_over="x")
    cached = [e for e in rec.events if e[0] == "on_node_cached"]
    computed = [e for e in rec.events if e[0] == "on_node_end"]
    assert {(e[2], e[3]) for e in cached} == {
        ((0,), "make_a"),
        ((0,), "make_b"),
        ((1,), "make_a"),
        ((1,), "make_b"),
    }
    assert {(e[2], e[3]) for e in computed} == {((2,), "make_a"), ((2,), "make_b")}
    assert [e[3] for e in rec.events if e[0] == "on_map_item_cached"] == [0, 1]


def test_error_emits_on_error_and_still_closes():
    @node(output_name="a")
    def fail(x):
        raise ValueError("bad")

    rec = Recorder()
    with pytest.raises(ValueError):
        Pipeline([fail], callbacks=[rec], name="p").map({"x": [1]}, map_over="x")
    assert rec.hooks() == [
        "on_map_start",
        "on_map_item_start",
        "on_node_start",
        "on_error",
        "on_map_item_end",
        "on_map_end",
    ]
    assert rec.events[3][3] == ("fail", "ValueError")


def test_a_raising_callback_warns_once_is_disabled_and_the_run_goes_on():
    class Broken(PipelineCallback):
        calls = 0

        def on_node_end(self, **kwargs):
            Broken.calls += 1
            raise RuntimeError("callback bug")

    rec = Recorder()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = Pipeline([make_a, make_b], callbacks=[Broken(), rec]).run({"x": 1})
    assert result == {"a": 2, "b": 4}
    assert Broken.calls == 1
    assert [w.category for w in caught] == [CallbackWarning]
    assert "Broken.on_node_end raised RuntimeError: callback bug" in str(caught[0].message)
    assert rec.hooks().count("on_node_end") == 2  # the other callback still sees everything


def test_context_state_is_shared_within_one_call():
    class Counting(PipelineCallback):
        def on_node_end(self, *, node, outputs, duration, context):
            context.state[node] = context.state.get(node, 0) + 1

        def on_map_end(self, *, pipeline, total, duration, context):
            self.final = dict(context.state)

    counting = Counting()
    Pipeline([make_a, make_b], callbacks=[counting]).map({"x": [1, 2, 3]}, map_over="x")
    assert counting.final == {"make_a": 3, "make_b": 3}


def test_no_callbacks_means_no_dispatcher():
    pipeline = Pipeline([make_a])
    assert pipeline._root_context().dispatcher is None
    assert pipeline.with_callbacks([Recorder()])._root_context().dispatcher is not None
