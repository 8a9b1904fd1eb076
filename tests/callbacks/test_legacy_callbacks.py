"""Callbacks written the original HyperNodes way (positional hooks) see the same events as ours,
under every executor; keyword-style overrides may name only what they use."""

from __future__ import annotations

import inspect
import warnings

import pytest
from executor_pairs import IDS, PAIRS
from legacy_callbacks import LegacyRecorder, ShortCached
from recorder import Recorder
from test_conformance import EXPECTED, XS, build

from hypernodes import CallbackContext, DiskCache, MemoryCache, Pipeline, PipelineCallback, node
from hypernodes.exceptions import CallbackSignatureError
from hypernodes.observe.callbacks import HOOKS, CallbackWarning, Dispatcher
from hypernodes.observe.hook_calls import FIELDS


@pytest.mark.parametrize("pair", PAIRS, ids=IDS)
def test_legacy_hooks_get_the_same_events_as_ours(engines, pair, tmp_path):
    cache = DiskCache(tmp_path / "cache")
    for run in ("cold", "warm"):  # the warm run brings the cached events
        ours, legacy = Recorder(), LegacyRecorder()
        pipeline = build(engines[pair], [ours, legacy], cache)
        assert pipeline.map({"x": XS}, map_over="x", output_name="total") == EXPECTED
        # the original sequence: an item the cache serves whole gets on_map_item_cached
        # instead of start/end; every other event is the same as ours
        served = {(e[1], e[2]) for e in ours.events if e[0] == "on_map_item_cached"}
        expected = [
            e
            for e in ours.events
            if not (e[0] in ("on_map_item_start", "on_map_item_end") and (e[1], e[2]) in served)
        ]
        assert bool(served) == (run == "warm")
        assert sorted(legacy.events, key=repr) == sorted(expected, key=repr), run
        assert len(legacy.events) == len(expected) > 0
        assert all(isinstance(d, float) and d >= 0 for d in legacy.durations)
    hooks = {event[0] for event in legacy.events}
    assert {"on_map_item_cached", "on_node_cached", "on_map_start", "on_map_end"} <= hooks


def test_legacy_hooks_get_node_inputs_and_errors():
    @node(output_name="y")
    def fails(x: int) -> int:
        raise ValueError("no")

    ours, legacy = Recorder(), LegacyRecorder()
    with pytest.raises(ValueError, match="no"):
        Pipeline([fails], callbacks=[ours, legacy], name="p").run({"x": 3})
    assert legacy.events == ours.events
    assert ("on_error", ("p",), (None,), ("fails", "ValueError")) in legacy.events
    assert legacy.seen_inputs == [{"x": 3}]


def test_map_item_cached_without_the_signature_argument():
    @node(output_name="y")
    def double(x: int) -> int:
        return 2 * x

    short = ShortCached()
    pipeline = Pipeline([double], cache=MemoryCache(), callbacks=[short])
    pipeline.map({"x": [1, 2]}, map_over="x")
    assert short.cached == []
    pipeline.map({"x": [1, 2, 3]}, map_over="x")
    assert short.cached == [0, 1]


def test_context_get_and_set_share_state_across_events():
    class Counter(PipelineCallback):
        def __init__(self):
            self.counts = []

        def on_node_end(self, node_id, outputs, duration, ctx):
            ctx.set("nodes", ctx.get("nodes", 0) + 1)

        def on_map_end(self, *, pipeline, total, duration, context):  # ours, in the same class
            self.counts.append(context.get("nodes"))

    @node(output_name="y")
    def double(x: int) -> int:
        return 2 * x

    counter = Counter()
    pipeline = Pipeline([double], callbacks=[counter])
    pipeline.map({"x": [1, 2, 3]}, map_over="x")
    pipeline.map({"x": [1, 2]}, map_over="x")
    assert counter.counts == [3, 2]  # state is per top-level call
    context = CallbackContext(("p",), (None,), {})
    assert context.get("missing") is None and context.get("missing", 7) == 7
    context.set("k", [1])
    assert context.get("k") == [1] and context.state == {"k": [1]}


