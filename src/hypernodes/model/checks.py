"""Checks of what users hand to a :class:`~hypernodes.Pipeline`: its settings (``engine=``,
``cache=``, ``callbacks=``), the names of the inputs a run is given, and pipelines nested inside
themselves.

Each check runs where it costs nothing per call: settings when a pipeline (or a copy) is made,
input names once per distinct set of names (when that plan is compiled), nesting when a plan is
compiled or a picture drawn.  Every error names what was wrong, what is accepted and what to do.
"""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal, overload

from ..exceptions import (
    CycleError,
    InputError,
    InvalidSettingError,
    SettingValueError,
    UnknownInputError,
    pipeline_phrase,
)
from ..observe.callbacks import HOOKS, PipelineCallback
from ..observe.callbacks import check_callbacks as check_hooks
from .node import Node

if TYPE_CHECKING:
    from .graph import PipelineGraph

_EXECUTOR_NAMES = ("sequential", "async", "threaded", "parallel")


# ---------------------------------------------------------------------------------------------
# Inputs


def check_inputs_mapping(inputs: Any, where: str) -> None:
    """Raise :class:`InputError` unless ``inputs`` is a mapping (``None`` counts as empty)."""
    if inputs is None or isinstance(inputs, Mapping):
        return
    hint = ""
    if isinstance(inputs, str):
        hint = f"; to give one input, write inputs={{{inputs!r}: value}}"
    elif isinstance(inputs, Iterable):
        hint = "; a list of (name, value) pairs is not accepted either: write dict(pairs)"
    raise InputError(
        f"{where}: inputs must be a mapping of input names to values (a dict such as "
        f"{{'x': 1}}), got {type(inputs).__name__}{hint}"
    )


def check_input_names(label: str, pgraph: PipelineGraph, provided: frozenset[Any]) -> None:
    """Raise :class:`UnknownInputError` for names in ``provided`` that pipeline ``label`` neither
    takes as an input nor produces (a provided value may override a node's output)."""
    unknown = provided.difference(pgraph.producer, pgraph.root_args)
    if unknown:
        raise unknown_input_error(label, unknown, pgraph.root_args, pgraph.output_names)


def unknown_input_error(
    label: str,
    unknown: Iterable[Any],
    inputs: Iterable[str],
    outputs: Iterable[str] = (),
) -> UnknownInputError:
    """The error for names ``unknown`` given to pipeline ``label``, with did-you-mean suggestions
    among ``inputs`` and the ``outputs`` a given value may override."""
    inputs, outputs = list(inputs), list(outputs)
    accepted = inputs + [o for o in outputs if o not in inputs]
    names = sorted((n for n in unknown if isinstance(n, str)), key=str)
    others = [n for n in unknown if not isinstance(n, str)]
    suggestions = _close_matches(names, accepted)
    parts = []
    if names:
        parts.append(_unknown_names_part(label, names, suggestions))
    if others:
        keys = ", ".join(f"{o!r} ({type(o).__name__})" for o in others)
        parts.append(f"input names must be strings, got key(s) {keys}")
    overridable = (
        f"; an output name {outputs} may also be given, to override that output" if outputs else ""
    )
    message = (
        f"{'; '.join(parts)}. Its inputs are {inputs}{overridable}. "
        "Fix the name (a misspelled optional input would silently keep its default) or leave it out"
    )
    return UnknownInputError(message, [*names, *others], accepted, suggestions)


def _close_matches(names: list[str], accepted: list[str]) -> dict[str, list[str]]:
    """Up to three accepted names close to each of ``names``, for the names that have one."""
    return {
        n: difflib.get_close_matches(n, accepted, n=3, cutoff=0.6)
        for n in names
        if difflib.get_close_matches(n, accepted, n=1, cutoff=0.6)
    }


def _unknown_names_part(label: str, names: list[str], suggestions: Mapping[str, list[str]]) -> str:
    """``pipeline 'p' takes no input(s) named 'x' (did you mean 'y'?)`` for the string names."""
    shown = []
    for n in names:
        close = suggestions.get(n)
        mean = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
        shown.append(f"{n!r}{mean}")
    return f"{pipeline_phrase(label)} takes no input(s) named {', '.join(shown)}"


