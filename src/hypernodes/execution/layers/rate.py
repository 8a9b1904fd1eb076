"""The rate limit wrapper: a node with ``resources={"rate_limit": "10/s"}`` starts at most that
many calls in any second (or minute, hour) of a process.

A call takes the next start time free in a sliding window (starts are reserved in order, so
waiting calls do not race each other) and waits until then: a thread sleeps, an ``async def``
node awaits ``asyncio.sleep`` and its event loop goes on.  One window per function and process,
shared by every plan and copy of the node; a worker process (``"parallel"``, Dask, Daft) has its
own.  Every attempt counts, retries included: each is a call to whatever the node calls.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

from ...model.rates import read_rate
from .base import Entry


class Window:
    """Start times reserved in the last ``period`` seconds, at most ``count`` of them."""

    __slots__ = ("count", "period", "starts", "lock")

    def __init__(self, count: int, period: float) -> None:
        self.count = count
        self.period = period
        self.starts: deque[float] = deque(maxlen=count)
        self.lock = threading.Lock()

    def reserve(self) -> float:
        """Reserve the next free start; the seconds to wait for it."""
        with self.lock:
            now = time.monotonic()
            starts = self.starts
            start = now if len(starts) < self.count else max(now, starts[0] + self.period)
            starts.append(start)
            return start - now


_WINDOWS: weakref.WeakKeyDictionary[Any, Window] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def window(node: Any, count: int, period: float) -> Window:
    """The window of ``node``'s function in this process (made on first use)."""
    key = getattr(node, "__wrapped__", node)
    with _LOCK:
        try:
            found = _WINDOWS.get(key)
        except TypeError:  # a callable that cannot be weakly referenced: one per node object
            key = node
            found = _WINDOWS.get(key)
        if found is None or (found.count, found.period) != (count, period):
            found = _WINDOWS[key] = Window(count, period)
        return found


def _limit(node: Any) -> tuple[int, float]:
    return read_rate(node.resources["rate_limit"], f"node {node.name!r}")


def _wanted(node: Any) -> bool:
    return bool(node.resources) and "rate_limit" in node.resources


def _wrap(func: Callable[..., Any], node: Any) -> Callable[..., Any]:
    slots = window(node, *_limit(node))

    def call_rate_limited(*args: Any, **kwargs: Any) -> Any:
        wait = slots.reserve()
        if wait > 0:
            time.sleep(wait)
        return func(*args, **kwargs)

    return call_rate_limited


def _awrap(func: Callable[..., Any], node: Any) -> Callable[..., Any]:
    slots = window(node, *_limit(node))

    async def acall_rate_limited(*args: Any, **kwargs: Any) -> Any:
        wait = slots.reserve()
        if wait > 0:
            await asyncio.sleep(wait)
        return await func(*args, **kwargs)

    return acall_rate_limited


LAYER = Entry("rate_limit", "call", wanted=_wanted, wrap=_wrap, awrap=_awrap)
