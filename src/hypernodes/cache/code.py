"""Hashing code: the ``code_hash`` part of a signature.

A function is identified by a normalized form of its bytecode (instructions, constants, names;
no line numbers, no docstring, so comments, blank lines and docstrings do not count), the values
of its closure cells and default arguments, and what it references at module level: functions
and classes from the user's own modules (hashed the same way, recursively), plain-data
constants, and attributes of user modules it reaches as ``module.name``, whether the module is
imported at module level or inside the function (``from helpers import h`` in the body).
Functions and classes from the standard library and installed packages count by qualified name
only: upgrading a library does not invalidate.  Not tracked: names looked up dynamically
(``getattr(module, "h")``, ``importlib.import_module("helpers")``).

Digests are memoized per function object together with cheap checks (is ``helper`` still the same
object in the module namespace, is the closure cell unchanged, is a referenced list still equal),
so redefining a helper in a notebook or reloading a module invalidates exactly what uses it.
"""

from __future__ import annotations

import contextlib
import dis
import enum
import functools
import importlib
import importlib.util
import os
import sys
import sysconfig
import threading
import weakref
from types import (
    BuiltinFunctionType,
    CodeType,
    FunctionType,
    MappingProxyType,
    MethodType,
    ModuleType,
)
from typing import Any

import xxhash

from ..model.node import Node
from . import keys
from .keys import Unhashable, hasher_for, qualified_name, value_token

_digest_of = xxhash.xxh3_128_digest
_CO_HAS_DOCSTRING = 0x4000000  # Python 3.14+

_MISSING = object()
_GLOBAL, _CELL, _CODE = range(3)

#: immutable constants referenced at module level are included up to this many atoms
_PLAIN_LIMIT = 2000


class _Entry:
    __slots__ = ("digest", "checks")

    def __init__(self, digest: bytes, checks: list[tuple[Any, ...]]) -> None:
        self.digest = digest
        self.checks = checks


_memo: weakref.WeakKeyDictionary[Any, _Entry] = weakref.WeakKeyDictionary()
_memo_lock = threading.Lock()
_local = threading.local()


def _active() -> set[int]:
    active = getattr(_local, "active", None)
    if active is None:
        active = _local.active = set()
    return active


def _still_valid(checks: list[tuple[Any, ...]]) -> bool:
    for check in checks:
        kind = check[0]
        if kind == _GLOBAL:
            if check[1].get(check[2], _MISSING) is not check[3]:
                return False
        elif kind == _CELL:
            try:
                contents = check[1].cell_contents
            except ValueError:
                contents = _MISSING
            if contents is not check[2]:
                return False
        elif check[1].__code__ is not check[2]:  # _CODE
            return False
    return True


# ---------------------------------------------------------------------------------------------
# Which modules are the user's own


_LIBRARY_DIRS: tuple[str, ...] | None = None


