"""``TelemetryCallback``: OpenTelemetry spans for pipeline -> map -> map item -> node.

Spans carry the node, item index, cache and error status as attributes, and use the events' own
timestamps, so events relayed from worker processes land at the time they happened.  Any OTel
exporter works: pass a ``TracerProvider`` (or a tracer) or use the globally configured one.  The
callback keeps its own record of every span (``records``) whether or not a provider is set up, so
``get_waterfall_chart()`` draws the calls seen so far as a plotly timeline even with no exporter,
grouped by node (or by item) so that large maps stay readable.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from ..observe.callbacks import CallbackContext, PipelineCallback


@dataclass
class SpanRecord:
    """A finished span as the waterfall chart needs it (times in seconds since the epoch)."""

    name: str
    kind: str
    start: float
    end: float
    depth: int
    attributes: dict[str, Any]


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


class TelemetryCallback(PipelineCallback):
    """Emits an OpenTelemetry span per pipeline run, map, map item, nested pipeline step and node."""

    def __init__(
        self, tracer_provider: Any = None, tracer: Any = None, service_name: str = "hypernodes"
    ) -> None:
        try:
            from opentelemetry import trace
        except ImportError as exc:
            raise ImportError(
                "TelemetryCallback needs OpenTelemetry, which is not installed: "
                "pip install 'hypernodes[telemetry]' (or pip install opentelemetry-sdk)"
            ) from exc

        self._trace = trace
        if tracer is None:
            provider = tracer_provider or trace.get_tracer_provider()
            tracer = provider.get_tracer(service_name)
        self.tracer = tracer
        self.records: list[SpanRecord] = []
        self._open: dict[tuple[Any, ...], tuple[Any, float, str, int, dict[str, Any], str]] = {}
        self._lock = threading.Lock()

    # -- span bookkeeping ---------------------------------------------------------------------

    def _parent_of_step(self, context: CallbackContext) -> Any:
        """A node or nested step hangs under its map item, else under its pipeline run."""
        if context.item_index is not None:
            return self._open.get(("item", context.path, context.items))
        return self._open.get(("pipeline", context.path, context.items)) or self._parent_of_call(
            context
        )

    def _parent_of_call(self, context: CallbackContext) -> Any:
        """A pipeline run or map hangs under the nested step that called it (None at the top)."""
        if context.depth == 0:
            return None
        parent_path, parent_items = context.path[:-1], context.items[:-1]
        return self._open.get(("nested", parent_path, parent_items, context.path[-1]))

    def _start(
        self,
        key: tuple[Any, ...],
        name: str,
        kind: str,
        parent: Any,
        context: CallbackContext,
        **attributes: Any,
    ) -> None:
        now = context.event_time
        attrs = {
            "hypernodes.kind": kind,
            "hypernodes.pipeline": context.pipeline,
            "hypernodes.path": "/".join(context.path),
        }
        if context.item_index is not None:
            attrs["hypernodes.item_index"] = context.item_index
        attrs.update({f"hypernodes.{k}": v for k, v in attributes.items()})
        parent_ctx = self._trace.set_span_in_context(parent[0]) if parent is not None else None
        span = self.tracer.start_span(
            name, context=parent_ctx, start_time=_ns(now), attributes=attrs
        )
        self._open[key] = (span, now, kind, context.depth, attrs, name)

    def _end(
        self,
        key: tuple[Any, ...],
        context: CallbackContext,
        error: BaseException | None = None,
        **attributes: Any,
    ) -> None:
        entry = self._open.pop(key, None)
        if entry is None:
            return
        span, start, kind, depth, attrs, name = entry
        for k, v in attributes.items():
            span.set_attribute(f"hypernodes.{k}", v)
            attrs[f"hypernodes.{k}"] = v
        if error is not None:
            from opentelemetry.trace import Status, StatusCode

            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
            attrs["hypernodes.error"] = type(error).__name__
        now = context.event_time
        span.end(end_time=_ns(now))
        # our own record, from our own data: a non-recording span (no tracer provider set up)
        # has no name or attributes to read back
        self.records.append(SpanRecord(name, kind, start, now, depth, attrs))

    # -- hooks --------------------------------------------------------------------------------

    def on_pipeline_start(self, *, pipeline: str, inputs: Any, context: CallbackContext) -> None:
        with self._lock:
            self._start(
                ("pipeline", context.path, context.items),
                f"pipeline {pipeline}",
                "pipeline",
                self._parent_of_call(context),
                context,
            )

    def on_pipeline_end(
        self, *, pipeline: str, outputs: Any, duration: float, context: CallbackContext
    ) -> None:
        with self._lock:
            self._end(("pipeline", context.path, context.items), context)

    def on_map_start(self, *, pipeline: str, total: int, context: CallbackContext) -> None:
        with self._lock:
            parent = self._open.get(
                ("pipeline", context.path, context.items)
            ) or self._parent_of_call(context)
            self._start(
                ("map", context.path, context.items),
                f"map {pipeline}",
                "map",
                parent,
                context,
                total=total,
            )

    def on_map_end(
        self, *, pipeline: str, total: int, duration: float, context: CallbackContext
    ) -> None:
        with self._lock:
            self._end(("map", context.path, context.items), context)

    def on_map_item_start(self, *, index: int, context: CallbackContext) -> None:
        with self._lock:
            parent = self._open.get(("map", context.path, (*context.items[:-1], None)))
            self._start(
                ("item", context.path, context.items),
                f"item {index}",
                "item",
                parent,
                context,
                cached=False,
            )

    def on_map_item_cached(self, *, index: int, context: CallbackContext) -> None:
        with self._lock:
            entry = self._open.get(("item", context.path, context.items))
            if entry is not None:
                entry[0].set_attribute("hypernodes.cached", True)
                entry[4]["hypernodes.cached"] = True

    def on_map_item_end(self, *, index: int, duration: float, context: CallbackContext) -> None:
        with self._lock:
            self._end(("item", context.path, context.items), context)

    def on_node_start(self, *, node: str, inputs: Any, context: CallbackContext) -> None:
        with self._lock:
            self._start(
                ("node", context.path, context.items, node),
                node,
                "node",
                self._parent_of_step(context),
                context,
                node=node,
                cached=False,
            )

    def on_node_end(
        self, *, node: str, outputs: Any, duration: float, context: CallbackContext
    ) -> None:
        with self._lock:
            self._end(("node", context.path, context.items, node), context)

    def on_node_cached(self, *, node: str, signature: str, context: CallbackContext) -> None:
        with self._lock:
            key = ("node", context.path, context.items, node)
            self._start(
                key, node, "node", self._parent_of_step(context), context, node=node, cached=True
            )
            self._end(key, context)

    def on_error(self, *, node: str | None, error: BaseException, context: CallbackContext) -> None:
        with self._lock:
            if node is not None:
                self._end(("node", context.path, context.items, node), context, error=error)

    def on_nested_pipeline_start(
        self, *, parent: str, pipeline: str, context: CallbackContext
    ) -> None:
        with self._lock:
            self._start(
                ("nested", context.path, context.items, pipeline),
                pipeline,
                "nested",
                self._parent_of_step(context),
                context,
                node=pipeline,
            )

    def on_nested_pipeline_end(
        self, *, parent: str, pipeline: str, duration: float, context: CallbackContext
    ) -> None:
        with self._lock:
            self._end(("nested", context.path, context.items, pipeline), context)

    # -- chart --------------------------------------------------------------------------------

    def get_waterfall_chart(self, title: str = "HyperNodes run", group_by: str = "node") -> Any:
        """A plotly timeline of the spans so far: by default one row per node (every call of it
        a bar on that row), ``group_by="item"`` one row per map item, ``"span"`` one per span."""
        from .waterfall import waterfall_figure

        return waterfall_figure(list(self.records), title=title, group_by=group_by)