def test_keyword_overrides_may_leave_out_what_they_do_not_use():
    class Some(PipelineCallback):
        def __init__(self):
            self.seen = []

        def on_node_end(self, *, node, context):
            self.seen.append((node, context.pipeline))

        def on_map_item_end(self, index, duration):  # positional-or-keyword, our names
            self.seen.append(index)

    @node(output_name="y")
    def double(x: int) -> int:
        return 2 * x

    some = Some()
    with warnings.catch_warnings():
        warnings.simplefilter("error", CallbackWarning)
        Pipeline([double], callbacks=[some], name="p").map({"x": [1, 2]}, map_over="x")
    assert some.seen == [("double", "p"), 0, ("double", "p"), 1]


def test_a_field_added_later_does_not_break_overrides(monkeypatch):
    """A future event field reaches ``**kwargs`` and is left out for overrides that name theirs."""
    monkeypatch.setitem(FIELDS, "on_node_end", (*FIELDS["on_node_end"], "attempt"))

    class Named(PipelineCallback):
        def __init__(self):
            self.calls = []

        def on_node_end(self, *, node, outputs, duration, context):
            self.calls.append(node)

    class Open(PipelineCallback):
        def __init__(self):
            self.extra = []

        def on_node_end(self, *, node, context, **kwargs):
            self.extra.append(kwargs.get("attempt"))

    named, open_, legacy = Named(), Open(), LegacyRecorder()
    dispatcher = Dispatcher([named, open_, legacy])
    with warnings.catch_warnings():
        warnings.simplefilter("error", CallbackWarning)
        dispatcher.emit(
            "on_node_end",
            node="f",
            outputs={"y": 1},
            duration=0.5,
            context=dispatcher.context(("p",), (None,)),
            attempt=2,
        )
    assert named.calls == ["f"] and open_.extra == [2]
    assert legacy.events == [("on_node_end", ("p",), (None,), "f")]


def test_a_hook_that_fits_neither_style_fails_when_registered():
    class Typo(PipelineCallback):
        def on_node_end(self, *, nod, context):
            pass

    class TooMany(PipelineCallback):
        def on_map_start(self, total_items, ctx, extra, more):
            pass

    class FineOne(PipelineCallback):
        def on_map_start(self, total_items, ctx):
            pass

    @node(output_name="y")
    def double(x: int) -> int:
        return 2 * x

    with pytest.raises(CallbackSignatureError, match=r"Typo\.on_node_end.*nod"):
        Pipeline([double], callbacks=[Typo()])
    with pytest.raises(CallbackSignatureError, match=r"TooMany\.on_map_start.*total, context"):
        Pipeline([double]).with_callbacks([TooMany()])
    with pytest.raises(TypeError):  # it is also a TypeError, as a wrong call would be
        Pipeline([double], callbacks=[TooMany()])
    assert Pipeline([double], callbacks=[FineOne()]).run({"x": 1}) == {"y": 2}


def test_fields_match_the_base_hooks_and_what_runs_emit():
    for hook in HOOKS:
        params = inspect.signature(getattr(PipelineCallback, hook)).parameters
        named = [p for p in params if p not in ("self", "kwargs")]
        assert tuple(named) == FIELDS[hook], hook
        assert params["kwargs"].kind is inspect.Parameter.VAR_KEYWORD

    class Keys(PipelineCallback):
        def __init__(self):
            self.keys = {}

    def keeper(hook):
        def keep(self, **kwargs):
            self.keys.setdefault(hook, set()).add(tuple(sorted(kwargs)))

        return keep

    for hook in HOOKS:
        setattr(Keys, hook, keeper(hook))

    @node(output_name="y")
    def double(x: int) -> int:
        return 2 * x

    @node(output_name="z")
    def fails(y: int) -> int:
        raise ValueError("no")

    attempts = []

    @node(output_name="w", retries=1)
    def flaky(x: int) -> int:
        attempts.append(x)
        if len(attempts) == 1:
            raise OSError("once")
        return x

    keys = Keys()
    inner = Pipeline([double], name="inner")
    outer = Pipeline([inner.as_node(name="inner")], callbacks=[keys], cache=MemoryCache())
    outer.map({"x": [1, 2]}, map_over="x")
    outer.map({"x": [1, 2]}, map_over="x")
    with pytest.raises(ValueError):
        Pipeline([double, fails], callbacks=[keys]).run({"x": 1})
    Pipeline([flaky], callbacks=[keys]).run({"x": 1})
    assert set(keys.keys) == set(HOOKS)
    for hook, seen in keys.keys.items():
        assert seen == {tuple(sorted(FIELDS[hook]))}, hook