def _library_dirs() -> tuple[str, ...]:
    global _LIBRARY_DIRS
    if _LIBRARY_DIRS is None:
        paths = sysconfig.get_paths()
        dirs = {paths.get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
        _LIBRARY_DIRS = tuple(
            os.path.join(os.path.realpath(d), "") for d in dirs if d and os.path.isdir(d)
        )
    return _LIBRARY_DIRS


@functools.lru_cache(maxsize=4096)
def _is_user_module_name(name: str, file: str | None) -> bool:
    top = name.partition(".")[0]
    if top in sys.stdlib_module_names or top in ("hypernodes", "builtins", "_pytest", "pytest"):
        return False
    if file is None:
        return name == "__main__" or top not in sys.builtin_module_names
    path = os.path.realpath(file)
    if "site-packages" in path or "dist-packages" in path:
        return False
    return not path.startswith(_library_dirs())


def is_user_module(module: ModuleType | str | None) -> bool:
    """Whether ``module`` is the user's own code (not stdlib, not an installed package)."""
    if module is None:
        return True
    if isinstance(module, str):
        mod = sys.modules.get(module)
        name = module
    else:
        mod, name = module, module.__name__
    file = getattr(mod, "__file__", None) if mod is not None else None
    return _is_user_module_name(name, file)


# ---------------------------------------------------------------------------------------------
# Digests


def callable_digest(obj: Any) -> bytes:
    """A 16-byte digest identifying a callable (function, method, partial, class, callable object).

    Raises :class:`~hypernodes.cache.keys.Unhashable` when a bound ``self`` or a partial's
    arguments cannot be hashed.
    """
    return _callable(obj, [])


def _callable(obj: Any, checks: list[tuple[Any, ...]]) -> bytes:
    if isinstance(obj, FunctionType):
        return _function(obj, checks)
    if isinstance(obj, type):
        return _class(obj, checks)
    if isinstance(obj, MethodType):
        return _digest_of(b"m" + _callable(obj.__func__, checks) + value_token(obj.__self__))
    if isinstance(obj, functools.partial):
        return _digest_of(
            b"p" + _callable(obj.func, checks) + value_token(obj.args) + value_token(obj.keywords)
        )
    if isinstance(obj, BuiltinFunctionType) or not callable(obj):
        return _digest_of(b"q" + qualified_name(obj).encode())
    if isinstance(obj, Node):
        return _callable(obj.func, checks)
    call = getattr(type(obj), "__call__", None)  # noqa: B004 - a callable instance
    base = _callable(call, checks) if isinstance(call, FunctionType) else b""
    return _digest_of(b"i" + qualified_name(type(obj)).encode() + base + value_token(obj))


def code_parts(obj: Any) -> dict[str, str]:
    """The digest (hex) of each user function and class ``obj`` reaches, by qualified name,
    ``obj`` itself included: what :func:`callable_digest` is made of, so that a report can name
    the helper that changed.  Computed afresh (not memoized); meant for explaining, not keys."""
    found: dict[str, str] = {}
    _local.collect = found
    try:
        _callable(obj, [])
    finally:
        _local.collect = None
    return found


def _collected(obj: Any, digest: bytes) -> bytes:
    """Note ``obj``'s own part (without what it reaches) while :func:`code_parts` collects."""
    collect = getattr(_local, "collect", None)
    if collect is not None:
        collect.setdefault(qualified_name(obj), _own_digest(obj).hex())
    return digest


def _own_digest(obj: Any) -> bytes:
    """A function's or class's own part: its code (or class attributes, enum values) and the
    constants it reads, leaving out the functions and classes it reaches (named on their own)."""
    if isinstance(obj, type):
        parts = [b"K"]
        for attr in sorted(obj.__dict__):
            value = obj.__dict__[attr]
            if not (attr.startswith("__") and attr.endswith("__")) and _constant(value):
                parts.append(attr.encode() + b"=" + value_token(value))
        if isinstance(obj, enum.EnumMeta):
            members: dict[str, Any] = dict(obj.__members__)
            parts.extend(repr((n, m.value)).encode() for n, m in members.items())
        return _join(parts)
    code = obj.__code__
    parts = [b"F", _code_digest(code, obj.__doc__)]
    namespace = obj.__globals__
    for name in sorted(_all_names(code)):
        value = namespace.get(name, _MISSING)
        if value is not _MISSING and _constant(value):
            parts.append(name.encode() + b"=" + value_token(value))
    for cell in obj.__closure__ or ():
        with contextlib.suppress(ValueError):
            if _constant(cell.cell_contents):
                parts.append(b"c" + value_token(cell.cell_contents))
    for value in (*(obj.__defaults__ or ()), *sorted((obj.__kwdefaults__ or {}).items())):
        if _constant(value):
            parts.append(b"d" + value_token(value))
    return _join(parts)


def _collected_constant(name: str, value: Any, part: bytes) -> None:
    """Note a module constant a function reads (``helpers.SCALE``) while collecting."""
    collect = getattr(_local, "collect", None)
    if collect is not None and _constant(value):
        collect.setdefault(name, _digest_of(part).hex())


def _constant(value: Any) -> bool:
    return _plain_size(value, _PLAIN_LIMIT) is not None


def _function(func: FunctionType, checks: list[tuple[Any, ...]]) -> bytes:
    entry = _memo.get(func)
    collecting = getattr(_local, "collect", None) is not None
    if entry is not None and not collecting and _still_valid(entry.checks):
        checks.extend(entry.checks)
        return entry.digest
    active = _active()
    if id(func) in active:  # recursion: name the function instead of descending again
        return _digest_of(b"R" + qualified_name(func).encode())
    active.add(id(func))
    try:
        own: list[tuple[Any, ...]] = []
        digest = _compute_function(func, own)
    finally:
        active.discard(id(func))
    with _memo_lock:
        _memo[func] = _Entry(digest, own)
    checks.extend(own)
    return _collected(func, digest)


def _compute_function(func: FunctionType, checks: list[tuple[Any, ...]]) -> bytes:
    code = func.__code__
    checks.append((_CODE, func, code))
    # The qualified name keeps apart look-alike functions of two modules that read different
    # mutable globals (which are not hashed, see _plain_size).
    parts = [b"F" + qualified_name(func).encode(), _code_digest(code, func.__doc__)]
    names = sorted(_all_names(code))
    namespace = func.__globals__
    for name in names:
        obj = namespace.get(name, _MISSING)
        if obj is _MISSING:
            continue
        checks.append((_GLOBAL, namespace, name, obj))
        part = _reference(obj, names, checks)
        if part is not None:
            parts.append(b"g" + name.encode() + b"=" + part)
    for i, cell in enumerate(func.__closure__ or ()):
        try:
            obj = cell.cell_contents
        except ValueError:
            obj = _MISSING
        checks.append((_CELL, cell, obj))
        part = b"-" if obj is _MISSING else _reference(obj, names, checks)
        if part is not None:
            parts.append(b"c%d=" % i + part)
    defaults = [(b"%d" % i, v) for i, v in enumerate(func.__defaults__ or ())]
    defaults += [(k.encode(), v) for k, v in sorted((func.__kwdefaults__ or {}).items())]
    for label, value in defaults:  # `def helper(x, scale=2)`: editing the 2 is a code edit
        part = _reference(value, names, checks)
        parts.append(b"d" + label + b"=" + (b"-" if part is None else part))
    if _IMPORT_NAME in code.co_code[::2] or _has_nested_imports(code):
        parts.extend(_import_parts(func, code, names, checks))
    return _join(parts)


# ---------------------------------------------------------------------------------------------
# Imports inside a function body: `from helpers import h`, `import helpers`, `from . import x`

_IMPORT_NAME = dis.opmap["IMPORT_NAME"]
_CONST_LOADS = frozenset({"LOAD_CONST", "LOAD_SMALL_INT"})


def _has_nested_imports(code: CodeType) -> bool:
    return any(
        isinstance(c, CodeType) and (_IMPORT_NAME in c.co_code[::2] or _has_nested_imports(c))
        for c in code.co_consts
    )


def _imports(code: CodeType) -> list[tuple[str, int, tuple[str, ...]]]:
    """``(name, level, fromlist)`` of every import statement in ``code`` and nested code."""
    found: list[tuple[str, int, tuple[str, ...]]] = []
    recent: list[Any] = []  # the constants loaded just before: level, then fromlist
    for ins in dis.get_instructions(code):
        if ins.opname in _CONST_LOADS:
            recent = [*recent[-1:], ins.argval]
            continue
        if ins.opname == "IMPORT_NAME":
            level, fromlist = recent if len(recent) == 2 else (0, None)
            found.append(
                (
                    ins.argval,
                    level if isinstance(level, int) else 0,
                    tuple(fromlist) if isinstance(fromlist, tuple) else (),
                )
            )
        recent = []
    for const in code.co_consts:
        if isinstance(const, CodeType):
            found.extend(_imports(const))
    return found


def _import_parts(
    func: FunctionType, code: CodeType, names: list[str], checks: list[tuple[Any, ...]]
) -> list[bytes]:
    """What the user modules a function imports in its body add to its digest: the attributes
    it uses of them, hashed like module-level references (libraries and stdlib add nothing)."""
    parts: list[bytes] = []
    package = func.__globals__.get("__package__")
    for name, level, fromlist in sorted(set(_imports(code))):
        if level:
            try:
                name = importlib.util.resolve_name("." * level + name, package)
            except (ImportError, ValueError):
                continue
        module = _user_module(name, checks)
        if module is None:
            continue
        if not fromlist or fromlist == ("*",):
            part = _reference(module, names, checks)
            if part is not None:
                parts.append(b"i" + name.encode() + b"=" + part)
            continue
        namespace = module.__dict__
        for attr_name in fromlist:
            attr = namespace.get(attr_name, _MISSING)
            if attr is _MISSING:  # `from pkg import sub` of a submodule not imported yet
                attr = _user_module(f"{name}.{attr_name}", checks) or _MISSING
            checks.append((_GLOBAL, namespace, attr_name, attr))
            if attr is _MISSING:
                continue
            part = _reference(attr, names, checks)
            if part is not None:
                parts.append(b"i" + name.encode() + b":" + attr_name.encode() + b"=" + part)
    return parts


def _user_module(name: str, checks: list[tuple[Any, ...]]) -> ModuleType | None:
    """The user's module ``name``, imported if needed (it is the user's own code, which the
    function imports anyway when it runs); ``None`` for stdlib, libraries and failures."""
    top = name.partition(".")[0]
    if not name or top in sys.stdlib_module_names or top in ("hypernodes", "builtins"):
        return None
    module = sys.modules.get(name)
    if module is None:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            return None
        origin = getattr(spec, "origin", None)
        if not origin or not os.path.isabs(origin) or not _is_user_module_name(name, origin):
            return None
        try:
            module = importlib.import_module(name)
        except Exception:  # it will fail the same way when the function runs
            return None
    if not is_user_module(module):
        return None
    checks.append((_GLOBAL, sys.modules, name, module))  # re-imported: hash again
    return module


def _join(parts: list[bytes]) -> bytes:
    """Digest of ``parts`` with each part length-prefixed, so that no two lists collide."""
    return _digest_of(b"".join(b"%d:" % len(p) + p for p in parts))


def _reference(obj: Any, names: Any, checks: list[tuple[Any, ...]]) -> bytes | None:
    """The part a referenced object adds to a function's digest (``None``: leave it out)."""
    if isinstance(obj, FunctionType | type):
        extra = _wrapped_part(obj, names, checks) or b""
        if is_user_module(getattr(obj, "__module__", None)):
            return _callable(obj, checks) + extra
        return qualified_name(obj).encode() + extra
    if isinstance(obj, ModuleType):
        return _module_part(obj, names, checks)
    if isinstance(obj, BuiltinFunctionType | MethodType | functools.partial):
        try:
            return _callable(obj, checks)
        except Unhashable:
            return None
    if isinstance(obj, Node):
        return _callable(obj.func, checks)
    return _value_reference(obj, names, checks)


def _value_reference(obj: Any, names: Any, checks: list[tuple[Any, ...]]) -> bytes | None:
    """:func:`_reference` of what is not a function, class, module or method: constants by
    value, wrappers by what they wrap, containers by the callables they hold, instances of user
    classes by their class."""
    if (
        _plain_size(obj, _PLAIN_LIMIT) is not None
        or hasattr(type(obj), "__cache_key__")
        or hasher_for(type(obj)) is not None
    ):
        try:
            return value_token(obj)
        except Unhashable:
            return None
    wrapped = _wrapped_part(obj, names, checks)  # lru_cache(helper), a singledispatch function
    if wrapped is not None:
        return wrapped
    if type(obj) in _CONTAINERS:
        return _held_callables(obj, names, checks)
    kind = type(obj)
    if is_user_module(getattr(kind, "__module__", None)) and not isinstance(obj, ModuleType):
        # an instance of a user class (a callable object, a config): its class's code
        return b"o" + _class(kind, checks)
    return None  # mutable or opaque state (a counter, a client, a model): documented as not counted


def _module_part(module: ModuleType, names: Any, checks: list[tuple[Any, ...]]) -> bytes | None:
    """A user module a function reaches: the attributes of it the function names, followed into
    submodules (``pkg.sub.helper``); ``None`` for the standard library and installed packages."""
    if not is_user_module(module):
        return None
    active = _active()
    if id(module) in active:
        return b"R" + module.__name__.encode()
    active.add(id(module))
    try:
        found = []
        namespace = module.__dict__
        for name in names:
            attr = namespace.get(name, _MISSING)
            if attr is _MISSING:
                continue
            checks.append((_GLOBAL, namespace, name, attr))
            part = _reference(attr, names, checks)
            if part is not None:
                found.append(name.encode() + b"=" + part)
                _collected_constant(f"{module.__name__}.{name}", attr, part)
        return b"M" + _join(found)
    finally:
        active.discard(id(module))


def _wrapped_part(obj: Any, names: Any, checks: list[tuple[Any, ...]]) -> bytes | None:
    """What a wrapper adds: the function it wraps (``__wrapped__``: ``functools.lru_cache``,
    ``functools.wraps``) and the implementations registered with it (``singledispatch``)."""
    parts = []
    wrapped = getattr(obj, "__wrapped__", None) if callable(obj) else None
    if wrapped is not None and wrapped is not obj:
        part = _reference(wrapped, names, checks)
        if part is not None:
            parts.append(b"w" + part)
    registry = getattr(obj, "registry", None)
    if callable(getattr(obj, "dispatch", None)) and isinstance(registry, MappingProxyType):
        part = _held_callables(dict(registry), names, checks)
        if part is not None:
            parts.append(b"r" + part)
    return b"W" + _join(parts) if parts else None


_CONTAINERS = (tuple, list, dict, set, frozenset)
_FROZEN = (tuple, frozenset)


def _held_callables(obj: Any, names: Any, checks: list[tuple[Any, ...]]) -> bytes | None:
    """A module-level container of functions (a tuple of steps, a dict of handlers): the
    callables it holds by position or key, and the constants beside them in immutable parts;
    ``None`` when it holds no callable (a list used as state stays out)."""
    found: list[bytes] = []
    callables = 0
    stack: list[tuple[bytes, bool, Any]] = [(b"", True, obj)]
    seen = 0
    while stack:
        path, frozen, item = stack.pop()
        seen += 1
        if seen > _PLAIN_LIMIT or not _expand(path, frozen, item, stack):
            return None
        kind = type(item)
        if kind in _ATOMS:
            if frozen:
                found.append(path + b"=" + value_token(item))
        elif kind not in _CONTAINERS and callable(item):
            part = _reference(item, names, checks)
            if part is not None:
                callables += 1
                found.append(path + b"=" + part)
    return b"H" + _join(sorted(found)) if callables else None


def _expand(path: bytes, frozen: bool, item: Any, stack: list[tuple[bytes, bool, Any]]) -> bool:
    """Push a container's elements with their paths (``frozen``: only immutable containers
    above); False for a dict key without a token."""
    kind = type(item)
    if kind in (tuple, list):
        inner = frozen and kind is tuple
        stack.extend((path + b"%d." % i, inner, v) for i, v in enumerate(item))
    elif kind is dict:
        for k, v in item.items():
            try:
                label = value_token(k)
            except Unhashable:
                return False
            stack.append((path + label + b".", False, v))
    elif kind in (set, frozenset):
        stack.extend((path + b"*.", frozen and kind is frozenset, v) for v in item)
    return True


_ATOMS = (type(None), bool, int, float, complex, str, bytes)


def _plain_size(obj: Any, limit: int) -> int | None:
    """The number of atoms in ``obj`` if it is an immutable constant (atoms, tuples and frozensets
    of them) within ``limit``, else ``None``.  Mutable containers are state, not constants: a
    global list used as a counter or registry must not change the code hash."""
    stack = [obj]
    count = 0
    while stack:
        item = stack.pop()
        kind = type(item)
        count += 1
        if count > limit:
            return None
        if kind in _ATOMS:
            continue
        if kind in (tuple, frozenset):
            stack.extend(item)
        else:
            return None
    return count


def _class(cls: type, checks: list[tuple[Any, ...]], data: bool = True) -> bytes:
    """A user class by its bases, methods (with what they reach), class attributes
    (``Cfg.FACTOR``; not with ``data=False``, the digest in its instances' tokens, where a class
    attribute used as a counter must not change every key) and, for an enum, its members'
    values."""
    name = qualified_name(cls).encode()
    if not is_user_module(cls.__module__):
        return _digest_of(b"q" + name)
    active = _active()
    if id(cls) in active:
        return _digest_of(b"R" + name)
    active.add(id(cls))
    try:
        parts = [b"K" + name]
        for base in cls.__bases__:
            if base is not object:
                parts.append(_class(base, checks, data))
        namespace = cls.__dict__
        for attr in sorted(namespace):
            value = namespace[attr]
            part = _class_attribute(cls, attr, value, checks, data)
            if part is not None:
                checks.append((_GLOBAL, namespace, attr, value))
                parts.append(attr.encode() + b"=" + part)
        if isinstance(cls, enum.EnumMeta):
            members: dict[str, Any] = dict(cls.__members__)
            for member_name, member in members.items():
                try:
                    token = value_token(member.value)
                except Unhashable:
                    token = b"?"
                parts.append(b"e" + member_name.encode() + b"=" + token)
        return _collected(cls, _join(parts))
    finally:
        active.discard(id(cls))


def _class_attribute(
    cls: type, attr: str, value: Any, checks: list[tuple[Any, ...]], data: bool
) -> bytes | None:
    """The part one attribute in a class's namespace adds (methods, then data)."""
    funcs = _methods_of(value)
    if funcs:
        return b"".join(_function(f, checks) for f in funcs)
    if not data or (attr.startswith("__") and attr.endswith("__")):
        return None  # __module__, __dict__, __doc__, __dataclass_fields__, ...
    if isinstance(value, cls) or (isinstance(cls, enum.EnumMeta) and attr.startswith("_")):
        return None  # enum members (counted by value) and the enum's own tables
    return _reference(value, (), checks)


_class_memo: weakref.WeakKeyDictionary[type, _Entry] = weakref.WeakKeyDictionary()


def class_digest(cls: type) -> bytes:
    """The code digest of a user-defined class (``b""`` for any other class), memoized like
    function digests: part of the token of its instances (see ``keys.CLASS_DIGEST``)."""
    try:
        entry = _class_memo.get(cls)
    except TypeError:
        entry = None
    if entry is not None and (not entry.checks or _still_valid(entry.checks)):
        return entry.digest
    checks: list[tuple[Any, ...]] = []
    user = is_user_module(getattr(cls, "__module__", None))
    digest = _class(cls, checks, data=False) if user else b""
    with contextlib.suppress(TypeError), _memo_lock:
        _class_memo[cls] = _Entry(digest, checks)
    return digest


def _methods_of(value: Any) -> list[FunctionType]:
    if isinstance(value, staticmethod | classmethod):
        value = value.__func__
    if isinstance(value, property):
        return [f for f in (value.fget, value.fset, value.fdel) if isinstance(f, FunctionType)]
    return [value] if isinstance(value, FunctionType) else []


def _all_names(code: CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            names |= _all_names(const)
    return names


def _code_digest(code: CodeType, doc: str | None) -> bytes:
    consts = code.co_consts
    flags = code.co_flags
    if doc is not None:
        if flags & _CO_HAS_DOCSTRING:
            consts = consts[1:]
            flags &= ~_CO_HAS_DOCSTRING
        elif consts and isinstance(consts[0], str) and consts[0] == doc:
            consts = (None, *consts[1:])
    parts = [
        code.co_code,
        b"%d,%d,%d,%d" % (code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount, flags),
        value_token(code.co_names),
        value_token(code.co_varnames),
        value_token(code.co_freevars),
        value_token(code.co_cellvars),
        getattr(code, "co_exceptiontable", b""),
    ]
    for const in consts:
        parts.append(
            b"k"
            + (_code_digest(const, None) if isinstance(const, CodeType) else value_token(const))
        )
    return _join([part if isinstance(part, bytes) else bytes(part) for part in parts])


keys.register_callable_digest(callable_digest, class_digest)
