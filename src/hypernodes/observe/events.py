"""Where the run loop emits callback events.  Only reached when a pipeline has callbacks.

The fast path never comes here: ``Plan.run_item`` takes its bare loop unless the context is
instrumented, and these helpers are the instrumented path's way of telling the dispatcher what
happens, around the same step and item runners every executor uses.  An event nobody handles is
not built: each helper checks the dispatcher's ``listeners`` first.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..execution.context import RunContext
    from ..execution.plan import Plan
    from ..execution.step import Step


_clock = time.perf_counter


def node_started(step: Step, values: dict[str, Any], ctx: RunContext) -> float:
    """``on_node_start`` (when handled); the start time for :func:`node_finished`."""
    dispatcher = ctx.dispatcher
    if dispatcher.listeners["on_node_start"]:
        inputs = step.inputs(values)
        dispatcher.emit("on_node_start", node=step.name, inputs=inputs, context=ctx.cb)
    return _clock()


def node_finished(step: Step, values: dict[str, Any], ctx: RunContext, start: float) -> None:
    """Mark that a node really ran, and ``on_node_end`` (when handled)."""
    if ctx.flag is not None:  # a map item: mark that it (or one nested in it) really ran
        ctx.flag.mark()
    dispatcher = ctx.dispatcher
    if dispatcher.listeners["on_node_end"]:
        outputs = {name: values[name] for name in step.store}
        dispatcher.emit(
            "on_node_end",
            node=step.name,
            outputs=outputs,
            duration=_clock() - start,
            context=ctx.cb,
        )


def nested_started(step: Step, ctx: RunContext) -> float:
    """``on_nested_pipeline_start`` for a pipeline step; the start time."""
    ctx.dispatcher.emit(
        "on_nested_pipeline_start", parent=ctx.path[-1], pipeline=step.name, context=ctx.cb
    )
    return _clock()


def nested_finished(step: Step, values: dict[str, Any], ctx: RunContext, start: float) -> None:
    """A pipeline step finished: ``on_nested_pipeline_end`` (its nodes marked the item's flag)."""
    nested_ended(step, ctx, start)


def nested_ended(step: Step, ctx: RunContext, start: float) -> None:
    """``on_nested_pipeline_end`` (after success or failure)."""
    ctx.dispatcher.emit(
        "on_nested_pipeline_end",
        parent=ctx.path[-1],
        pipeline=step.name,
        duration=_clock() - start,
        context=ctx.cb,
    )


def cached_steps(plan: Plan, running: Sequence[Step], ctx: RunContext) -> None:
    """Emit ``on_node_cached`` for the steps of ``plan`` that the cache spared this item."""
    if len(running) == len(plan.steps) or not ctx.dispatcher.listeners["on_node_cached"]:
        return
    keep = {id(step) for step in running}
    for step in plan.steps:
        if id(step) not in keep:
            ctx.dispatcher.emit("on_node_cached", node=step.name, signature="", context=ctx.cb)


def item_started(index: int, ctx: RunContext) -> tuple[RunContext, float]:
    item_ctx = ctx.for_item(index)
    ctx.dispatcher.emit("on_map_item_start", index=index, context=item_ctx.cb)
    return item_ctx, _clock()


def item_finished(
    plan: Plan, values: dict[str, Any], index: int, item_ctx: RunContext, start: float, ok: bool
) -> None:
    dispatcher = item_ctx.dispatcher
    if ok and plan.steps and not item_ctx.flag.ran:
        dispatcher.emit("on_map_item_cached", index=index, context=item_ctx.cb)
    dispatcher.emit("on_map_item_end", index=index, duration=_clock() - start, context=item_ctx.cb)


@contextmanager
def observe_run(ctx: RunContext, pipeline: str, inputs: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """``on_pipeline_start``/``on_pipeline_end`` around one run; put the outputs in the yielded dict."""
    dispatcher, context = ctx.dispatcher, ctx.cb
    box: dict[str, Any] = {}
    if dispatcher.listeners["on_pipeline_start"]:
        dispatcher.emit("on_pipeline_start", pipeline=pipeline, inputs=inputs, context=context)
    start = _clock()
    try:
        yield box
    finally:
        dispatcher.emit(
            "on_pipeline_end",
            pipeline=pipeline,
            outputs=box.get("outputs", {}),
            duration=_clock() - start,
            context=context,
        )


@contextmanager
def observe_map(ctx: RunContext, pipeline: str, total: int | None) -> Iterator[None]:
    """``on_map_start``/``on_map_end`` around one map."""
    dispatcher, context = ctx.dispatcher, ctx.cb
    dispatcher.emit("on_map_start", pipeline=pipeline, total=total, context=context)
    start = _clock()
    try:
        yield
    finally:
        dispatcher.emit(
            "on_map_end", pipeline=pipeline, total=total, duration=_clock() - start, context=context
        )
