"""Callbacks written the way the original HyperNodes wrote them: positional hooks named
``node_id``, ``ctx``, ``total_items``, ``item_index``..., and state kept with ``ctx.get``/``ctx.set``.

``LegacyRecorder`` keeps the same ``(hook, path, items, subject)`` tuples as ``recorder.Recorder``,
so the two can be compared event for event.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypernodes.observe.callbacks import PipelineCallback


class LegacyRecorder(PipelineCallback):
    def __init__(self) -> None:
        self.events: list[tuple[str, tuple[str, ...], tuple[Any, ...], Any]] = []
        self.durations: list[float] = []
        self.seen_inputs: list[dict[str, Any]] = []

    def _add(self, hook, ctx, subject):
        ctx.set("legacy_count", ctx.get("legacy_count", 0) + 1)
        self.events.append((hook, ctx.path, ctx.items, subject))

    def on_pipeline_start(self, pipeline_id, inputs, ctx):
        self._add("on_pipeline_start", ctx, pipeline_id)

    def on_pipeline_end(self, pipeline_id, outputs, duration, ctx):
        self.durations.append(duration)
        self._add("on_pipeline_end", ctx, pipeline_id)

    def on_node_start(self, node_id, inputs, ctx):
        self.seen_inputs.append(dict(inputs))
        self._add("on_node_start", ctx, node_id)

    def on_node_end(self, node_id, outputs, duration, ctx):
        self.durations.append(duration)
        self._add("on_node_end", ctx, node_id)

    def on_node_cached(self, node_id, signature, ctx):
        self._add("on_node_cached", ctx, node_id)

    def on_error(self, node_id, error, ctx):
        self._add("on_error", ctx, (node_id, type(error).__name__))

    def on_nested_pipeline_start(self, parent_id, child_pipeline_id, ctx):
        self._add("on_nested_pipeline_start", ctx, child_pipeline_id)

    def on_nested_pipeline_end(self, parent_id, child_pipeline_id, duration, ctx):
        self._add("on_nested_pipeline_end", ctx, child_pipeline_id)

    def on_map_start(self, total_items, ctx):
        self._add("on_map_start", ctx, total_items)

    def on_map_end(self, total_duration, ctx):
        self.durations.append(total_duration)
        # the original's on_map_end has no total: take it from the matching start
        total = next(
            e[3]
            for e in reversed(self.events)
            if e[0] == "on_map_start" and e[1] == ctx.path and e[2] == ctx.items
        )
        self._add("on_map_end", ctx, total)

    def on_map_item_start(self, item_index, ctx):
        self._add("on_map_item_start", ctx, item_index)

    def on_map_item_end(self, item_index, duration, ctx):
        self.durations.append(duration)
        self._add("on_map_item_end", ctx, item_index)

    def on_map_item_cached(self, item_index, signature, ctx):
        self._add("on_map_item_cached", ctx, item_index)

    def multiset(self) -> Counter:
        return Counter(self.events)


class ShortCached(PipelineCallback):
    """``on_map_item_cached`` without the signature argument, which some versions left out."""

    def __init__(self) -> None:
        self.cached: list[int] = []

    def on_map_item_cached(self, item_index, ctx):
        self.cached.append(item_index)
