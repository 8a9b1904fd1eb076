"""The concurrency wrapper: at most ``resources["max_concurrency"]`` calls of a node at once.

``@node(resources={"max_concurrency": 2})`` lets two calls of the node run at the same time in a
process, whatever the executor (threads of a threaded map, tasks of an async map, the threads a
sync node is offloaded to); other calls wait for a free slot.  One semaphore per function and
process, so every plan and pipeline that uses the node (or a renamed copy of it) shares the limit.  Built into the step at
compile time only for nodes that set the hint; a worker process of ``"parallel"`` or Dask has
its own limit.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from typing import Any

from .base import Entry

#: the node's function -> its semaphore in this process
_SEMAPHORES: weakref.WeakKeyDictionary[Any, threading.Semaphore] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()

#: longest pause between two tries of a waiting ``async def`` call
_MAX_PAUSE = 0.02


def semaphore(node: Any, limit: int) -> threading.Semaphore:
    """The semaphore limiting ``node`` to ``limit`` calls at once (made on first use), shared by
    the copies of the node (``with_inputs``, ``with_output``, checked copies)."""
    key = getattr(node, "__wrapped__", node)
    with _LOCK:
        try:
            found = _SEMAPHORES.get(key)
        except TypeError:  # a callable that cannot be weakly referenced: one per node object
            key = node
            found = _SEMAPHORES.get(key)
        if found is None:
            found = _SEMAPHORES[key] = threading.Semaphore(limit)
        return found


def limited(func: Callable[..., Any], node: Any, limit: int) -> Callable[..., Any]:
    """``func`` (a sync function) waiting for one of ``node``'s ``limit`` slots around each call."""
    slots = semaphore(node, limit)

    def call_limited(*args: Any, **kwargs: Any) -> Any:
        with slots:
            return func(*args, **kwargs)

    return call_limited


def alimited(func: Callable[..., Any], node: Any, limit: int) -> Callable[..., Any]:
    """:func:`limited` for an ``async def`` function: waits without blocking the event loop.

    The slots are shared with the node's sync calls and across event loops (each thread that
    runs async nodes may have its own), so a free slot is polled for rather than awaited on one
    loop's primitive.
    """
    slots = semaphore(node, limit)

    async def acall_limited(*args: Any, **kwargs: Any) -> Any:
        pause = 0.0005
        while not slots.acquire(blocking=False):
            await asyncio.sleep(pause)
            pause = min(pause * 2, _MAX_PAUSE)
        try:
            return await func(*args, **kwargs)
        finally:
            slots.release()

    return acall_limited


def _wanted(node: Any) -> bool:
    return node.max_concurrency is not None


def _wrap(func: Callable[..., Any], node: Any) -> Callable[..., Any]:
    return limited(func, node, node.max_concurrency)


def _awrap(func: Callable[..., Any], node: Any) -> Callable[..., Any]:
    return alimited(func, node, node.max_concurrency)


LAYER = Entry("concurrency", "call", wanted=_wanted, wrap=_wrap, awrap=_awrap)
