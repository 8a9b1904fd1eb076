"""The cache's side of the two plan hooks, ``steps_for`` and ``run_step``, for one item.

``steps_for`` signs every step it can before anything runs (signatures depend on code and input
tokens, never on computed values), then walks back from the requested outputs: a needed step
whose needed outputs are all stored is a hit and only those outputs are loaded; a miss needs its
own inputs, and so on.  Steps nobody needs are neither run nor loaded.  It returns the steps that
must run, in plan order, and the item's context holding an :class:`ItemState` for the cache
layer (``layers.cache``) around each step:

- a signed miss runs and writes its outputs under their keys;
- a step that cannot be signed up front (``cache=False``, a nested pipeline, an input without a
  deterministic hash) runs uncached; if later steps read its outputs, those outputs are hashed by
  value so that later steps can still be signed;
- a step downstream of such a step is *pending*: it is signed once its inputs exist and then
  loaded (hit) or run and written (miss).

The per-call data (:class:`~hypernodes.cache.signatures.CallInfo`) and the per-item state live in
the :class:`~hypernodes.execution.context.RunContext` (``ctx.call``, ``ctx.state``), never in the item's
values, so any scheduler that calls the hooks (sequentially, from threads, in worker processes)
gets the same behaviour and the values hold the user's names only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import xxhash

from .base import CacheWriteError, warn_once
from .explain import note_call
from .keys import Unhashable, value_token
from .signatures import (
    NESTED,
    CachePlan,
    CallInfo,
    cache_plan,
    output_suffix,
    warn_unhashable_input,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..execution.context import RunContext
    from ..execution.plan import Plan
    from ..execution.step import Step

_digest_of = xxhash.xxh3_128_digest

# what the cache layer does with a step that is not a plain signed miss (those map to their writes)
_PENDING, _UNSIGNED = 1, 2
_WRITE = 0


class ItemState:
    """What the cache layer needs for one item: the cache, the tokens so far, an action per step."""

    __slots__ = ("cache", "call", "cp", "values", "tok", "todo", "need", "keys", "seen")

    def __init__(
        self, cache: Any, call: CallInfo, cp: Any, values: dict[str, Any], seen: int
    ) -> None:
        self.cache = cache
        self.call = call
        self.cp = cp
        #: the item's values (a single-flight follower may take a leader's outputs from them)
        self.values = values
        #: key -> token of inputs and step outputs, for signing pending steps (``None``: no hash)
        self.tok: dict[str, Any] | None = None
        #: first output of a step -> its writes ``[(name, key), ...]``, or ``_PENDING``/``_UNSIGNED``;
        #: ``None`` for a cold item: every step is a signed miss writing its ``keys`` (see
        #: :func:`action_of`)
        self.todo: dict[str, Any] | None = None
        #: numbers of the outputs that the caller or a step that runs needs
        self.need: set[int] = _NO_NEED
        #: every output key of the item, by output number
        self.keys: Any = None
        #: :data:`LANDINGS` when the item looked its keys up (see ``layers.cache``)
        self.seen = seen


_NO_NEED: set[int] = set()

#: how many computations have landed (single flight, ``layers.cache``): an item that sees more
#: than when it looked its keys up looks again before computing one
LANDINGS = [0]


def action_of(item: ItemState, first: str, default: Any = None) -> Any:
    """What the cache layer does with the step whose first output is ``first``: its writes
    ``[(name, key), ...]`` (a signed miss), ``_PENDING`` or ``_UNSIGNED``."""
    todo = item.todo
    if todo is None:
        cp, keys = item.cp, item.keys
        return [(cp.names[j], keys[j]) for j in cp.outs[cp.index[first]]]
    return todo.get(first, default)


def prepare_call(plan: Plan, shared: dict[str, Any], ctx: RunContext) -> RunContext:
    """The context for one map call of ``plan``: code digests, and the tokens of the inputs in
    ``shared`` (those every item has), computed here once for all items."""
    cp = cache_plan(plan)
    call = CallInfo(plan, cp)
    call.remember(shared, cp.value_keys)
    note_call(plan, call, ctx.cache)
    return ctx.for_call(call)


def steps_for(
    plan: Plan,
    values: dict[str, Any],
    ctx: RunContext,
    signed: Any = None,
    fetched: dict[bytes, Any] | None = None,
    reuse: RunContext | None = None,
) -> tuple[Sequence[Step], RunContext]:
    """Sign this item's steps, load the hits that are needed; the steps that must run, and the
    context to run them in (holding the item's :class:`ItemState`).

    ``signed`` and ``fetched`` come from :func:`prefetch`: the item's keys, and what one read
    for a whole batch of items found.  ``reuse`` is an item context of ``ctx`` that a loop
    running one item at a time hands back item after item: the item's state is put in it
    instead of a new context being made for each item.
    """
    cp = plan.cache_plan or cache_plan(plan)
    call = ctx.call
    if call is None:  # Pipeline.run: one item, its own call
        call = CallInfo(plan, cp)
        note_call(plan, call, ctx.cache)
        ctx = ctx.for_call(call)
    cache = ctx.cache
    seen = LANDINGS[0]  # landings before this item looks its keys up (single flight)

    keys: Any = signed or (call.signable and cp.signer(values, call))
    item: ItemState | None = None
    if keys:
        status: Any = None  # every step is a signed, cacheable step
        wanted: Any = cp.pick_requested(keys)
    else:
        item, keys, status, wanted = _signed_generic(plan, cp, call, values, cache, seen)
    requested = cp.requested
    found = _lookup(cache, wanted, signed, fetched)
    names = cp.names
    if len(found) == len(requested):  # every requested output is stored: nothing runs
        for j in requested:
            values[names[j]] = found[keys[j]]
        return (), ctx

    if item is None:
        item = ItemState(cache, call, cp, values, seen)
    item.keys = keys
    item_ctx = _item_context(ctx, item, reuse)
    if status is None and not found and cp.complete:
        # A cold item that asks for every output: everything runs, nothing more to look up.
        return plan.steps, item_ctx
    steps = plan.steps
    run = _walk_back(item, status, found, set(wanted))
    return [steps[i] for i in reversed(run)], item_ctx


def _signed_generic(
    plan: Plan, cp: CachePlan, call: CallInfo, values: dict[str, Any], cache: Any, seen: int
) -> tuple[ItemState, Any, Any, list[bytes]]:
    """An item whose steps are not all signed ahead (uncacheable steps, or keys that depend on
    computed values): its state, keys, per-step status and the requested keys that exist."""
    item = ItemState(cache, call, cp, values, seen)
    keys, status = _sign_generic(plan, cp, call, values, item)
    return item, keys, status, [keys[j] for j in cp.requested if keys[j] is not None]


def _item_context(ctx: RunContext, item: ItemState, reuse: RunContext | None) -> RunContext:
    """The context an item's steps run in: ``reuse`` (a loop's context handed back item after
    item) when it belongs to this call, else a new one holding the item's state."""
    if reuse is not None and reuse.call is ctx.call:
        reuse.state = item
        return reuse
    return ctx.with_state(item)