def name_tuple(value: Any, what: str, error: type[Exception], where: str = "") -> tuple[str, ...]:
    """``value`` - one name, or a list/tuple of names, or ``None`` (none) - as a tuple of names;
    else ``error`` saying that argument ``what`` (of ``where``, a prefix) takes names."""
    if isinstance(value, str):
        return (value,)
    if value is None:
        return ()
    if isinstance(value, (bytes, Mapping)) or not isinstance(value, Iterable):
        raise error(
            f"{where}{what} must be a name or a list of names (strings), got {_describe(value)}; "
            f"write {what}='x' or {what}=['x', 'y']"
        )
    names = tuple(value)
    for name in names:
        if not isinstance(name, str):
            raise error(
                f"{where}{what} must be a name or a list of names (strings), got {value!r}: "
                f"{name!r} is {type(name).__name__}, not a string"
            )
    return names


def name_mapping(value: Any, what: str, error: type[Exception]) -> dict[str, str]:
    """``value`` (a mapping of names to names, or ``None``) as a dict; else ``error`` saying
    what ``what`` takes."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise error(
            f"{what} must be a dict of names to names, such as {{'old': 'new'}}, got "
            f"{_describe(value)}"
        )
    for key, target in value.items():
        if not isinstance(key, str) or not isinstance(target, str):
            raise error(
                f"{what} must map names (strings) to names, got {key!r}: {target!r}; "
                f"write {{{str(key)!r}: {str(target)!r}}}"
            )
    return dict(value)


# ---------------------------------------------------------------------------------------------
# Settings


def check_pipeline_name(name: Any) -> Any:
    """``name`` if it is ``None`` or a non-empty string (a pipeline's name is a label in paths,
    events and cache keys: ``name=123`` would be silently misread)."""
    if name is None or (isinstance(name, str) and name):
        return name
    raise InvalidSettingError(
        f"a pipeline's name= must be a non-empty string, got {_describe(name)}; "
        f"write name={str(name)!r} or leave it out"
    )


def output_not_input_hint(pgraph: PipelineGraph, names: Iterable[str], where: str) -> str:
    """For names that are outputs of a node (not inputs): why ``where`` (``bind``,
    ``map_over``) refuses them although ``run()`` accepts them, and what to do; else ``""``."""
    produced = [n for n in names if n in pgraph.producer]
    if not produced:
        return ""
    shown = ", ".join(
        f"{n!r} (node {getattr(pgraph.producer[n], 'name', '?')!r})" for n in produced
    )
    return (
        f". {shown} is produced by a node, not an input: run() and map() accept an output's "
        f"value in inputs= to override that node, but {where} takes the pipeline's own inputs "
        "only. Give the value in inputs= instead (inputs={'name': value}), or build the "
        "pipeline without the node that produces it"
    )


def check_engine(engine: Any) -> Any:
    """``engine`` if it is ``None`` or an engine object (``run`` and ``map`` methods)."""
    if engine is None or (
        not isinstance(engine, type)
        and callable(getattr(engine, "run", None))
        and callable(getattr(engine, "map", None))
    ):
        return engine
    takes = (
        "engine= takes an engine object, such as HypernodesEngine(...) "
        "(from hypernodes import HypernodesEngine), or None for the default sequential engine"
    )
    if isinstance(engine, str):
        if engine in _EXECUTOR_NAMES:
            nodes = (
                ""
                if engine == "parallel"
                else f", and/or node_executor={engine!r} for the nodes of one item"
            )
            hint = (
                f"; {engine!r} is an executor name: write "
                f"engine=HypernodesEngine(map_executor={engine!r}) to run map items that way{nodes}"
            )
        else:
            hint = f"; executor names ({', '.join(_EXECUTOR_NAMES)}) go to HypernodesEngine(...)"
        raise InvalidSettingError(f"{takes}, got the string {engine!r}{hint}")
    if isinstance(engine, type):
        raise InvalidSettingError(
            f"{takes}, got the class {engine.__name__}; pass an instance: {engine.__name__}()"
        )
    raise InvalidSettingError(f"{takes}, got {_describe(engine)}, which has no run/map methods")


def check_cache(cache: Any) -> Any:
    """``cache`` if it is ``None`` or a cache object (``get_many`` and ``set`` methods)."""
    if cache is None or (
        not isinstance(cache, type)
        and callable(getattr(cache, "get_many", None))
        and callable(getattr(cache, "set", None))
    ):
        return cache
    takes = (
        "cache= takes a cache object, DiskCache(path) or MemoryCache() "
        "(from hypernodes import DiskCache, MemoryCache), or None for no cache"
    )
    if isinstance(cache, str) or hasattr(cache, "__fspath__"):
        raise InvalidSettingError(
            f"{takes}, got the path {cache!r}; to cache on disk there, write cache=DiskCache({cache!r})"
        )
    if isinstance(cache, bool):
        raise InvalidSettingError(
            f"{takes}, got {cache!r}; write cache=MemoryCache() (or DiskCache(path)) to cache, "
            "cache=None not to"
        )
    if isinstance(cache, type):
        raise InvalidSettingError(
            f"{takes}, got the class {cache.__name__}; pass an instance, e.g. {cache.__name__}(...)"
        )
    raise InvalidSettingError(f"{takes}, got {_describe(cache)}, which has no get_many/set methods")


def check_callbacks(callbacks: Any) -> list[Any] | None:
    """``callbacks`` as a list, if it is ``None`` or an iterable of callback objects."""
    if callbacks is None:
        return None
    takes = "callbacks= takes a list of callback objects (PipelineCallback subclass instances)"
    if isinstance(callbacks, PipelineCallback) or (
        not isinstance(callbacks, type) and _has_hook(callbacks, HOOKS)
    ):
        raise InvalidSettingError(
            f"{takes}, got a single callback {_describe(callbacks)}; wrap it in a list: "
            f"callbacks=[{type(callbacks).__name__}(...)]"
        )
    if isinstance(callbacks, (str, bytes, Mapping)) or not isinstance(callbacks, Iterable):
        raise InvalidSettingError(f"{takes}, got {_describe(callbacks)}")
    found = list(callbacks)
    for i, cb in enumerate(found):
        if isinstance(cb, PipelineCallback):
            continue
        if isinstance(cb, type):
            hint = f"; pass an instance: {cb.__name__}()"
        elif _has_hook(cb, HOOKS):
            continue  # duck-typed: an object with hook methods (on_node_end, ...)
        else:
            hint = (
                "; subclass hypernodes.PipelineCallback and override the hooks you need "
                "(on_node_end, on_map_item_end, ...)"
            )
        raise InvalidSettingError(f"{takes}, but callbacks[{i}] is {_describe(cb)}{hint}")
    return check_hooks(found)  # each hook override callable one way or the other


def _has_hook(obj: Any, hooks: Iterable[str]) -> bool:
    return any(callable(getattr(obj, hook, None)) for hook in hooks)


def _describe(value: Any) -> str:
    if isinstance(value, type):
        return f"the class {value.__name__}"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def check_whole(value: Any, what: str, where: str, minimum: int = 0) -> int | None:
    """``value`` if it is ``None`` or a whole number >= ``minimum``; else
    :class:`SettingValueError` naming ``where``'s argument ``what``."""
    if value is None or (
        type(value) is int and value >= minimum  # the common case, at once
    ):
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SettingValueError(
            f"{where}: {what} must be a whole number >= {minimum} (or None), got "
            f"{_describe(value)}"
            + (f"; write {what}={float(value):g}" if _is_number_text(value) else "")
        )
    return int(value)


