"""Why did it miss?  A report of which nodes a run or map would load from the cache, which it
would compute, and what changed for those it would compute.

A key is a digest of a node's static part (its code, ``cache_version``, the environment) and the
tokens of what it reads (inputs, upstream outputs' keys), so a miss means one of those changed.
To name *which*, the cache keeps one small **record** per node and code version: the digest of
the node's function and of every helper and class it reaches, by qualified name.  Records are
written at most once per node, cache object and code version (when a run or map starts), so
runs pay one lookup per call for them; items pay nothing.  Records live beside the
entries (``put_record``/``get_record``: they are not entries and do not count in ``len``); a
cache without those methods still gets hit/miss, without the code part of reasons.

:func:`explain` signs each step the way a run would, looks its keys up and names, for a miss, in
this order: the function or helper whose code changed since the record, an upstream node that
misses, or the inputs the node reads (a value with no stored entry).
"""

from __future__ import annotations

import dataclasses
import functools
import weakref
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import xxhash

from .base import CacheWriteError
from .code import code_parts
from .keys import qualified_name
from .signatures import CACHED, NESTED, CallInfo, cache_plan

if TYPE_CHECKING:
    from ..execution.plan import Plan

_digest_of = xxhash.xxh3_128_digest

#: id of a cache -> (a reference to it, the (clear count, static digests) it has records for)
_recorded: dict[int, tuple[Any, set[tuple[int, tuple[bytes | None, ...]]]]] = {}


def record_key(step: Any, static: bytes) -> bytes:
    """Where the record of ``step``'s node at code version ``static`` is kept (17 bytes: no
    entry key has that length)."""
    return b"W" + _digest_of(b"why:" + step.name.encode() + b"\0" + static)


def latest_key(step: Any) -> bytes:
    """Where the static digest of ``step``'s node's latest record is kept."""
    node = step.node
    return b"L" + _digest_of(b"why:" + step.name.encode() + qualified_name(node.func).encode())


def note_call(plan: Plan, call: CallInfo, cache: Any) -> None:
    """Keep a record of each cached node of ``plan`` in ``cache`` (once per cache object, code
    version and :meth:`clear`: afterwards a dictionary lookup per call)."""
    put = getattr(cache, "put_record", None)
    if put is None:
        return
    mark = (getattr(cache, "records_epoch", 0), call.statics)
    key = id(cache)
    seen = _recorded.get(key)
    if seen is None or seen[0]() is not cache:  # a new cache (or a dead one's id reused)
        try:
            owner: Any = weakref.ref(cache, functools.partial(_forget, key))
        except TypeError:  # a cache that cannot be weakly referenced: kept alive here
            owner = _Strong(cache)
        seen = _recorded[key] = (owner, set())
    elif mark in seen[1]:
        return
    seen[1].add(mark)
    for step, static in zip(plan.steps, call.statics):
        if static is None:
            continue
        try:
            parts = code_parts(step.node.__wrapped__)
            put(record_key(step, static), {"node": step.name, "code": parts})
            put(latest_key(step), static)
        except (CacheWriteError, OSError):
            return  # a store that refuses writes: no explanations, never a failed run


def _forget(key: int, _: Any) -> None:
    _recorded.pop(key, None)