def _lookup(
    cache: Any, wanted: Sequence[bytes], signed: Any, fetched: dict[bytes, Any] | None
) -> dict[bytes, Any]:
    """What the cache holds of the ``wanted`` keys (from a batch read when there was one)."""
    if fetched is not None and signed:
        found = {k: fetched[k] for k in wanted if k in fetched}
        if len(found) < len(wanted):  # written since the batch was read (a repeated item)?
            found.update(cache.waiting([k for k in wanted if k not in found]))
        return found
    return cache.get_many(wanted) if wanted else {}


def _walk_back(
    item: ItemState, status: Any, found: dict[bytes, Any], looked: set[bytes]
) -> list[int]:
    """From the requested outputs back: load the needed hits into the item's values, note what
    each step that must run does (``item.todo``), and return those steps' numbers, last first.

    ``found`` holds what was read so far, ``looked`` every key already asked of the cache.
    """
    cp, cache, keys, values = item.cp, item.cache, item.keys, item.values
    names, outs, feeds = cp.names, cp.outs, cp.feeds
    need = item.need = set(cp.requested)
    todo = item.todo = {}
    run: list[int] = []
    for i in range(cp.n - 1, -1, -1):
        mine = outs[i]
        here = [j for j in mine if j in need]
        if not here:
            continue
        state = _WRITE if status is None else status[i]
        if state == _WRITE:
            ks = [keys[j] for j in here]
            ask = [k for k in ks if k not in looked]
            if ask:
                looked.update(ask)
                found.update(cache.get_many(ask))
            if all(k in found for k in ks):  # a hit: load what is needed of it
                for j, k in zip(here, ks):
                    values[names[j]] = found[k]
                continue
            todo[names[mine[0]]] = [(names[j], keys[j]) for j in mine]
        else:
            todo[names[mine[0]]] = state
        run.append(i)
        need.update(feeds[i])
    return run


