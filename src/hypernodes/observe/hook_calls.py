"""How a callback's hook override is called: with keywords (ours) or positionally (the way the
original HyperNodes wrote hooks, ``on_node_start(self, node_id, inputs, ctx)``).

Each override is inspected once per function (the answer is kept), and becomes a plain callable
that the dispatcher calls with the event's keyword arguments.  A keyword-style override that takes
every field (or ``**kwargs``) is used as it is, so the common case costs nothing extra.
"""

from __future__ import annotations

import contextlib
import inspect
import weakref
from collections.abc import Callable
from typing import Any

from ..exceptions import CallbackSignatureError
from .hooks import FIELDS, POSITIONAL

_POSITIONAL_KINDS = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


#: per function: how to call it (``None``: with every keyword as it is), decided once
_STYLES: weakref.WeakKeyDictionary[Any, tuple[str, Any]] = weakref.WeakKeyDictionary()


def hook_caller(callback: Any, hook: str) -> Callable[..., Any]:
    """A callable taking the event's keyword arguments that calls ``callback``'s ``hook`` the way
    it was written.  Raises :class:`~hypernodes.exceptions.CallbackSignatureError` for a shape neither style fits."""
    method = getattr(callback, hook)
    function = getattr(method, "__func__", method)
    try:
        style = _STYLES[function]
    except (KeyError, TypeError):  # TypeError: not weak-referenceable; decide every time
        style = _style(callback, hook, method)
        with contextlib.suppress(TypeError):
            _STYLES[function] = style
    kind, spec = style
    if kind == "direct":
        return method
    if kind == "keywords":
        wanted: tuple[str, ...] = spec

        def by_keyword(**event: Any) -> Any:
            return method(**{k: event[k] for k in wanted})

        return by_keyword

    shape: tuple[str | None, ...] = spec

    def by_position(**event: Any) -> Any:
        return method(*[event[f] if f is not None else "" for f in shape])

    return by_position


def written_positionally(callback: Any, hook: str) -> bool:
    """Whether ``callback``'s override of ``hook`` is written the original HyperNodes way
    (positional arguments such as ``node_id, inputs, ctx``), not with our keywords."""
    method = getattr(callback, hook)
    function = getattr(method, "__func__", method)
    try:
        style = _STYLES[function]
    except (KeyError, TypeError):
        style = _style(callback, hook, method)
    return style[0] == "positional"


def _style(callback: Any, hook: str, method: Any) -> tuple[str, Any]:
    """How to call the override ``method`` of ``hook``: as it is, by keyword or by position."""
    fields = FIELDS[hook]
    try:
        signature = inspect.signature(method)
    except (TypeError, ValueError):  # a builtin or C callable: trust it takes our keywords
        return ("direct", None)
    params = list(signature.parameters.values())
    named = [p for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    if _takes_keywords(params, named, fields):
        return _keyword_style(params, named, fields)
    where = f"{type(callback).__name__}.{hook}{signature}"
    return _positional_style(params, hook, where)


def _takes_keywords(
    params: list[inspect.Parameter], named: list[inspect.Parameter], fields: tuple[str, ...]
) -> bool:
    """Whether the override can be called with (some of) the hook's keyword arguments alone."""
    return all(p.name in fields or p.default is not p.empty for p in named) and not any(
        p.kind is p.POSITIONAL_ONLY and p.default is p.empty for p in params
    )


def _keyword_style(
    params: list[inspect.Parameter], named: list[inspect.Parameter], fields: tuple[str, ...]
) -> tuple[str, Any]:
    """The keyword style of a keyword-style override: as it is, or with the fields it takes."""
    var_keyword = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    takes = {p.name for p in named}
    if var_keyword or takes.issuperset(fields):
        return ("direct", None)
    return ("keywords", tuple(f for f in fields if f in takes))


def _positional_style(params: list[inspect.Parameter], hook: str, where: str) -> tuple[str, Any]:
    """The longest positional shape of ``hook`` the override fits; raises if it fits none."""
    fields = FIELDS[hook]
    if any(p.kind is p.KEYWORD_ONLY and p.default is p.empty for p in params):
        raise CallbackSignatureError(
            f"{where} requires keyword argument(s) that {hook} does not give; "
            f"its keyword arguments are {list(fields)}"
        )
    shape = _fitting_shape(params, POSITIONAL[hook])
    if shape is not None:
        return ("positional", shape)
    shapes = " or ".join(f"({', '.join(f or 'signature' for f in s)})" for s in POSITIONAL[hook])
    raise CallbackSignatureError(
        f"{where} fits neither way hooks are called: with keyword arguments "
        f"({', '.join(fields)}, each optional to take) or positionally as {shapes}"
    )


def _fitting_shape(
    params: list[inspect.Parameter], shapes: tuple[tuple[str | None, ...], ...]
) -> tuple[str | None, ...] | None:
    """The first of ``shapes`` whose length the positional parameters accept, if any."""
    positional = [p for p in params if p.kind in _POSITIONAL_KINDS]
    var_positional = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
    required = sum(1 for p in positional if p.default is p.empty)
    most = float("inf") if var_positional else len(positional)
    for shape in shapes:
        if required <= len(shape) <= most:
            return shape
    return None


__all__ = ["FIELDS", "POSITIONAL", "CallbackSignatureError", "hook_caller", "written_positionally"]
