"""The cache layer: a step signed once its inputs exist is loaded instead of run (``SKIP``), and
a step that ran has its outputs written (or hashed by value for the steps that read them).

Single flight: when several items in flight need the same signed miss (the same node with the
same inputs and code), the first one computes it and the others wait for it and take its result
as a cache hit, so a value is computed once however the items are scheduled.  A follower that
would have to block an event loop's thread to wait (an ``async def`` node) computes instead.

Its bookkeeping is one dict, ``_FLIGHTS``, keyed by the signed key of a step's first output:
the leading item's own cache state (``ctx.state``) while it computes (a leader nobody follows
allocates nothing), and a :class:`_Flight` once a follower waits.  A counter of landings lets an item
that looked its keys up before some leader wrote them, and reaches the step after that leader
landed, look once more instead of computing the value again.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

from ...cache import item as _cache
from ...cache.base import CacheWriteError
from ...cache.signatures import cache_plan
from .base import SKIP, Entry, Layer

if TYPE_CHECKING:
    from ..context import RunContext
    from ..plan import Plan
    from ..step import Step
    from .base import Runner


class _Flight:
    """What the followers of a leader wait on, made by the first follower."""

    __slots__ = ("leader", "done", "ok")

    def __init__(self, leader: Any) -> None:
        #: the leader's item state (its outputs are in its values once it succeeded)
        self.leader = leader
        self.done = threading.Event()
        self.ok = False


class _Lead:
    """The token of a leader that took the general path (:meth:`CacheLayer.before`)."""

    __slots__ = ("action", "signature", "item")

    def __init__(self, action: list[Any], signature: bytes, item: Any) -> None:
        self.action = action
        self.signature = signature
        self.item = item


#: signed key -> the leader's item state, or a :class:`_Flight` once a follower waits
_FLIGHTS: dict[bytes, Any] = {}
_FLIGHTS_LOCK = threading.Lock()
_acquire, _release = _FLIGHTS_LOCK.acquire, _FLIGHTS_LOCK.release
#: how many leaders have landed (see ``ItemState.seen``)
_LANDINGS = _cache.LANDINGS


def _land(signature: bytes, item: Any, ok: bool) -> None:
    """The leader of ``signature`` is done (``ok``: its outputs are in its values and were
    written): free the key, let followers go, and count the landing."""
    _acquire()
    claim = _FLIGHTS.pop(signature, None)
    count = _LANDINGS[0]
    _LANDINGS[0] = count + 1
    _release()
    if item.seen == count:  # nobody else landed since: this item has seen everything
        item.seen = count + 1
    if type(claim) is _Flight:
        claim.ok = ok
        claim.done.set()


def _await(signature: bytes) -> _Flight | None:
    """Wait for the leader of ``signature`` to land; None when there is none (any more)."""
    with _FLIGHTS_LOCK:
        claim = _FLIGHTS.get(signature)
        if claim is None:
            return None
        if type(claim) is not _Flight:
            claim = _FLIGHTS[signature] = _Flight(claim)
    claim.done.wait()
    return claim


def _landed_meanwhile(item: Any, action: list[Any]) -> bool:
    """Some leader landed since ``item`` looked its keys up (maybe with this one): look again.
    Loads the outputs when they are there now."""
    item.seen = _LANDINGS[0]
    return _follow(item, action, None)


def _leader_cache(claim: Any) -> Any:
    leader = claim.leader if type(claim) is _Flight else claim
    return leader.cache


class CacheLayer(Layer):
    """Around each step of ``plan``: the two halves of the per-item cache state machine."""

    __slots__ = ("plan",)

    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    def before(self, step: Step, values: dict[str, Any], ctx: RunContext) -> Any:
        item = ctx.state
        action = _cache.before_step(self.plan, step, values, item, ctx.dispatcher is None)
        if action is _cache.SKIP:
            return SKIP
        if type(action) is not list or not action:
            return action
        cache = item.cache
        signature = action[0][1]
        while True:
            claim = _FLIGHTS.setdefault(signature, item)  # atomic: one leader per key
            if claim is item:
                if _LANDINGS[0] != item.seen and _landed_meanwhile(item, action):
                    _land(signature, item, True)
                    return SKIP
                return _Lead(action, signature, item)
            if _leader_cache(claim) is not cache:
                return action  # the same key computed for another cache: not ours to wait for
            if _on_event_loop():
                return action  # waiting would block the loop the leader may need: compute
            flight = _await(signature)
            if flight is not None and _follow(item, action, flight):
                return SKIP
            # no leader any more, or it failed: the next item to get here computes it

    def wrap(self, step: Step, call: Runner) -> Runner:
        """The runner of ``step`` with this layer alone around ``call``.

        A signed miss of a cold item that no other item is computing - the cold path - runs
        inline: one dict operation to lead it, one to land it; anything else takes
        :meth:`before` and :meth:`after`.
        """
        first = step.store[0]
        cp = cache_plan(self.plan)
        outs = cp.outs[cp.index[first]]
        only = cp.names[outs[0]] if len(outs) == 1 else None
        j0 = outs[0]
        flights, landings = _FLIGHTS, _LANDINGS
        acquire, release = _acquire, _release
        general = super().wrap(step, call)  # before, call, after: every other case
        if only is None:
            return general

        def run(values: dict[str, Any], ctx: RunContext) -> None:
            item = ctx.state
            if item is None or item.todo is not None:
                return general(values, ctx)
            # A cold item's step with one output: lead it, run it, write it, land it - inline.
            signature = item.keys[j0]
            if flights.setdefault(signature, item) is not item:
                return general(values, ctx)
            if landings[0] != item.seen and _landed_meanwhile(
                item, [(only, signature)]
            ):  # claimed first, then looked: a leader that landed just before is not missed
                _land(signature, item, True)
                return None
            cache = item.cache
            try:
                call(values, ctx)
            except BaseException:
                _land(signature, item, False)
                raise
            try:
                try:
                    cache.set(signature, values[only])
                except CacheWriteError as exc:
                    _cache.unstored(step, only, values[only], exc)
                tok = item.tok
                if tok is not None:
                    tok[only] = signature
            finally:  # _land(signature, item, True), inlined
                acquire()
                claim = flights.pop(signature, None)
                count = landings[0]
                landings[0] = count + 1
                release()
                if item.seen == count:
                    item.seen = count + 1
                if claim is not item:
                    claim.ok = True
                    claim.done.set()
            return None

        return run

    def after(self, step: Step, values: dict[str, Any], ctx: RunContext, token: Any) -> None:
        if type(token) is _Lead:
            try:
                _cache.after_step(step, values, token.item, token.action)
            finally:
                _land(token.signature, token.item, True)
        elif token is not None:
            _cache.after_step(step, values, ctx.state, token)

    def error(
        self, step: Step, values: dict[str, Any], ctx: RunContext, token: Any, exc: BaseException
    ) -> None:
        if type(token) is _Lead:
            _land(token.signature, token.item, False)


def _follow(item: Any, action: list[Any], flight: _Flight | None) -> bool:
    """Take the leader's result as a hit: from the cache (a private copy), or from the leader's
    values when its write did not reach the store; False when the leader failed."""
    keys = [key for _, key in action]
    found = item.cache.get_many(keys)
    if len(found) != len(keys):
        if flight is None or not flight.ok:
            return False
        source = flight.leader.values
        found = {key: source[name] for name, key in action}
    values = item.values
    for name, key in action:
        values[name] = found[key]
    _cache.loaded(item, action)
    return True


def _on_event_loop() -> bool:
    return asyncio._get_running_loop() is not None


LAYER = Entry("cache", "around", field="cache", make=CacheLayer)
