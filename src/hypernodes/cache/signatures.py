"""What a plan's signatures are made of: the per-plan structure and the per-call static digests.

``signature(step) = H(static(step), token(arg) for each argument)`` where ``static`` covers the
environment, the node's code and its ``cache_version``, and an argument's token is either the
token of an input value (:func:`~hypernodes.cache.keys.value_token`) or the key of the upstream
output it reads (``signature(upstream) + output index``).  A cache key is such an output key.

:class:`CachePlan` is derived once per compiled plan (which step reads what); :class:`CallInfo`
once per ``run``/``map`` call (code digests are revalidated per call, so a helper redefined in a
notebook between two calls is noticed).
"""

from __future__ import annotations

import sys
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import xxhash

from ..model.node import Node
from .base import warn_once
from .code import callable_digest
from .keys import FAST_TOKENS, Unhashable, value_token

if TYPE_CHECKING:
    from ..execution.plan import Plan

_digest_of = xxhash.xxh3_128_digest

#: bump when the meaning of keys or the entry format changes (3: exact pandas values, time zones,
#: class digests in instance tokens, wider code digests - entries keyed the old way must not hit)
FORMAT_VERSION = 3
ENV = _digest_of(
    b"hypernodes-cache:%d:%s:%d.%d"
    % (FORMAT_VERSION, sys.implementation.name.encode(), *sys.version_info[:2])
)

#: step kinds
CACHED, UNCACHED, NESTED = 0, 1, 2


def output_suffix(index: int) -> bytes:
    """The suffix that turns a step signature into the key of its ``index``-th output."""
    return index.to_bytes(2, "big")


class CachePlan:
    """The wiring a cache needs from a plan, as names and indices (cheap to pickle).

    Outputs are numbered globally in plan order (``names[j]``, ``suffixes[j]``); ``outs[i]`` are
    the numbers of step ``i``'s stored outputs and ``feeds[i]`` those of the step outputs it reads.
    """

    __slots__ = (
        "n",
        "index",
        "args",
        "names",
        "suffixes",
        "outs",
        "feeds",
        "kinds",
        "value_keys",
        "producer",
        "requested",
        "read",
        "complete",
        "firsts",
        "pick_requested",
        "fixed",
        "_signer",
    )

    def __init__(self, plan: Plan) -> None:
        number: dict[str, int] = {}  # output name -> global output number
        producer: dict[str, int] = {}
        value_keys: dict[str, None] = {}
        names: list[str] = []
        suffixes: list[bytes] = []
        args, outs, feeds, kinds = [], [], [], []
        fixed: dict[str, Any] = {}
        for i, step in enumerate(plan.steps):
            arg_keys = step.arg_keys
            if step.fixed:  # defaults bound into the step sign in their places, like inputs
                arg_keys = _with_bound(i, step, fixed)
            for key in arg_keys:
                if key not in producer:
                    value_keys[key] = None
            feeds.append(tuple(number[key] for key in arg_keys if key in number))
            item = step.node
            if isinstance(item, Node):
                kinds.append(CACHED if item.cache else UNCACHED)
                positions = {name: j for j, name in enumerate(item.outputs)}
            else:
                kinds.append(NESTED)
                positions = {name: j for j, name in enumerate(step.store)}
            mine = []
            for name in step.store:
                number[name] = len(names)
                mine.append(len(names))
                names.append(name)
                suffixes.append(output_suffix(positions[name]))
                producer[name] = i
            outs.append(tuple(mine))
            args.append(arg_keys)
        self.n = len(plan.steps)
        #: first stored output of a step -> its index (how ``run_step`` finds a step)
        self.index = {step.store[0]: i for i, step in enumerate(plan.steps)}
        self.args: tuple[tuple[str, ...], ...] = tuple(args)
        self.names = tuple(names)
        self.suffixes = tuple(suffixes)
        self.outs: tuple[tuple[int, ...], ...] = tuple(outs)
        self.feeds: tuple[tuple[int, ...], ...] = tuple(feeds)
        self.kinds = tuple(kinds)
        #: keys of ``values`` that steps read and no step produces (inputs), and the names of
        #: the defaults bound into steps (see :func:`bound_key`)
        self.value_keys = tuple(value_keys)
        #: bound default name (:func:`bound_key`) -> its value
        self.fixed = fixed
        #: output name -> index of the step producing it
        self.producer = producer
        #: numbers of the requested outputs that some step produces (others are passed-in inputs)
        self.requested = tuple(number[name] for name in plan.output_names if name in number)
        #: numbers of the outputs some step reads
        self.read = frozenset(j for f in feeds for j in f)
        #: every stored output is requested (so every step is needed)
        self.complete = len(set(self.requested)) == len(names)
        #: (first output name, output numbers) per step
        self.firsts = tuple((names[mine[0]], mine) for mine in outs)
        #: ``pick_requested(keys)``: the keys of the requested outputs, from all the output keys
        self.pick_requested = _picker(self.requested, len(names))
        self._signer: Any = None

    @property
    def signer(self) -> Any:
        """``signer(values, call)``: every output key of an item, or ``None`` if some input has
        no token.  Generated Python for this plan, used when every step has a static digest."""
        if self._signer is None:
            self._signer = _make_signer(self)
        return self._signer

    def __getstate__(self) -> dict[str, Any]:
        return {
            k: getattr(self, k) for k in self.__slots__ if k not in ("_signer", "pick_requested")
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)
        self.pick_requested = _picker(self.requested, len(self.names))
        self._signer = None


