"""The timeout wrapper: a node call that runs longer than the node's ``timeout`` raises
:class:`~hypernodes.exceptions.NodeTimeoutError`.

How the call is stopped depends on where it runs:

- ``async def`` nodes are cancelled (``asyncio.wait_for``);
- a sync node in a process's main thread with no other alarm set (the caller of a sequential
  run, a ``"parallel"`` worker process) is interrupted by ``SIGALRM``, like Ctrl-C would be: the
  interrupt raised inside the node is a ``BaseException`` (as asyncio's cancellation is), so the
  node's own ``except Exception:`` cannot swallow it, and it becomes the ``NodeTimeoutError`` at
  the call's boundary;
- elsewhere (a thread of a threaded or async executor) Python cannot stop a thread: the call is
  left running in a daemon thread and its result is thrown away, while the item fails at once.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from ...exceptions import NodeTimeoutError
from .base import Entry

_HAS_ALARM = hasattr(signal, "setitimer") and hasattr(signal, "SIGALRM")


def _error(name: str, limit: float) -> NodeTimeoutError:
    return NodeTimeoutError(
        f"node {name!r} ran longer than its timeout of {limit:g} s; raise @node(timeout=...) "
        "if it needs more time"
    )


def timed(func: Callable[..., Any], limit: float, name: str) -> Callable[..., Any]:
    """``func`` stopped (or abandoned) after ``limit`` seconds."""

    def call_with_timeout(*args: Any, **kwargs: Any) -> Any:
        call = partial(func, *args, **kwargs)
        if _alarm_free():
            return _by_alarm(call, limit, name)
        return _by_thread(call, limit, name)

    return call_with_timeout


def _alarm_free() -> bool:
    """Whether this is the main thread and no interval timer (another timeout, pytest-timeout)
    is set: only then may ``SIGALRM`` interrupt the call."""
    return (
        _HAS_ALARM
        and threading.current_thread() is threading.main_thread()
        and signal.getitimer(signal.ITIMER_REAL)[0] == 0
    )


class _Expired(BaseException):
    """The interrupt raised inside a node's call when its time is up.

    Not an ``Exception``: a node's ``try: ... except Exception:`` must not swallow it and carry
    on past its limit.  It never leaves :func:`_by_alarm`, which turns it into a
    :class:`NodeTimeoutError`.
    """


def _by_alarm(call: Callable[[], Any], limit: float, name: str) -> Any:
    state = {"armed": True, "fired": False}

    def on_alarm(signum: int, frame: Any) -> None:
        if state["armed"]:
            state["armed"] = False
            state["fired"] = True
            raise _Expired

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        result = call()
    except _Expired:
        raise _error(name, limit) from None
    finally:
        state["armed"] = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    if state["fired"]:  # the node caught even the interrupt (a bare except) and returned late
        raise _error(name, limit)
    return result


def _by_thread(call: Callable[[], Any], limit: float, name: str) -> Any:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"hypernodes-timeout-{name}", daemon=True)
    thread.start()
    thread.join(limit)
    if thread.is_alive():
        raise _error(name, limit)
    if "error" in box:
        raise box["error"]
    return box["value"]


def atimed(func: Callable[..., Any], limit: float, name: str) -> Callable[..., Any]:
    """An ``async def`` function cancelled after ``limit`` seconds."""

    async def acall_with_timeout(*args: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.wait_for(func(*args, **kwargs), limit)
        except TimeoutError as exc:
            if not isinstance(exc.__cause__, asyncio.CancelledError):
                raise  # the node's own TimeoutError
            raise _error(name, limit) from None

    return acall_with_timeout


def _wanted(node: Any) -> bool:
    return node.timeout is not None


def _wrap(func: Callable[..., Any], node: Any) -> Callable[..., Any]:
    return timed(func, node.timeout, node.name)


def _awrap(func: Callable[..., Any], node: Any) -> Callable[..., Any]:
    return atimed(func, node.timeout, node.name)


LAYER = Entry("timeout", "call", wanted=_wanted, wrap=_wrap, awrap=_awrap)
