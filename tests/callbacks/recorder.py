"""A callback that records every event it sees, for the callback tests."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from hypernodes import PipelineCallback


class Recorder(PipelineCallback):
    """Keeps ``(hook, path, items, subject)`` per event; ``subject`` is the node/pipeline/index."""

    def __init__(self) -> None:
        self.events: list[tuple[str, tuple[str, ...], tuple[Any, ...], Any]] = []
        self.threads: set[int] = set()
        self._inside = 0
        self.overlaps = 0

    def _add(self, hook: str, context: Any, subject: Any) -> None:
        self._inside += 1
        if self._inside > 1:
            self.overlaps += 1  # two hooks running at once would break the contract
        self.threads.add(threading.get_ident())
        self.events.append((hook, context.path, context.items, subject))
        self._inside -= 1

    def on_pipeline_start(self, *, pipeline, inputs, context):
        self._add("on_pipeline_start", context, pipeline)

    def on_pipeline_end(self, *, pipeline, outputs, duration, context):
        self._add("on_pipeline_end", context, pipeline)

    def on_node_start(self, *, node, inputs, context):
        self._add("on_node_start", context, node)

    def on_node_end(self, *, node, outputs, duration, context):
        self._add("on_node_end", context, node)

    def on_node_cached(self, *, node, signature, context):
        self._add("on_node_cached", context, node)

    def on_error(self, *, node, error, context):
        self._add("on_error", context, (node, type(error).__name__))

    def on_nested_pipeline_start(self, *, parent, pipeline, context):
        self._add("on_nested_pipeline_start", context, pipeline)

    def on_nested_pipeline_end(self, *, parent, pipeline, duration, context):
        self._add("on_nested_pipeline_end", context, pipeline)

    def on_map_start(self, *, pipeline, total, context):
        self._add("on_map_start", context, total)

    def on_map_end(self, *, pipeline, total, duration, context):
        self._add("on_map_end", context, total)

    def on_map_item_start(self, *, index, context):
        self._add("on_map_item_start", context, index)

    def on_map_item_end(self, *, index, duration, context):
        self._add("on_map_item_end", context, index)

    def on_map_item_cached(self, *, index, context):
        self._add("on_map_item_cached", context, index)

    def multiset(self) -> Counter:
        """The events as a multiset: what every executor must agree on."""
        return Counter(self.events)

    def hooks(self) -> list[str]:
        return [e[0] for e in self.events]