@overload
def check_seconds(value: Any, what: str, where: str, none_ok: Literal[False] = False) -> float: ...
@overload
def check_seconds(value: Any, what: str, where: str, none_ok: bool) -> float | None: ...
def check_seconds(value: Any, what: str, where: str, none_ok: bool = False) -> float | None:
    """``value`` as seconds if it is a finite number > 0 (``None`` too when ``none_ok``); else
    :class:`SettingValueError` naming ``where``'s argument ``what``."""
    if value is None and none_ok:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value <= 0:
        none = " (or None)" if none_ok else ""
        raise SettingValueError(
            f"{where}: {what} must be a finite number of seconds > 0{none}, got {_describe(value)}"
            + (f"; write {what}={float(value):g}" if _is_number_text(value) else "")
        )
    seconds: float = value
    return seconds


def _is_number_text(value: Any) -> bool:
    """Whether ``value`` is a string holding a number (``"10"``): the fix is to drop the quotes."""
    if not isinstance(value, str):
        return False
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


# ---------------------------------------------------------------------------------------------
# Nesting


def nesting_cycle(label: str, pgraph: PipelineGraph) -> CycleError | None:
    """The error for a pipeline nested inside itself (directly or through others), or ``None``.

    Pipelines are built from existing objects, so a loop can only come from changing a pipeline
    after it was nested (re-running ``__init__``, replacing ``.pgraph`` or a node's
    ``.pipeline``).  Running one would recurse without end; this walk finds the loop instead,
    visiting each distinct pipeline graph once.
    """
    done: set[int] = set()
    on_path = {id(pgraph): 0}
    path = [label]
    stack: list[tuple[int, Iterator[tuple[str, PipelineGraph]]]] = [(id(pgraph), _nested(pgraph))]
    while stack:
        key, children = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            path.pop()
            del on_path[key]
            done.add(key)
            continue
        name, inner = child
        inner_key = id(inner)
        if inner_key in on_path:
            loop = [*path[on_path[inner_key] :], name]
            shown = " > ".join([*path, name])
            return CycleError(
                f"{pipeline_phrase(label)} nests a pipeline inside itself: {shown}. Running it would "
                "never end. This happens when a pipeline is changed after it was nested in another "
                "(its __init__ run again, or .pgraph / a node's .pipeline replaced); build a new "
                "Pipeline instead of changing one that is already in use",
                loop,
            )
        if inner_key in done:
            continue
        on_path[inner_key] = len(path)
        path.append(name)
        stack.append((inner_key, _nested(inner)))
    return None