class _Strong:
    """A strong reference that answers like a weak one."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __call__(self) -> Any:
        return self.value


@dataclasses.dataclass(frozen=True)
class CacheRow:
    """One node of one item: ``status`` is ``"hit"``, ``"miss"`` or ``"uncached"``."""

    node: str
    item: int | None
    status: str
    reason: str


class CacheReport:
    """What :meth:`Pipeline.explain_cache` returns: printable, and iterable as :class:`CacheRow`
    rows (one per node and item, in plan order)."""

    def __init__(self, rows: list[CacheRow]) -> None:
        self.rows = rows

    def __iter__(self) -> Iterator[CacheRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> CacheRow:
        return self.rows[index]

    def __str__(self) -> str:
        header = ("node", "item", "status", "reason")
        table = [header] + [
            (r.node, "-" if r.item is None else str(r.item), r.status, r.reason) for r in self.rows
        ]
        widths = [max(len(row[i]) for row in table) for i in range(3)]
        lines = [
            "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths)) + "  " + row[3]
            for row in table
        ]
        return "\n".join(line.rstrip() for line in lines)

    def __repr__(self) -> str:
        counts = {s: sum(r.status == s for r in self.rows) for s in ("hit", "miss", "uncached")}
        return "CacheReport(" + ", ".join(f"{k}={v}" for k, v in counts.items()) + ")"


def explain(
    plan: Plan, items: Sequence[Mapping[str, Any]], cache: Any, mapped: bool
) -> CacheReport:
    """The report for running ``plan`` on each of ``items`` against ``cache`` (nothing runs)."""
    cp = cache_plan(plan)
    call = CallInfo(plan, cp)
    code_reasons = _code_reasons(plan, call, cache)
    rows: list[CacheRow] = []
    for index, values in enumerate(items):
        rows.extend(_explain_item(plan, cp, call, cache, values, code_reasons, index, mapped))
    return CacheReport(rows)


def _code_reasons(plan: Plan, call: CallInfo, cache: Any) -> list[str | None]:
    """Per step: what changed in its code since its latest record (``None``: nothing known)."""
    reasons: list[str | None] = []
    for step, static in zip(plan.steps, call.statics):
        if static is None:
            reasons.append(None)
            continue
        latest = _read(cache, latest_key(step))
        if latest is None or latest == static:
            reasons.append(None)
            continue
        old = _read(cache, record_key(step, latest))
        now = code_parts(step.node.__wrapped__)
        reasons.append(_code_change(step, old["code"] if isinstance(old, dict) else None, now))
    return reasons


def _code_change(step: Any, old: dict[str, str] | None, now: dict[str, str]) -> str:
    if old is None:
        return "its code changed since the last stored entry"
    own = qualified_name(step.node.__wrapped__)
    changed = [name for name in now if name in old and old[name] != now[name]]
    if own in changed:
        return f"function {own} changed"
    if changed:
        return "helper " + ", ".join(sorted(changed)) + " changed"
    added = sorted(set(now) - set(old))
    if added:
        return "it now uses " + ", ".join(added)
    removed = sorted(set(old) - set(now))
    if removed:
        return "it no longer uses " + ", ".join(removed)
    return "its cache_version or the Python/hypernodes cache format changed"


def _read(cache: Any, key: bytes) -> Any:
    get = getattr(cache, "get_record", None)
    if get is None:
        return None
    try:
        return get(key)
    except Exception:  # an unreadable record: the reason is only less precise
        return None


def _explain_item(
    plan: Plan,
    cp: Any,
    call: CallInfo,
    cache: Any,
    values: Mapping[str, Any],
    code_reasons: list[str | None],
    index: int,
    mapped: bool,
) -> list[CacheRow]:
    tokens: dict[str, bytes | None] = {}
    keys: dict[str, bytes | None] = {}  # output name -> its key (None: cannot be signed)
    status: dict[str, str] = {}  # output name -> the status of the step making it
    rows = []
    item = index if mapped else None
    for i, step in enumerate(plan.steps):
        reason, signature = _sign(cp, call, i, values, tokens, keys, status)
        names = [cp.names[j] for j in cp.outs[i]]
        if signature is None:
            state = "uncached"
        else:
            wanted = [signature + cp.suffixes[j] for j in cp.outs[i]]
            found = cache.get_many(wanted)
            state = "hit" if len(found) == len(wanted) else "miss"
            if state == "miss":
                reason = code_reasons[i] or _input_reason(plan, cp, i, status)
            else:
                reason = "stored"
        for j, name in zip(cp.outs[i], names):
            keys[name] = None if signature is None else signature + cp.suffixes[j]
            status[name] = state
        rows.append(CacheRow(step.name, item, state, reason))
    return rows


def _sign(
    cp: Any,
    call: CallInfo,
    i: int,
    values: Mapping[str, Any],
    tokens: dict[str, bytes | None],
    keys: dict[str, bytes | None],
    status: dict[str, str],
) -> tuple[str, bytes | None]:
    """Step ``i``'s signature as a run computes it, or a reason it has none."""
    kind = cp.kinds[i]
    if kind == NESTED:
        return "a nested pipeline: its own nodes are cached one by one", None
    if kind != CACHED:
        return "cache=False", None
    static = call.statics[i]
    if static is None:
        return "its function cannot be hashed", None
    parts = [static]
    for key in cp.args[i]:
        if key in cp.producer:
            found = keys.get(key)
            if found is None:
                return f"reads {key!r} of a node not cached (known once that node runs)", None
            parts.append(found)
            continue
        if key in cp.fixed:
            token = call.bound.get(key)
        else:
            if key not in tokens:
                tokens[key] = call.token(key, values[key])
            token = tokens[key]
        if token is None:
            kind_name = call.unhashable.get(key, "value")
            return f"input {key!r} (a {kind_name}) has no deterministic hash", None
        parts.append(token)
    return "", _digest_of(b"".join(parts))


def _input_reason(plan: Plan, cp: Any, i: int, status: dict[str, str]) -> str:
    upstream = [key for key in cp.args[i] if key in cp.producer and status.get(key) != "hit"]
    if upstream:
        producers = sorted({plan.steps[cp.producer[key]].name for key in upstream})
        return "upstream node " + ", ".join(repr(p) for p in producers) + " changed"
    inputs = [key for key in cp.args[i] if key not in cp.producer and not key.startswith("\0")]
    if not inputs:
        return "no entry stored for it yet"
    names = ", ".join(repr(k) for k in inputs)
    return f"input {names}: a value with no stored entry"
