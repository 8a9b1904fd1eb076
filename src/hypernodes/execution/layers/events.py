"""The events layer: callback events around one step - node start/end, nested pipeline
start/end, errors, and ``on_node_cached`` for a step the cache spared."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...model.node import Node
from ...observe import events
from .base import Entry, Layer

if TYPE_CHECKING:
    from ..context import RunContext
    from ..step import Step


class EventsLayer(Layer):
    """Node events around a node step, nested-pipeline events around a pipeline step."""

    __slots__ = ()

    def before(self, step: Step, values: dict[str, Any], ctx: RunContext) -> Any:
        if type(step.node) is Node:
            return events.node_started(step, values, ctx)
        return events.nested_started(step, ctx)

    def after(self, step: Step, values: dict[str, Any], ctx: RunContext, token: Any) -> None:
        if type(step.node) is Node:
            events.node_finished(step, values, ctx, token)
        else:
            events.nested_finished(step, values, ctx, token)

    def error(
        self, step: Step, values: dict[str, Any], ctx: RunContext, token: Any, exc: BaseException
    ) -> None:
        if not isinstance(exc, Exception):
            return  # Ctrl-C and the like stop the run; they are not a node's error
        if ctx.flag is not None:  # a failed item ran (and failed): it was not a cache hit
            ctx.flag.mark()
        ctx.dispatcher.emit("on_error", node=step.name, error=exc, context=ctx.cb)
        if type(step.node) is not Node:
            events.nested_ended(step, ctx, token)

    def skipped(self, step: Step, values: dict[str, Any], ctx: RunContext) -> None:
        ctx.dispatcher.emit("on_node_cached", node=step.name, signature="", context=ctx.cb)


#: layers hold no state of their own: one instance serves every plan
EVENTS = EventsLayer()


def _events(plan: object) -> EventsLayer:
    return EVENTS


LAYER = Entry("events", "around", field="dispatcher", make=_events)