_MISSING: Any = object()


def prefetch(
    plan: Plan, chunk: Sequence[dict[str, Any]], call: CallInfo | None
) -> tuple[list[Any], list[bytes]]:
    """Sign a batch of items: each item's keys (None where the generic signing applies), and
    the keys they request, to read in one ``get_many`` for :func:`steps_for`."""
    cp = plan.cache_plan or cache_plan(plan)
    signer, pick = cp.signer, cp.pick_requested
    signed: list[Any] = []
    wanted: list[bytes] = []
    for values in chunk:
        keys = call.signable and signer(values, call) if call is not None else None
        signed.append(keys or None)
        if keys:
            wanted.extend(pick(keys))
    return signed, wanted


def leading_hits(
    plan: Plan, chunk: Sequence[dict[str, Any]], call: CallInfo | None, cache: Any
) -> int:
    """How many of the first items of ``chunk`` have every requested output stored (one read
    for the whole chunk); 0 when the plan cannot be signed before it runs."""
    signed, wanted = prefetch(plan, chunk, call)
    if not wanted:
        return 0
    fetched = cache.get_many(wanted)
    pick = (plan.cache_plan or cache_plan(plan)).pick_requested
    for n, keys in enumerate(signed):
        if not keys or not all(key in fetched for key in pick(keys)):
            return n
    return len(signed)


def _sign_generic(
    plan: Plan, cp: Any, call: CallInfo, values: dict[str, Any], item: ItemState
) -> tuple[list[bytes | None], list[int]]:
    """Sign what can be signed when some step has no static digest or some input no token."""
    memo, bound = call.memo, call.bound
    tok: dict[str, Any] = {}
    for key in cp.value_keys:
        if key in bound:  # a default bound into its step, hashed once for the call
            tok[key] = bound[key]
            continue
        value = values[key]
        known = memo.get(key)
        tok[key] = known[1] if known is not None and known[0] is value else call.token(key, value)
    keys: list[bytes | None] = [None] * len(cp.names)
    status: list[int] = []
    for i, static in enumerate(call.statics):
        state = _UNSIGNED
        if static is not None:
            parts = [static]
            state = _WRITE
            for key in cp.args[i]:
                token = tok.get(key, _MISSING)
                if token is None:
                    _warn_unhashable(plan, i, call, key)
                    state = _UNSIGNED
                    break
                if token is _MISSING:
                    state = _PENDING
                else:
                    parts.append(token)
            if state == _WRITE:
                sig = _digest_of(b"".join(parts))
                for j in cp.outs[i]:
                    tok[cp.names[j]] = keys[j] = sig + cp.suffixes[j]
        status.append(state)
    item.tok = tok
    return keys, status


SKIP: Any = object()


def before_step(
    plan: Plan, step: Step, values: dict[str, Any], item: ItemState | None, whole: bool = False
) -> Any:
    """What to do around ``step`` of the item whose state is ``item`` (``ctx.state``): ``SKIP``
    (a pending step turned out a hit and is loaded), or an action to hand to :func:`after_step`
    once the step has run.

    With ``whole`` (no callbacks wait for its events), a nested pipeline step is keyed as a
    whole by its code and inputs: a hit loads its outputs without running it.
    """
    if item is None:
        return None
    action = action_of(item, step.store[0], _UNSIGNED)
    if action == _PENDING:
        action = _sign_pending(plan, item, step, values)
        if action is None:
            return SKIP
    elif action == _UNSIGNED and whole and item.tok is not None:
        action = _whole_step(item, step, values)
        if action is None:
            return SKIP
    return action


class _Whole(list):  # type: ignore[type-arg]
    """The writes ``[(name, key), ...]`` of a nested step keyed as a whole (its outputs are
    still hashed by value for the steps that read them, so their keys do not depend on it)."""

    __slots__ = ()


