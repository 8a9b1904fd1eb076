"""The retry wrapper: call a node again when it raises one of its ``retry_on`` errors.

``@node(retries=3, retry_on=(IOError,), retry_delay=0.1, backoff=2.0)`` makes up to three more
attempts, waiting 0.1 s, then 0.2 s, then 0.4 s.  Each retry emits ``on_node_retry`` (the
progress bar counts them).  The wrapper is built into the step only for nodes with retries.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from .base import Entry

if TYPE_CHECKING:
    from ...model.node import Node
    from ..context import RunContext
    from .base import AsyncRunner, Runner


def _announce(
    ctx: RunContext | None, name: str, attempt: int, exc: Exception, delay: float
) -> None:
    dispatcher = ctx.dispatcher if ctx is not None else None
    if dispatcher is not None and dispatcher.listeners.get("on_node_retry"):
        dispatcher.emit(
            "on_node_retry", node=name, attempt=attempt, error=exc, delay=delay, context=ctx.cb
        )


def retrying(run: Runner, node: Node) -> Runner:
    """``run`` with ``node``'s retries around it."""
    retries, retry_on = node.retries, node.retry_on
    first_delay, backoff, name = node.retry_delay, node.backoff, node.name

    def run_with_retries(values: dict[str, Any], ctx: RunContext) -> None:
        attempt, delay = 0, first_delay
        while True:
            try:
                return run(values, ctx)
            except retry_on as exc:
                if attempt >= retries:
                    raise
                attempt += 1
                _announce(ctx, name, attempt, exc, delay)
                if delay > 0:
                    time.sleep(delay)
                delay *= backoff

    return run_with_retries


def aretrying(arun: AsyncRunner, node: Node) -> AsyncRunner:
    """:func:`retrying` for an ``async def`` node; waits with ``asyncio.sleep``."""
    retries, retry_on = node.retries, node.retry_on
    first_delay, backoff, name = node.retry_delay, node.backoff, node.name

    async def arun_with_retries(values: dict[str, Any], ctx: RunContext) -> None:
        attempt, delay = 0, first_delay
        while True:
            try:
                return await arun(values, ctx)
            except retry_on as exc:
                if attempt >= retries:
                    raise
                attempt += 1
                _announce(ctx, name, attempt, exc, delay)
                if delay > 0:
                    await asyncio.sleep(delay)
                delay *= backoff

    return arun_with_retries


def _wanted(node: Node) -> bool:
    return bool(node.retries)


LAYER = Entry("retry", "runner", wanted=_wanted, wrap=retrying, awrap=aretrying)