def _nested(pgraph: PipelineGraph) -> Iterator[tuple[str, PipelineGraph]]:
    for item in pgraph.nodes:
        if item.__class__ is Node:  # most of them: skip the attribute lookup
            continue
        inner = getattr(item, "pipeline", None)
        if inner is not None:  # named by the pipeline's name, else by the node's
            yield inner.name or item.name, inner.pgraph


# ---------------------------------------------------------------------------------------------
# Unfinished values: what a sync function returns when it should have been ``async def``


def unfinished_kind(value: Any) -> str | None:
    """``"coroutine"``, ``"generator"``... if ``value`` is an awaitable or a generator object that
    a node returned without running it, else ``None``."""
    if inspect.iscoroutine(value):
        return "coroutine"
    if inspect.isasyncgen(value):
        return "async generator"
    if inspect.isgenerator(value):
        return "generator"
    if inspect.isawaitable(value):
        return "awaitable"
    return None


def unfinished_hint(kind: str) -> str:
    """What to do about a node that returned an unfinished value of ``kind``."""
    if kind in ("coroutine", "awaitable"):
        return (
            f"a function that returns a {kind} without being `async def` is called like any sync "
            "function and its result is not awaited; declare it `async def` (for a wrapper "
            "around an async function, make the wrapper `async def` and await inside it), and "
            "HyperNodes awaits it"
        )
    return f"a {kind} is passed on unconsumed; return a list instead (return list(...))"


def unfinished_inputs_note(
    steps: Iterable[Any], name: str, keys: Iterable[str], values: Mapping[str, Any]
) -> str | None:
    """A note for a node that failed while reading an unfinished value that another node returned
    (a coroutine from a function that is not ``async def``), or ``None`` when it read none.

    ``steps`` are the plan's steps (``.name``, ``.store``); ``keys`` are the keys in ``values``
    that the failing node ``name`` read.  Called only on the error path; the steps are searched
    only when an input is unfinished.
    """
    for key in keys:
        kind = unfinished_kind(values.get(key))
        if kind is None:
            continue
        source = next((step.name for step in steps if key in step.store), None)
        if source is not None:
            return (
                f"hypernodes: input {key!r} of node {name!r} is a {kind} object: node {source!r} "
                f"returned a {kind} instead of a value: {unfinished_hint(kind)}"
            )
    return None
