"""The cache's side of the two plan hooks, ``steps_for`` and ``run_step``, for one item.

``steps_for`` signs every step it can before anything runs (signatures depend on code and input
tokens, never on computed values), then walks back from the requested outputs: a needed step
whose needed outputs are all stored is a hit and only those outputs are loaded; a miss needs its
own inputs, and so on.  Steps nobody needs are neither run nor loaded.  It returns the steps that
must run, in plan order, and leaves an :class:`ItemState` in ``values`` for ``run_step``:

- a signed miss runs and writes its outputs under their keys;
- a step that cannot be signed up front (``cache=False``, a nested pipeline, an input without a
  deterministic hash) runs uncached; if later steps read its outputs, those outputs are hashed by
  value so that the later steps can still be signed;
- a step downstream of such a step is *pending*: ``run_step`` signs it once its inputs exist and
  then loads it (hit) or runs and writes it (miss).

Everything per item lives in ``values`` under private keys, so any scheduler that calls the hooks
(sequentially, from threads, in worker processes) gets the same behaviour.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import xxhash

from .base import CacheWriteError, warn_once
from .keys import Unhashable, value_token
from .signatures import CallInfo, cache_plan

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..context import RunContext
    from ..plan import Plan, Step

_digest_of = xxhash.xxh3_128_digest

#: private keys of a values dict (a NUL byte never starts a user's name)
CALL_KEY = "\x00cache:call"
STATE_KEY = "\x00cache:item"

# what run_step does with a step that is not a plain signed miss (those map to their writes)
_PENDING, _UNSIGNED = 1, 2
_WRITE = 0


class ItemState:
    """What ``run_step`` needs for one item: the cache, the tokens so far, an action per step."""

    __slots__ = ("cache", "call", "cp", "tok", "todo", "need")

    def __init__(self, cache: Any, call: CallInfo, cp: Any) -> None:
        self.cache = cache
        self.call = call
        self.cp = cp
        #: key -> token of inputs and step outputs, for signing pending steps (``None``: no hash)
        self.tok: dict[str, Any] | None = None
        #: first output of a step -> its writes ``[(name, key), ...]``, or ``_PENDING``/``_UNSIGNED``
        self.todo: dict[str, Any] = {}
        #: numbers of the outputs that the caller or a step that runs needs
        self.need: set[int] = set()


def prepare_map(plan: Plan, seeded: dict[str, Any]) -> dict[str, Any]:
    """Attach per-call cache data to the values every item of a map is copied from.

    Code digests and the tokens of inputs shared by all items are computed here, once.
    """
    cp = cache_plan(plan)
    call = CallInfo(plan, cp)
    call.remember(seeded, cp.value_keys)
    seeded = dict(seeded)
    seeded[CALL_KEY] = call
    return seeded


def steps_for(plan: Plan, values: dict[str, Any], ctx: RunContext) -> Sequence[Step]:
    """Sign this item's steps, load the hits that are needed, return the steps that must run."""
    cp = plan.cache_plan or cache_plan(plan)
    call = values.get(CALL_KEY)
    if call is None:
        call = CallInfo(plan, cp)
    cache = ctx.cache
    item = ItemState(cache, call, cp)

    keys: Any = call.signable and cp.signer(values, call)
    if keys:
        status: Any = None  # every step is a signed, cacheable step
    else:
        keys, status = _sign_generic(plan, cp, call, values, item)

    requested = cp.requested
    wanted = [keys[j] for j in requested if keys[j] is not None]
    found = cache.get_many(wanted) if wanted else {}
    names = cp.names
    if len(found) == len(requested):  # every requested output is stored: nothing runs
        for j in requested:
            values[names[j]] = found[keys[j]]
        return ()

    if status is None and not found and cp.complete:
        # A cold item that asks for every output: everything runs, nothing more to look up.
        item.todo = {first: [(names[j], keys[j]) for j in mine] for first, mine in cp.firsts}
        values[STATE_KEY] = item
        return plan.steps

    need = item.need
    need.update(requested)
    looked = set(wanted)  # keys already asked of the cache
    todo = item.todo
    run: list[int] = []
    outs, feeds = cp.outs, cp.feeds
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
            hit = True
            for k in ks:
                if k not in found:
                    hit = False
                    break
            if hit:
                for j, k in zip(here, ks):
                    values[names[j]] = found[k]
                continue
            todo[names[mine[0]]] = [(names[j], keys[j]) for j in mine]
        else:
            todo[names[mine[0]]] = state
        run.append(i)
        need.update(feeds[i])
    values[STATE_KEY] = item
    steps = plan.steps
    return [steps[i] for i in reversed(run)]


