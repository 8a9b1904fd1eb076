"""Where the run loop emits callback events.  Only reached when a pipeline has callbacks.

The fast path never comes here: ``Plan.run_item`` takes its bare loop unless the context is
instrumented, and these helpers are the instrumented path's way of telling the dispatcher what
happens, around the same step and item runners every executor uses.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .node import Node

if TYPE_CHECKING:
    from .context import RunContext
    from .plan import Plan, Step

#: set in an item's values once a node of it really ran (an item without it was all cache hits)
RAN_KEY = "\x00events:ran"


def _inputs_of(step: Step, values: dict[str, Any]) -> dict[str, Any]:
    return {
        name: values[key] for name, key in zip(step.node.inputs, step.arg_keys) if key in values
    }


def run_step(step: Step, values: dict[str, Any], ctx: RunContext, call: Callable[[], bool]) -> None:
    """Run one step through ``call`` (which returns False when it loaded a hit instead of running)
    and emit node events, or nested-pipeline events for a pipeline step."""
    dispatcher = ctx.dispatcher
    context = dispatcher.context(ctx.path, ctx.items)
    nested = type(step.node) is not Node
    if nested:
        dispatcher.emit(
            "on_nested_pipeline_start", parent=ctx.path[-1], pipeline=step.name, context=context
        )
    else:
        dispatcher.emit(
            "on_node_start", node=step.name, inputs=_inputs_of(step, values), context=context
        )
    start = time.perf_counter()
    try:
        ran = call()
    except Exception as exc:
        dispatcher.emit(
            "on_error", node=step.name, error=exc, context=dispatcher.context(ctx.path, ctx.items)
        )
        if nested:
            _end_nested(step, ctx, start)
        raise
    if nested:
        _end_nested(step, ctx, start)
        values[RAN_KEY] = True
    elif ran:
        values[RAN_KEY] = True
        outputs = {name: values[name] for name in step.store if name in values}
        dispatcher.emit(
            "on_node_end",
            node=step.name,
            outputs=outputs,
            duration=time.perf_counter() - start,
            context=dispatcher.context(ctx.path, ctx.items),
        )
    else:  # a step the cache could only sign once its inputs existed, and then found
        dispatcher.emit("on_node_cached", node=step.name, signature="", context=context)


def _end_nested(step: Step, ctx: RunContext, start: float) -> None:
    dispatcher = ctx.dispatcher
    dispatcher.emit(
        "on_nested_pipeline_end",
        parent=ctx.path[-1],
        pipeline=step.name,
        duration=time.perf_counter() - start,
        context=dispatcher.context(ctx.path, ctx.items),
    )


def cached_steps(plan: Plan, running: Sequence[Step], ctx: RunContext) -> None:
    """Emit ``on_node_cached`` for the steps of ``plan`` that the cache spared this item."""
    if len(running) == len(plan.steps):
        return
    dispatcher = ctx.dispatcher
    context = dispatcher.context(ctx.path, ctx.items)
    keep = {id(step) for step in running}
    for step in plan.steps:
        if id(step) not in keep:
            dispatcher.emit("on_node_cached", node=step.name, signature="", context=context)


def run_map_item(plan: Plan, values: dict[str, Any], index: int, ctx: RunContext) -> dict[str, Any]:
    """Run one map item with item events around it; ``ctx`` is the map's context."""
    dispatcher = ctx.dispatcher
    item_ctx = ctx.for_item(index)
    dispatcher.emit(
        "on_map_item_start", index=index, context=dispatcher.context(item_ctx.path, item_ctx.items)
    )
    start = time.perf_counter()
    try:
        result = plan.run_item(values, item_ctx)
        if plan.steps and RAN_KEY not in values:
            dispatcher.emit(
                "on_map_item_cached",
                index=index,
                context=dispatcher.context(item_ctx.path, item_ctx.items),
            )
        return result
    finally:
        dispatcher.emit(
            "on_map_item_end",
            index=index,
            duration=time.perf_counter() - start,
            context=dispatcher.context(item_ctx.path, item_ctx.items),
        )


@contextmanager
def observe_run(ctx: RunContext, pipeline: str, inputs: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """``on_pipeline_start``/``on_pipeline_end`` around one run; put the outputs in the yielded dict."""
    dispatcher = ctx.dispatcher
    box: dict[str, Any] = {}
    public = {k: v for k, v in inputs.items() if not k.startswith("\x00")}
    dispatcher.emit(
        "on_pipeline_start",
        pipeline=pipeline,
        inputs=public,
        context=dispatcher.context(ctx.path, ctx.items),
    )
    start = time.perf_counter()
    try:
        yield box
    finally:
        dispatcher.emit(
            "on_pipeline_end",
            pipeline=pipeline,
            outputs=box.get("outputs", {}),
            duration=time.perf_counter() - start,
            context=dispatcher.context(ctx.path, ctx.items),
        )


@contextmanager
def observe_map(ctx: RunContext, pipeline: str, total: int) -> Iterator[None]:
    """``on_map_start``/``on_map_end`` around one map."""
    dispatcher = ctx.dispatcher
    dispatcher.emit(
        "on_map_start",
        pipeline=pipeline,
        total=total,
        context=dispatcher.context(ctx.path, ctx.items),
    )
    start = time.perf_counter()
    try:
        yield
    finally:
        dispatcher.emit(
            "on_map_end",
            pipeline=pipeline,
            total=total,
            duration=time.perf_counter() - start,
            context=dispatcher.context(ctx.path, ctx.items),
        )
