"""Where the run loop emits callback events.  Only reached when a pipeline has callbacks.

The fast path never comes here: ``Plan.run_item`` takes its bare loop unless the context is
instrumented, and these helpers are the instrumented path's way of telling the dispatcher what
happens, around the same step and item runners every executor uses.  An event nobody handles is
not built: each helper checks the dispatcher's ``listeners`` first.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..execution.context import RunContext
    from ..execution.plan import Plan, Step


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


def run_map_item(
    plan: Plan,
    values: dict[str, Any],
    index: int,
    ctx: RunContext,
    run: Callable[[dict[str, Any], RunContext], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run one map item with item events around it; ``ctx`` is the map's context.

    ``run(values, item_ctx)`` runs the item (default: ``plan.run_item``, the sequential loop).
    """
    item_ctx, start = _item_started(index, ctx)
    ok = False
    try:
        result = (run or plan.run_item)(values, item_ctx)
        ok = True
        return result
    finally:
        _item_finished(plan, values, index, item_ctx, start, ok)


def _item_started(index: int, ctx: RunContext) -> tuple[RunContext, float]:
    item_ctx = ctx.for_item(index)
    ctx.dispatcher.emit("on_map_item_start", index=index, context=item_ctx.cb)
    return item_ctx, _clock()


def _item_finished(
    plan: Plan, values: dict[str, Any], index: int, item_ctx: RunContext, start: float, ok: bool
) -> None:
    dispatcher = item_ctx.dispatcher
    if ok and plan.steps and not item_ctx.flag.ran:
        dispatcher.emit("on_map_item_cached", index=index, context=item_ctx.cb)
    dispatcher.emit("on_map_item_end", index=index, duration=_clock() - start, context=item_ctx.cb)


class ObservedItems:
    """Wraps a node executor so that every map item it runs reports item events.

    Map executors only ever call ``run_item``/``arun_item`` of their node executor, so wrapping it
    gives the same item events under every map executor, worker processes included.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def run_item(
        self, plan: Plan, values: dict[str, Any], ctx: RunContext, tolerant: bool, index: int
    ) -> dict[str, Any]:
        def run(item_values: dict[str, Any], item_ctx: RunContext) -> dict[str, Any]:
            return self.inner.run_item(plan, item_values, item_ctx, tolerant, index)

        return run_map_item(plan, values, index, ctx, run)

    async def arun_item(
        self,
        plan: Plan,
        values: dict[str, Any],
        ctx: RunContext,
        tolerant: bool,
        index: int,
        offload: Any,
    ) -> dict[str, Any]:
        item_ctx, start = _item_started(index, ctx)
        ok = False
        try:
            row = await self.inner.arun_item(plan, values, item_ctx, tolerant, index, offload)
            ok = True
            return row
        finally:
            _item_finished(plan, values, index, item_ctx, start, ok)

    def __repr__(self) -> str:
        return f"ObservedItems({self.inner!r})"


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
def observe_map(ctx: RunContext, pipeline: str, total: int) -> Iterator[None]:
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
