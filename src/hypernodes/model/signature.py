"""Reading a function's parameters quickly: a plain function's code object says it all.

``inspect.signature`` builds validated ``Parameter`` objects and follows wrappers; for the many
plain functions of a large pipeline that is most of the cost of making a node.  For anything
that is not a plain function (wrapped, with ``__signature__``, a partial, a callable object, a
builtin) this falls back on ``inspect.signature``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from operator import itemgetter
from types import FunctionType
from typing import Any, NamedTuple

_KINDS = inspect.Parameter
_EMPTY = inspect.Parameter.empty
_VARARGS, _VARKEYWORDS = inspect.CO_VARARGS, inspect.CO_VARKEYWORDS


class _Parameter(tuple):  # type: ignore[type-arg]
    """``(name, kind, default)`` read like ``inspect.Parameter`` (made by C-level
    ``tuple.__new__``, which a ``NamedTuple`` would route through Python code)."""

    __slots__ = ()
    name = property(itemgetter(0))
    kind = property(itemgetter(1))
    default = property(itemgetter(2))


def plain_function(func: Any) -> bool:
    """A function made by ``def`` or ``lambda`` with nothing attached (no ``__wrapped__``,
    ``__signature__`` or coroutine mark): its code object is all there is to read."""
    return type(func) is FunctionType and not func.__dict__


def code_flags(func: Any) -> int | None:
    """The code flags of a plain function (None for anything else)."""
    return func.__code__.co_flags if plain_function(func) else None


class _Signature(NamedTuple):
    parameters: dict[str, Any]


def read_signature(func: Callable[..., Any]) -> Any:
    """An object with ``parameters`` (name -> parameter with ``name``, ``kind``, ``default``),
    like ``inspect.signature(func)``."""
    if not plain_function(func):
        return inspect.signature(func)
    code = func.__code__
    positional = code.co_argcount
    keyword = code.co_kwonlyargcount
    names = code.co_varnames
    parameters: dict[str, Any] = {}
    defaults = func.__defaults__ or ()
    first_default = positional - len(defaults)
    only = code.co_posonlyargcount
    for i in range(positional):
        kind = _KINDS.POSITIONAL_ONLY if i < only else _KINDS.POSITIONAL_OR_KEYWORD
        default = defaults[i - first_default] if i >= first_default else _EMPTY
        parameters[names[i]] = _Parameter((names[i], kind, default))
    flags = code.co_flags
    at = positional + keyword
    if flags & _VARARGS:
        parameters[names[at]] = _Parameter((names[at], _KINDS.VAR_POSITIONAL, _EMPTY))
    kwdefaults = func.__kwdefaults__ or {}
    for name in names[positional:at]:
        parameters[name] = _Parameter((name, _KINDS.KEYWORD_ONLY, kwdefaults.get(name, _EMPTY)))
    if flags & _VARKEYWORDS:
        name = names[at + (1 if flags & _VARARGS else 0)]
        parameters[name] = _Parameter((name, _KINDS.VAR_KEYWORD, _EMPTY))
    return _Signature(parameters)