_MISSING: Any = object()


def _sign_generic(
    plan: Plan, cp: Any, call: CallInfo, values: dict[str, Any], item: ItemState
) -> tuple[list[bytes | None], list[int]]:
    """Sign what can be signed when some step has no static digest or some input no token."""
    memo = call.memo
    tok: dict[str, Any] = {}
    for key in cp.value_keys:
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


def run_step(plan: Plan, step: Step, values: dict[str, Any], ctx: RunContext) -> bool:
    """Run ``step`` as ``steps_for`` decided: write a miss, sign a pending step, hash outputs.

    Returns False when a pending step turned out to be a hit and was loaded instead of run.
    """
    item: ItemState | None = values.get(STATE_KEY)
    if item is not None:
        action = item.todo.get(step.store[0])
        if type(action) is list:  # the common case, inlined: a signed miss
            step.run(values, ctx)
            write(item, step, values, action)
            return True
    action = before_step(plan, step, values)
    if action is SKIP:
        return False
    step.run(values, ctx)
    after_step(step, values, action)
    return True


SKIP: Any = object()


def before_step(plan: Plan, step: Step, values: dict[str, Any]) -> Any:
    """What to do around ``step``: ``SKIP`` (a pending step turned out a hit and is loaded), or
    an action to hand to :func:`after_step` once the step has run.

    :func:`run_step` is ``before_step``, run, ``after_step``; a scheduler that must await the step
    itself (an event loop) calls the two halves around its own call.
    """
    item: ItemState | None = values.get(STATE_KEY)
    if item is None:
        return None
    action = item.todo.get(step.store[0], _UNSIGNED)
    if action == _PENDING:
        action = _sign_pending(plan, item, step, values)
        if action is None:
            return SKIP
    return action


def after_step(step: Step, values: dict[str, Any], action: Any) -> None:
    """Store the outputs of a step that ran (or give an unsigned step's outputs value tokens)."""
    if action is None:
        return
    item: ItemState = values[STATE_KEY]
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
            value = values[name]
            warn_once(
                ("write", id(step.node), type(value).__name__),
                f"output {name!r} of node {step.name!r} is not cached: {exc}",
            )
    tok = item.tok
    if tok is not None:
        for name, key in action:
            tok[name] = key


def loaded(values: dict[str, Any], action: list[Any]) -> None:
    """A signed miss whose outputs were put in ``values`` by someone else (single flight):
    record their keys, as a write would, for the steps signed later."""
    item: ItemState | None = values.get(STATE_KEY)
    tok = item.tok if item is not None else None
    if tok is not None:
        for name, key in action:
            tok[name] = key


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
    step = plan.steps[i]
    type_name = call.unhashable.get(key, "?")
    shown = key.rpartition(":")[2] if key.startswith("\x00") else key
    warn_once(
        ("input", id(step.node), type_name),
        f"node {step.name!r} runs uncached: its input {shown!r} (a {type_name}) has no "
        "deterministic hash; define __cache_key__() on the type, or teach the cache with "
        "hypernodes.cache.register_hasher(type, fn), to make it cacheable",
    )