def _picker(positions: tuple[int, ...], total: int) -> Any:
    """A function returning the elements at ``positions`` of a sequence, as a sequence."""
    if positions == tuple(range(total)):
        return lambda keys: keys
    if len(positions) == 1:
        (only,) = positions
        return lambda keys: (keys[only],)
    if not positions:
        return lambda keys: ()
    return itemgetter(*positions)


def _make_signer(cp: CachePlan) -> Any:
    """Generate straight-line code computing all output keys of one item (no loops, no dicts)."""
    lines = ["def signer(values, call):", "    memo = call.memo", "    S = call.statics"]
    if cp.fixed:
        lines.append("    bound = call.bound")
    token_of: dict[str, str] = {}
    for n, key in enumerate(cp.value_keys):
        var = token_of[key] = f"t{n}"
        if key in cp.fixed:  # a bound default: its token was taken once for the call
            lines += [
                f"    {var} = bound[{key!r}]",
                f"    if {var} is None:",
                "        return None",
            ]
            continue
        lines += [
            f"    v = values[{key!r}]",
            f"    m = memo.get({key!r})",
            "    if m is not None and m[0] is v:",
            f"        {var} = m[1]",
            "    else:",
            "        f = FAST(type(v))",  # ints, strings...: their token without a call chain
            f"        {var} = f(v) if f is not None else call.token({key!r}, v)",
            f"        if {var} is None:",
            "            return None",
        ]
    for i in range(cp.n):
        parts = [f"S[{i}]"]
        for key in cp.args[i]:
            parts.append(f"k{cp.names.index(key)}" if key in cp.producer else token_of[key])
        lines.append(f"    g = H({' + '.join(parts)})")
        for j in cp.outs[i]:
            lines.append(f"    k{j} = g + {cp.suffixes[j]!r}")
    lines.append(f"    return ({''.join(f'k{j}, ' for j in range(len(cp.names)))})")
    namespace: dict[str, Any] = {"H": _digest_of, "FAST": FAST_TOKENS.get}
    exec("\n".join(lines), namespace)  # code generated from names we hold
    return namespace["signer"]


def cache_plan(plan: Plan) -> CachePlan:
    """The plan's :class:`CachePlan`, derived on first use and kept on the plan."""
    found = plan.cache_plan
    if found is None:
        found = plan.cache_plan = CachePlan(plan)
    return found


class CallInfo:
    """Per ``run``/``map`` call: each step's static digest and the tokens of shared inputs.

    ``statics[i]`` is ``None`` for a step that cannot be signed before it runs (``cache=False``,
    a nested pipeline, a node whose code cannot be hashed).  ``memo`` maps a value key to
    ``(value, token)`` for inputs every item of a map shares, hashed once per call.
    """

    __slots__ = ("plan", "statics", "signable", "memo", "unhashable", "bound", "_wholes")

    def __init__(
        self, plan: Plan, cp: CachePlan, statics: tuple[bytes | None, ...] | None = None
    ) -> None:
        #: the plan this call runs (not pickled: a worker has its own copy)
        self.plan: Plan | None = plan
        #: step index -> the static digest of a nested step as a whole (see :meth:`whole`)
        self._wholes: dict[int, bytes | None] = {}
        self.statics = statics if statics is not None else _statics(plan, cp)
        #: every step has a static digest: the generated signer applies
        self.signable = None not in self.statics
        self.memo: dict[str, tuple[Any, bytes | None]] = {}
        #: value key -> type name, for inputs found unhashable (to name them in warnings)
        self.unhashable: dict[str, str] = {}
        #: the tokens of the defaults bound into steps, by :func:`bound_key` (hashed per call)
        self.bound = {key: self.token(key, value) for key, value in cp.fixed.items()}

    def __getstate__(self) -> dict[str, Any]:
        state = {k: getattr(self, k) for k in self.__slots__}
        state["plan"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)

    def shared_tokens(self) -> dict[str, bytes]:
        """The tokens of the inputs every item shares, by key, to send along with the items
        (a worker pairs them with its copies of those values: see :meth:`recall`)."""
        return {key: token for key, (_, token) in self.memo.items() if token is not None}

    def recall(self, values: dict[str, Any], tokens: dict[str, bytes]) -> None:
        """Take the ``tokens`` of shared inputs as those of the values in ``values`` (an item
        whose shared values are the same objects in every item of a chunk)."""
        for key, token in tokens.items():
            if key in values:
                self.memo[key] = (values[key], token)

    def remember(self, values: dict[str, Any], keys: tuple[str, ...]) -> None:
        """Hash the inputs among ``keys`` present in ``values`` once, for every item to reuse."""
        for key in keys:
            if key in values:
                value = values[key]
                self.memo[key] = (value, self.token(key, value))

    def token(self, key: str, value: Any) -> bytes | None:
        """``value``'s token, or ``None`` (remembering its type) if it cannot be hashed."""
        try:
            return value_token(value)
        except Unhashable as exc:
            self.unhashable[key] = exc.type_name
            return None

    def whole(self, i: int, step: Any) -> bytes | None:
        """The static digest of nested step ``step`` (number ``i``) taken as a whole, or None
        when it cannot be keyed that way (computed on first use in this call; see
        :func:`nested_static`)."""
        wholes = self._wholes
        if i not in wholes:
            wholes[i] = nested_static(step)
        return wholes[i]