def _whole_step(item: ItemState, step: Step, values: dict[str, Any]) -> Any:
    """Key a nested step as a whole; load its outputs on a hit (returns None), else its writes."""
    cp, tok = item.cp, item.tok
    assert tok is not None
    i = cp.index[step.store[0]]
    if cp.kinds[i] != NESTED:
        return _UNSIGNED
    static = item.call.whole(i, step)
    if static is None:
        return _UNSIGNED
    parts = [static]
    for key in cp.args[i]:
        token = tok.get(key)
        if token is None:
            return _UNSIGNED
        parts.append(token)
    sig = _digest_of(b"".join(parts))
    writes = _Whole((name, sig + output_suffix(n)) for n, name in enumerate(step.store))
    found = item.cache.get_many([key for _, key in writes])
    if len(found) == len(writes):
        for name, key in writes:
            values[name] = found[key]
        _hash_outputs(item, step, values)
        return None
    return writes


def after_step(step: Step, values: dict[str, Any], item: ItemState, action: Any) -> None:
    """Store the outputs of a step that ran (or give an unsigned step's outputs value tokens)."""
    if action is None:
        return
    if type(action) is _Whole:
        store = item.cache.set
        for name, key in action:
            try:
                store(key, values[name])
            except CacheWriteError as exc:
                unstored(step, name, values[name], exc)
        _hash_outputs(item, step, values)
        return
    if type(action) is not list:  # _UNSIGNED
        _hash_outputs(item, step, values)
        return
    write(item, step, values, action)


def write(item: ItemState, step: Step, values: dict[str, Any], action: list[Any]) -> None:
    """Store the outputs of a signed miss that ran (and give later steps their keys)."""
    store = item.cache.set
    for name, key in action:
        try:
            store(key, values[name])
        except CacheWriteError as exc:
            unstored(step, name, values[name], exc)
    tok = item.tok
    if tok is not None:
        for name, key in action:
            tok[name] = key


def loaded(item: ItemState | None, action: list[Any]) -> None:
    """A signed miss whose outputs were put in the item's values by someone else (single
    flight): record their keys, as a write would, for the steps signed later."""
    tok = item.tok if item is not None else None
    if tok is not None:
        for name, key in action:
            tok[name] = key


def unstored(step: Step, name: str, value: Any, exc: CacheWriteError) -> None:
    """Warn (once per node and type) that an output could not be stored."""
    warn_once(
        ("write", id(step.node), type(value).__name__),
        f"output {name!r} of node {step.name!r} is not cached: {exc}",
    )


def _sign_pending(plan: Plan, item: ItemState, step: Step, values: dict[str, Any]) -> Any:
    """Sign a step whose inputs now exist; load it if it is a hit (returns ``None`` then)."""
    cp, tok, call = item.cp, item.tok, item.call
    assert tok is not None
    i = cp.index[step.store[0]]
    parts = [call.statics[i]]
    for key in cp.args[i]:
        token = tok.get(key)
        if token is None:
            _warn_unhashable(plan, i, call, key)
            return _UNSIGNED
        parts.append(token)
    sig = _digest_of(b"".join(parts))
    writes = [(cp.names[j], sig + cp.suffixes[j]) for j in cp.outs[i]]
    wanted = [(cp.names[j], sig + cp.suffixes[j]) for j in cp.outs[i] if j in item.need]
    found = item.cache.get_many([key for _, key in wanted])
    if len(found) == len(wanted):
        for name, key in wanted:
            values[name] = found[key]
        for name, key in writes:
            tok[name] = key
        return None
    return writes


def _hash_outputs(item: ItemState, step: Step, values: dict[str, Any]) -> None:
    """Give the outputs of an unsigned step tokens by value, for the steps that read them."""
    cp, tok = item.cp, item.tok
    if tok is None:
        return
    for j in cp.outs[cp.index[step.store[0]]]:
        if j not in cp.read:
            continue
        name = cp.names[j]
        value = values[name]
        try:
            tok[name] = value_token(value)
        except Unhashable as exc:
            tok[name] = None
            item.call.unhashable[name] = exc.type_name


def _warn_unhashable(plan: Plan, i: int, call: CallInfo, key: str) -> None:
    name = key.rpartition(":")[2] if key.startswith("\x00") else key  # a bound default's name
    warn_unhashable_input(plan.steps[i], name, call.unhashable.get(key, "?"))
