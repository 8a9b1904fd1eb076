"""The cache layer: a step signed once its inputs exist is loaded instead of run (``SKIP``), and
a step that ran has its outputs written (or hashed by value for the steps that read them).

Single flight: when several items in flight need the same signed miss (the same node with the
same inputs and code), the first one computes it and the others wait for it and take its result
as a cache hit, so a value is computed once however the items are scheduled.  A follower that
would have to block an event loop's thread to wait (an ``async def`` node) computes instead.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..cache import item as _cache
from . import SKIP, Layer

_STATE = _cache.STATE_KEY

if TYPE_CHECKING:
    from ..context import RunContext
    from ..plan import Plan, Step


class _Flight:
    """One computation of a signed miss in progress; followers wait on ``done`` (made by the
    first follower: most flights have none)."""

    __slots__ = ("done", "values", "landed")

    def __init__(self) -> None:
        self.done: threading.Event | None = None
        #: the leader's outputs by name once it succeeded (None: failed or not written)
        self.values: dict[str, Any] | None = None
        self.landed = False

    def wait(self) -> None:
        with _FLIGHTS_LOCK:
            if self.landed:
                return
            if self.done is None:
                self.done = threading.Event()
            done = self.done
        done.wait()


#: how many maps run items at the same time right now (threads, an event loop): only then can
#: two items need one value at once, so only then do flights cost anything
_concurrent = 0


@contextmanager
def concurrent_items() -> Iterator[None]:
    """Mark a map whose items run at the same time, for as long as it runs."""
    global _concurrent
    with _FLIGHTS_LOCK:
        _concurrent += 1
    try:
        yield
    finally:
        with _FLIGHTS_LOCK:
            _concurrent -= 1


_FLIGHTS: dict[tuple[int, bytes], _Flight] = {}
#: flights that landed with a result lately: an item that signed its step before the result was
#: written (and so saw a miss) finds it here and reads it from the cache instead of recomputing
_LANDED: OrderedDict[tuple[int, bytes], _Flight] = OrderedDict()
_KEEP_LANDED = 4096
_FLIGHTS_LOCK = threading.Lock()


class _Leading:
    """The token of an item that computes a signed miss others may be waiting for."""

    __slots__ = ("action", "key", "flight")

    def __init__(self, action: list[Any], key: tuple[int, bytes], flight: _Flight) -> None:
        self.action = action
        self.key = key
        self.flight = flight

    def land(self, values: dict[str, Any] | None) -> None:
        """Publish the outcome and let the followers go."""
        flight = self.flight
        flight.values = values
        with _FLIGHTS_LOCK:
            if _FLIGHTS.get(self.key) is flight:
                del _FLIGHTS[self.key]
            if values is not None:
                _LANDED[self.key] = _Landed
                if len(_LANDED) > _KEEP_LANDED:
                    _LANDED.popitem(last=False)
            flight.landed = True
            done = flight.done
        if done is not None:
            done.set()


class CacheLayer(Layer):
    """Around each step of ``plan``: the two halves of the per-item cache state machine."""

    __slots__ = ("plan",)

    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    def before(self, step: Step, values: dict[str, Any], ctx: RunContext) -> Any:
        item = values.get(_STATE)
        if item is not None:
            action = item.todo.get(step.store[0])
            if type(action) is list:  # the common case, inlined: a signed miss
                return action if not _concurrent or not action else self._fly(action, ctx, values)
        action = _cache.before_step(self.plan, step, values)
        if action is _cache.SKIP:
            return SKIP
        if type(action) is not list or not action or not _concurrent:
            return action  # (one item at a time: nobody to share a computation with)
        return self._fly(action, ctx, values)

    @staticmethod
    def _fly(action: list[Any], ctx: RunContext, values: dict[str, Any]) -> Any:
        """Lead the computation of a signed miss, or wait for the item that leads it."""
        key = (id(ctx.cache), action[0][1])
        while True:
            with _FLIGHTS_LOCK:
                flight = _FLIGHTS.get(key) or _LANDED.get(key)
                if flight is None:
                    flight = _FLIGHTS[key] = _Flight()
                    return _Leading(action, key, flight)
            if _on_event_loop():
                return action  # waiting would block the loop the leader may need: compute
            flight.wait()
            if _follow(ctx.cache, action, values, flight):
                return SKIP
            if flight is _Landed:
                with _FLIGHTS_LOCK:
                    _LANDED.pop(key, None)  # written elsewhere and gone: compute it again
            # the leader failed: the next item to get here computes it (maybe this one)

    def after(self, step: Step, values: dict[str, Any], ctx: RunContext, token: Any) -> None:
        if type(token) is list:
            _cache.write(values[_STATE], step, values, token)
        elif type(token) is _Leading:
            try:
                _cache.after_step(step, values, token.action)
            finally:
                token.land({name: values[name] for name, _ in token.action})
        elif token is not None:
            _cache.after_step(step, values, token)

    def error(
        self, step: Step, values: dict[str, Any], ctx: RunContext, token: Any, exc: BaseException
    ) -> None:
        if type(token) is _Leading:
            token.land(None)


#: what a landed flight leaves behind: done, its values not kept (they are read from the cache)
_Landed = _Flight()
_Landed.landed = True


def _follow(cache: Any, action: list[Any], values: dict[str, Any], flight: _Flight) -> bool:
    """Take the leader's result as a hit: from the cache (a private copy), or from the leader's
    values when its write did not reach the store; False when the leader failed."""
    keys = [key for _, key in action]
    found = cache.get_many(keys)
    if len(found) != len(keys):
        if flight.values is None:
            return False
        found = {key: flight.values[name] for name, key in action}
    for name, key in action:
        values[name] = found[key]
    _cache.loaded(values, action)
    return True


def _on_event_loop() -> bool:
    return asyncio._get_running_loop() is not None