def _statics(plan: Plan, cp: CachePlan) -> tuple[bytes | None, ...]:
    """Each step's static digest (its code, version and bound values), None where a step cannot
    be signed before it runs."""
    statics: list[bytes | None] = []
    for step, kind in zip(plan.steps, cp.kinds):
        if kind != CACHED:
            statics.append(None)
            continue
        node = step.node
        try:
            code = callable_digest(node.__wrapped__)  # the user's function, checked or not
            if node.batch_func is not None and node.per_item:  # a dual node: both functions
                code += callable_digest(node.batch_func)
            salt = value_token(node.cache_version)
        except Unhashable as exc:
            warn_once(
                ("code", id(node), exc.type_name),
                f"node {node.name!r} is not cached: its function cannot be hashed ({exc}); "
                "give it hashable state or define __cache_key__()",
            )
            statics.append(None)
            continue
        statics.append(_digest_of(ENV + code + b"%d;" % len(node.outputs) + salt))
    return tuple(statics)


def bound_key(i: int, name: str) -> str:
    """How the cache names the default of input ``name`` bound into step ``i`` (never a key of
    an item's values: a NUL byte never starts a user's name)."""
    return f"\x00default:{i}:{name}"


def _with_bound(i: int, step: Any, fixed: dict[str, Any]) -> tuple[str, ...]:
    """Step ``i``'s argument keys in call order, its bound defaults (recorded in ``fixed``)
    named by :func:`bound_key` in their places: a default signs like the same value passed in."""
    read = set(step.arg_keys)  # an input's key is its name
    bound = dict(step.fixed)
    keys = []
    for name in step.node.inputs:
        if name in read:
            keys.append(name)
        elif name in bound:
            key = bound_key(i, name)
            fixed[key] = bound[name]
            keys.append(key)
    return tuple(keys)


def warn_unhashable_input(step: Any, name: str, type_name: str) -> None:
    """Warn (once per node and type) that ``step`` runs uncached because of its input ``name``."""
    warn_once(
        ("input", id(step.node), type_name),
        f"node {step.name!r} runs uncached: its input {name!r} (a {type_name}) has no "
        "deterministic hash; define __cache_key__() on the type, or teach the cache with "
        "hypernodes.cache.register_hasher(type, fn), to make it cacheable",
    )


def nested_static(step: Any) -> bytes | None:
    """What a nested pipeline step computes, apart from its inputs: the code of every node it
    runs (nested steps inside it in turn), how they are wired, the values it has of its own
    (bound inputs, defaults), its mappings and map.  With the tokens of the step's inputs this
    keys the step as a whole, so that a warm nested step (a nested map, say) is one read.

    None when some part cannot be hashed, a node in it is ``cache=False`` (it must run), or a
    pipeline in it has callbacks of its own (they would miss its events).
    """
    adapter = step.node
    if getattr(adapter, "input_to_outer", None) is None:  # not a pipeline used as a node
        return None
    pipeline = adapter.pipeline
    if pipeline.callbacks:
        return None
    to_inner = {outer: inner for inner, outer in adapter.input_to_outer.items()}
    try:
        inner_in = tuple(to_inner[key] for key in step.arg_keys)
        inner_out = tuple(adapter.output_to_inner[name] for name in step.store)
        bound = pipeline.bound_inputs
        plan = pipeline.plan(inner_out, frozenset(inner_in).union(bound))
    except Exception:  # cannot say what it would run: no whole key
        return None
    cp = cache_plan(plan)
    call = CallInfo(plan, cp)
    shape = (inner_in, inner_out, adapter._inner_map_over, adapter.map_mode)
    wiring = (cp.args, cp.names, cp.outs, cp.requested)
    parts = [ENV, b"nested:", repr(shape).encode(), repr(wiring).encode()]
    for i, kind in enumerate(cp.kinds):
        static = call.statics[i] if kind == CACHED else None
        if kind == NESTED:
            static = call.whole(i, plan.steps[i])
        if static is None:
            return None
        parts.append(static)
    for key in cp.value_keys:
        if key in inner_in:
            continue  # an input of the step: its token is part of each signature
        value = bound[key] if key in bound else cp.fixed.get(key, _ABSENT)
        if value is _ABSENT:
            return None
        try:
            parts.append(repr(key).encode() + value_token(value))
        except Unhashable:
            return None
    return _digest_of(b"".join(parts))


_ABSENT: Any = object()
