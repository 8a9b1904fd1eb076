"""Type-checked connections: each value a node passes to another is checked when the pipeline is
built, from the two functions' annotations.

A connection is an error only when the producer's annotation and the consumer's are *clearly*
incompatible: no value of the produced type could be what the consumer takes (``str`` into
``int``, ``list[str]`` into ``dict``, ``list[str]`` into ``list[int]``).  Anything the checker
cannot decide passes: unannotated parameters, ``Any``, ``TypeVar``s, ``Protocol``s, unresolvable
forward references, and a wider type into a narrower one (``object`` into ``int``, or
``int | None`` into ``int``: some values fit).  Nested pipelines are checked at their boundary,
through their input and output mappings; a nested pipeline that maps over an input takes its
items, and its outputs reach the outer pipeline as lists.

``type_check="runtime"`` also checks each value a node returns against its annotation as the
pipeline runs (with ``typeguard``); that costs a wrapper per annotated node, and nothing when off.
"""

from __future__ import annotations

import collections.abc as abc
import contextlib
import functools
import inspect
import types
import typing
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..exceptions import HyperNodesError, TypeMismatchError, TypeMismatchWarning
from ..viz.hints import type_name
from .node import Node

TypeCheck = Literal["error", "warn", "off", "runtime"]
TYPE_CHECK_MODES: tuple[str, ...] = ("error", "warn", "off", "runtime")

_EMPTY: Mapping[str, Any] = types.MappingProxyType({})
_UNKNOWN: Any = object()  # a hint the checker cannot reason about: compatible with everything
_NOT_ITERABLE: Any = object()  # the "element type" of something that cannot be mapped over


# ---------------------------------------------------------------------------------------------
# Reading annotations


_resolved: weakref.WeakKeyDictionary[Any, Mapping[str, Any]] = weakref.WeakKeyDictionary()


def function_hints(func: Any) -> Mapping[str, Any]:
    """The annotations of what a node calls, forward references resolved, by parameter name (and
    ``"return"``).  Annotations that cannot be resolved are left out.  Cheap when unannotated.

    A class's hints are those of its ``__init__`` with the class itself as the return type; a
    callable object's are those of its ``__call__``.
    """
    returns: Any = None
    if isinstance(func, types.FunctionType):
        target: Any = func
    elif isinstance(func, type):
        target, returns = func.__init__, func
    elif inspect.isroutine(func):
        target = func
    elif callable(func):
        target = getattr(type(func), "__call__", None)  # noqa: B004
    else:
        return _EMPTY
    raw = getattr(target, "__annotations__", None)
    if not raw or not isinstance(raw, dict):
        return _EMPTY if returns is None else {"return": returns}
    if str not in map(type, raw.values()):  # no string (forward) annotation to resolve
        hints: Mapping[str, Any] = raw
    else:
        try:
            hints = _resolved[target]
        except (KeyError, TypeError):
            hints = _resolve_strings(target, raw)
            with contextlib.suppress(TypeError):  # not weak-referenceable: resolve again next time
                _resolved[target] = hints
    if returns is not None:
        hints = {**hints, "return": returns}
    return hints


def _resolve_strings(target: Any, raw: Mapping[str, Any]) -> Mapping[str, Any]:
    """``raw`` with string annotations evaluated in the function's module; unresolvable ones
    are dropped (the checker then knows nothing about that parameter)."""
    unwrapped = inspect.unwrap(getattr(target, "__func__", target))
    namespace = getattr(unwrapped, "__globals__", None)
    hints: dict[str, Any] = {}
    for name, value in raw.items():
        if isinstance(value, str):
            if namespace is None:
                continue
            try:
                value = eval(value, namespace)  # what typing.get_type_hints does, per name
            except Exception:
                continue
        hints[name] = value
    return hints


def _tuple_item(hint: Any, index: int, count: int) -> Any:
    """The type of element ``index`` of a ``tuple[...]`` return hint of ``count`` outputs."""
    hint = _normalize(hint)
    if typing.get_origin(hint) is not tuple:
        return None
    args = typing.get_args(hint)
    if len(args) == 2 and args[1] is Ellipsis:
        return args[0]
    if len(args) == count:
        return args[index]
    return None


# ---------------------------------------------------------------------------------------------
# Deciding compatibility


_ABSTRACT_FORMS = {
    typing.Any,
    typing.NoReturn,
    getattr(typing, "Never", typing.NoReturn),
    getattr(typing, "Self", typing.Any),
}
_WRAPPING_FORMS = {
    typing.Annotated,
    typing.ClassVar,
    typing.Final,
    getattr(typing, "Required", typing.Final),
    getattr(typing, "NotRequired", typing.Final),
    getattr(typing, "ReadOnly", typing.Final),
}
_UNIONS = (typing.Union, types.UnionType)
_PROMOTIONS = {float: (int,), complex: (int, float)}  # PEP 484: an int is acceptable as a float


def _normalize(hint: Any) -> Any:
    """The hint with wrappers removed, or ``_UNKNOWN`` for what the checker does not decide."""
    for _ in range(20):  # a bounded unwrap: aliases of aliases
        if hint is None:
            return type(None)
        if _hashable(hint) and hint in _ABSTRACT_FORMS:  # before classes: Any is one in 3.11+
            return _UNKNOWN
        if isinstance(hint, type):
            return _UNKNOWN if _is_protocol(hint) else hint
        if hint is typing.LiteralString:
            return str
        origin = typing.get_origin(hint)
        if origin in _WRAPPING_FORMS:
            hint = typing.get_args(hint)[0]
            continue
        if isinstance(hint, typing.NewType):
            hint = hint.__supertype__
            continue
        value = getattr(hint, "__value__", None)  # a 3.12 ``type X = ...`` alias
        if value is not None and type(hint).__name__ == "TypeAliasType":
            hint = value
            continue
        if origin is None:
            # strings, ForwardRefs, TypeVars, ParamSpecs and objects that are not types
            return _UNKNOWN
        return hint
    return _UNKNOWN


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _is_protocol(cls: type) -> bool:
    return bool(getattr(cls, "_is_protocol", False)) and cls is not typing.Generic


def _split(hint: Any) -> tuple[Any, tuple[Any, ...]]:
    """``(origin class, type arguments)``; the origin is ``None`` for a form that is not a class."""
    if isinstance(hint, type):
        return hint, ()
    origin = typing.get_origin(hint)
    if isinstance(origin, type):
        return (_UNKNOWN if _is_protocol(origin) else origin), typing.get_args(hint)
    return None, ()


_memo: dict[tuple[Any, Any], bool] = {}


def compatible(produced: Any, expected: Any) -> bool:
    """Whether a value annotated ``produced`` may be what a parameter annotated ``expected`` takes.

    ``False`` means clearly incompatible: no value of one type is a value of the other.  Every
    case the checker cannot decide is ``True``.
    """
    if produced is expected:
        return True
    try:
        key = (produced, expected)
        found = _memo.get(key)
    except TypeError:  # an unhashable annotation (Literal of a list, odd objects)
        key, found = None, None
    if found is None:
        try:
            found = _compatible(produced, expected)
        except RecursionError:
            found = True
        except Exception:  # issubclass/get_args on exotic objects: undecidable
            found = True
        if key is not None and len(_memo) < 10_000:
            _memo[key] = found
    return found


def _compatible(produced: Any, expected: Any) -> bool:
    """:func:`compatible`, undecided by the memo: unions and literals by member, then classes."""
    p = _normalize(produced)
    c = _normalize(expected)
    if p is _UNKNOWN or c is _UNKNOWN or p is c or p == c:
        return True
    by_member = _members_compatible(p, c)
    if by_member is not None:
        return by_member
    return _generics_compatible(p, c)


def _members_compatible(p: Any, c: Any) -> bool | None:
    """Whether some member of a union (or some value of a ``Literal``) on either side fits;
    ``None`` when neither side is a union or a ``Literal``."""
    p_origin = typing.get_origin(p)
    c_origin = typing.get_origin(c)
    if p_origin in _UNIONS:
        return any(compatible(member, c) for member in typing.get_args(p))
    if c_origin in _UNIONS:
        return any(compatible(p, member) for member in typing.get_args(c))
    if p_origin is Literal:
        return any(compatible(type(v), c) for v in typing.get_args(p))
    if c_origin is Literal:
        return any(compatible(p, type(v)) for v in typing.get_args(c))
    return None


def _generics_compatible(p: Any, c: Any) -> bool:
    """Whether two normalized class hints (``list[str]``, ``int``) overlap, arguments included."""
    p_cls, p_args = _split(p)
    c_cls, c_args = _split(c)
    if not isinstance(p_cls, type) or not isinstance(c_cls, type):
        return True
    if not _classes_overlap(p_cls, c_cls):
        return False
    if not p_args or not c_args:
        return True
    return _arguments_compatible(p_cls, p_args, c_cls, c_args)


def _classes_overlap(p: type, c: type) -> bool:
    """Whether a value of class ``p`` may be a ``c``: one is a subclass of the other (an upcast
    or a possible downcast), a numeric promotion, or a protocol-like class is involved."""
    if _is_protocol(p) or _is_protocol(c):
        return True
    if issubclass(p, c) or issubclass(c, p):
        return True
    return p in _PROMOTIONS.get(c, ())


def _shape(cls: type, args: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]] | None:
    """What the type arguments of ``cls[args]`` mean: ``("items", (T,))`` for a collection or
    iterator of ``T``, ``("fixed", (A, B))`` for ``tuple[A, B]``, ``("map", (K, V))``,
    ``("type", (T,))`` for ``type[T]``, or ``None`` when unknown (compare same classes only)."""
    if cls is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return "items", (args[0],)
        if args == ((),):  # tuple[()]
            return "fixed", ()
        return "fixed", args
    if cls is type:
        return "type", args[:1]
    if issubclass(cls, abc.Mapping):
        return "map", (*args, typing.Any)[:2]
    if issubclass(cls, (abc.Generator, abc.AsyncGenerator)):
        return "items", args[:1]
    if issubclass(cls, (abc.Iterable, abc.AsyncIterable)) and len(args) == 1:
        return "items", args
    return None


def _arguments_compatible(
    p_cls: type, p_args: tuple[Any, ...], c_cls: type, c_args: tuple[Any, ...]
) -> bool:
    """Whether the type arguments of two overlapping generic classes may agree."""
    if p_cls is abc.Callable or c_cls is abc.Callable:
        return True  # parameter lists: not worth deciding here
    p_shape = _shape(p_cls, p_args)
    c_shape = _shape(c_cls, c_args)
    if p_shape is None or c_shape is None:
        if p_cls is c_cls and len(p_args) == len(c_args):  # a user generic: Box[int] vs Box[str]
            return all(compatible(a, b) for a, b in zip(p_args, c_args))
        return True
    return _shapes_compatible(*p_shape, *c_shape)


def _shapes_compatible(
    p_kind: str, p_types: tuple[Any, ...], c_kind: str, c_types: tuple[Any, ...]
) -> bool:
    """Whether two :func:`_shape` results may agree: the same kind argument by argument, else
    what iterating each yields (a ``type[...]`` against anything else: undecided)."""
    if p_kind == c_kind == "fixed":
        return len(p_types) == len(c_types) and all(map(compatible, p_types, c_types))
    if p_kind == c_kind and p_kind in ("map", "type", "items"):
        return all(map(compatible, p_types, c_types))
    if "type" in (p_kind, c_kind):
        return True
    # Compare what iterating yields: a mapping's keys, a collection's items, each tuple element.
    if p_kind == "fixed":
        return all(compatible(t, c_types[0]) for t in p_types)
    if c_kind == "fixed":
        return all(compatible(p_types[0], t) for t in c_types)
    return compatible(p_types[0], c_types[0])


def element_type(hint: Any) -> Any:
    """The type of the items of a value annotated ``hint`` when a map iterates over it:
    ``_UNKNOWN`` when it cannot tell, ``_NOT_ITERABLE`` when the value cannot be mapped over."""
    try:
        return _element_type(hint)
    except Exception:
        return _UNKNOWN


def _element_type(hint: Any) -> Any:
    """:func:`element_type`, which turns what this raises into ``_UNKNOWN``."""
    hint = _normalize(hint)
    if hint is _UNKNOWN:
        return _UNKNOWN
    origin = typing.get_origin(hint)
    if origin in _UNIONS:
        return _union_element_type(hint)
    if origin is Literal:
        return _UNKNOWN
    cls, args = _split(hint)
    if not isinstance(cls, type):
        return _UNKNOWN
    if _is_protocol(cls) or not issubclass(cls, abc.Iterable):
        return _UNKNOWN if _maybe_iterable(cls) else _NOT_ITERABLE
    return _shape_element_type(cls, args)


def _union_element_type(hint: Any) -> Any:
    """The element type of a union: the union of its iterable members' element types."""
    items = [element_type(m) for m in typing.get_args(hint)]
    items = [t for t in items if t is not _NOT_ITERABLE]
    if not items:
        return _NOT_ITERABLE
    return _union_of(items)


def _shape_element_type(cls: type, args: tuple[Any, ...]) -> Any:
    """The element type of the iterable class ``cls[args]``, from its :func:`_shape`."""
    shape = _shape(cls, args) if args else None
    if shape is None:
        return _UNKNOWN
    kind, found = shape
    if kind == "fixed":
        return _union_of(list(found)) if found else _UNKNOWN
    return found[0] if kind in ("items", "map") else _UNKNOWN


def _union_of(hints: list[Any]) -> Any:
    """``A | B | ...`` of element types, or ``_UNKNOWN`` if any is unknown."""
    if any(h is _UNKNOWN for h in hints):
        return _UNKNOWN
    try:
        return typing.Union[tuple(hints)]  # noqa: UP007 - `|` refuses some typing forms
    except TypeError:
        return _UNKNOWN


def _maybe_iterable(cls: type) -> bool:
    """A class that is not iterable itself but may have iterable subclasses (``object``, ABCs)."""
    return cls is object or inspect.isabstract(cls) or _is_protocol(cls)


# ---------------------------------------------------------------------------------------------
# Checking a pipeline


@dataclass(frozen=True, slots=True)
class _End:
    """One end of a connection: the type, and who holds it (for messages)."""

    hint: Any
    who: str
    #: on the consumer side: how many levels of nested maps iterate over the value first
    depth: int = 0
    #: on the consumer side: the parameter (or inner input) name when it differs from the value's
    param: str | None = None
    #: on the consumer side: the nested pipeline that maps over the value (the outermost one)
    mapper: str | None = None


def describe_type(hint: Any) -> str:
    """A short name for a type hint: ``int``, ``list[str]``, ``int | None``."""
    return type_name(hint)


class _Checker:
    """Finds the annotated ends of each connection of one pipeline; memoizes per node."""

    def __init__(self) -> None:
        #: function -> its hints, for this check (functions compare by identity)
        self.memo: dict[Any, Mapping[str, Any]] = {}

    def hints(self, node: Node) -> Mapping[str, Any]:
        func = node.func
        try:
            found = self.memo.get(func)
        except TypeError:  # an unhashable callable object
            return node_hints(node)
        if found is None:
            found = self.memo[func] = node_hints(node)
        return found

    def produced(self, item: Any, name: str) -> _End | None:
        """The annotated type of output ``name`` of ``item``, or ``None``."""
        if isinstance(item, Node):
            hints = self.hints(item)
            if not hints:
                return None
            ret = hints.get("return")
            if ret is None:
                return None
            outputs = item.outputs
            if len(outputs) > 1:
                ret = _tuple_item(ret, outputs.index(name), len(outputs))
                if ret is None:
                    return None
            return _End(ret, f"node {item.name!r}")
        pipeline = getattr(item, "pipeline", None)
        if pipeline is None:
            return None
        inner_name = item.output_to_inner[name]
        inner = pipeline.pgraph.producer.get(inner_name)
        found = None if inner is None else self.produced(inner, inner_name)
        if found is None:
            return None
        where = f"{found.who} of nested pipeline {item.name!r}"
        hint = list[found.hint] if item.map_over else found.hint
        return _End(hint, where)

    def expected(self, item: Any, name: str) -> list[_End]:
        """The annotated types that ``item`` takes its input ``name`` as (one per inner reader)."""
        if isinstance(item, Node):
            return self._node_expected(item, name)
        pipeline = getattr(item, "pipeline", None)
        if pipeline is None:
            return []
        inner_name = next((i for i, o in item.input_to_outer.items() if o == name), None)
        if inner_name is None:
            return []
        found = []
        for reader in pipeline.pgraph.nodes:
            if inner_name in reader.inputs:
                found.extend(self._nested_expected(item, reader, inner_name, name))
        return found

    def _node_expected(self, item: Node, name: str) -> list[_End]:
        """The annotated type node ``item`` takes its input ``name`` as, if any (a list of one)."""
        hints = self.hints(item)
        if not hints:
            return []
        inputs = item.inputs
        param = name if inputs is item.parameters else item.parameters[inputs.index(name)]
        hint = hints.get(param)
        if hint is None:
            return []
        return [_End(hint, f"node {item.name!r}", 0, param if param != name else None)]

    def _nested_expected(self, item: Any, reader: Any, inner_name: str, name: str) -> list[_End]:
        """What ``reader``, inside nested pipeline ``item``, takes the outer ``name`` as."""
        mapped = inner_name in item._inner_map_over
        return [
            _End(
                end.hint,
                f"{end.who} of nested pipeline {item.name!r}",
                end.depth + mapped,
                end.param or (inner_name if inner_name != name else None),
                item.name if mapped else end.mapper,
            )
            for end in self.expected(reader, inner_name)
        ]


def check_pipeline(pipeline: Any, mode: str) -> None:
    """Check every connection of ``pipeline`` (built, not yet run); raise or warn per ``mode``."""
    checker = _Checker()
    if not _worth_checking(pipeline.pgraph.nodes, checker):
        return
    for name, produced, expected, problem in _mismatches(pipeline.pgraph.edges, checker):
        message = _message(pipeline.label, name, produced, expected, problem)
        if mode == "warn":
            warnings.warn(message, TypeMismatchWarning, stacklevel=3)
            continue
        raise TypeMismatchError(
            message,
            producer=produced.who,
            consumer=expected.who,
            name=name,
            produced=produced.hint,
            expected=expected.hint,
        )


def _mismatches(
    edges: Mapping[tuple[Any, Any], Sequence[str]], checker: _Checker
) -> Iterator[tuple[str, _End, _End, str]]:
    """``(name, produced, expected, problem)`` for each mismatched connection, in edge order."""
    for src, dst, names in _unsettled(edges, checker.memo.get):
        for name in names:
            produced = checker.produced(src, name)
            if produced is None:
                continue
            for expected in checker.expected(dst, name):
                problem = _mismatch(produced, expected)
                if problem is not None:
                    yield name, produced, expected, problem


def _unsettled(
    edges: Mapping[tuple[Any, Any], Sequence[str]], memo_get: Callable[[Any], Any]
) -> Iterator[tuple[Any, Any, Sequence[str]]]:
    """The edges ``(src, dst, names)`` that the quick node-to-node test leaves to the full check.

    The common case, node to node, is decided here without building anything: a 100k-node
    chain is checked in a few hundredths of a second (hints were read by _worth_checking).
    """
    plain = Node
    for (src, dst), names in edges.items():
        if type(src) is plain and type(dst) is plain:
            try:
                produced_hints = memo_get(src.func)
                expected_hints = memo_get(dst.func)
            except TypeError:  # an unhashable callable object: not in the memo
                produced_hints = expected_hints = None
            if produced_hints is not None and expected_hints is not None:
                ret = produced_hints.get("return")
                if ret is None or not expected_hints:
                    continue  # an end is unannotated
                if len(src.outputs) == 1:
                    inputs, params = dst.inputs, dst.parameters
                    for name in names:
                        param = name if inputs is params else params[inputs.index(name)]
                        if expected_hints.get(param, ret) is not ret:
                            break
                    else:
                        continue  # unannotated parameters, or the very same type object
        yield src, dst, names


def node_hints(node: Node) -> Mapping[str, Any]:
    """The annotations of ``node``'s function, per item: for a batch-only node (whose function
    takes and returns lists), the element types of its ``list[...]`` parameters and return; a
    parameter not annotated as a sequence (a resource, passed whole) is left unchecked."""
    hints = function_hints(node.func)
    if node.per_item or not hints:
        return hints
    per_item: dict[str, Any] = {}
    for name, hint in hints.items():
        if name == "return":
            continue
        element = element_type(hint)
        if element is not _UNKNOWN and element is not _NOT_ITERABLE:
            per_item[name] = element
    ret = hints.get("return")
    if ret is not None:
        element = _return_element(ret, len(node.outputs))
        if element is not _UNKNOWN:
            per_item["return"] = element
    return per_item


def _return_element(ret: Any, count: int) -> Any:
    """What one call of a batch-only node's function returns per item, for ``count`` outputs:
    the element type (``_UNKNOWN`` when unknown), or a ``tuple[...]`` of them for several."""
    if count == 1:
        element = element_type(ret)
        return _UNKNOWN if element is _NOT_ITERABLE else element
    parts = [_tuple_item(ret, i, count) for i in range(count)]
    elements = [Any if p is None else element_type(p) for p in parts]
    elements = [Any if e in (_UNKNOWN, _NOT_ITERABLE) else e for e in elements]
    return tuple[tuple(elements)]  # type: ignore[misc]


def _worth_checking(items: Sequence[Any], checker: _Checker) -> bool:
    """Whether some connection may have two annotated ends: some function annotates its return
    and some its parameters (or a nested pipeline is there).  Decided per distinct function, so
    that a large unannotated pipeline is skipped in one pass."""
    try:
        funcs = {getattr(item, "func", None): item for item in items}
    except TypeError:  # an unhashable callable object
        return True
    if None in funcs:  # a nested pipeline
        return True
    returns = params = False
    for func, item in funcs.items():
        hints = checker.memo[func] = node_hints(item)
        if hints:
            has_return = "return" in hints
            returns = returns or has_return
            params = params or len(hints) > has_return
    return returns and params


def _mismatch(produced: _End, expected: _End) -> str | None:
    """``None`` when compatible, else what is wrong, in words."""
    hint = produced.hint
    for _ in range(expected.depth):
        hint = element_type(hint)
        if hint is _NOT_ITERABLE:
            return "not a sequence"
        if hint is _UNKNOWN:
            return None
    return None if compatible(hint, expected.hint) else "incompatible"


def _message(pipeline: str, name: str, produced: _End, expected: _End, problem: str) -> str:
    taken = f" (parameter {expected.param!r})" if expected.param else ""
    if expected.depth:
        levels = "each item" if expected.depth == 1 else f"items {expected.depth} levels down"
        suffix = f" of nested pipeline {expected.mapper!r}"
        reader = expected.who
        if reader.endswith(suffix):
            reader = "its " + reader[: -len(suffix)]
        takes = f"maps over it and {reader}{taken} takes {levels} as {describe_type(expected.hint)}"
        if problem == "not a sequence":
            takes += f", and {describe_type(produced.hint)} is not a sequence"
        return (
            f"pipeline {pipeline!r}: {produced.who} produces {name!r} as "
            f"{describe_type(produced.hint)}, but nested pipeline {expected.mapper!r} {takes}. "
            + _ADVICE
        )
    else:
        takes = f"takes it as {describe_type(expected.hint)}{taken}"
    return (
        f"pipeline {pipeline!r}: {produced.who} produces {name!r} as "
        f"{describe_type(produced.hint)}, but {expected.who} {takes}. " + _ADVICE
    )


_ADVICE = (
    "Fix one of the annotations, convert the value in a node between them, or build the "
    "pipeline with type_check='warn' or 'off'"
)


def check_mode(mode: Any) -> str:
    """Validate a ``type_check=`` argument."""
    if mode not in TYPE_CHECK_MODES:
        raise HyperNodesError(
            f"type_check must be one of {', '.join(repr(m) for m in TYPE_CHECK_MODES)}, got {mode!r}"
        )
    return mode


# ---------------------------------------------------------------------------------------------
# Checking at run time


class CheckedNode(Node):
    """A copy of a node whose function checks what it returns against its return annotation.

    Made by ``Pipeline(..., type_check="runtime")``.  ``__wrapped__`` stays the user's function,
    so cache keys are those of the unchecked node.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        plain = object.__new__(Node)
        plain.__dict__.update(self.__dict__)
        plain.func = self.__wrapped__
        return (runtime_checked, (plain,))


def runtime_checked(node: Any) -> Any:
    """``node`` itself, or a :class:`CheckedNode` copy when its function annotates a return type."""
    if not isinstance(node, Node) or isinstance(node, CheckedNode):
        return node
    hints = function_hints(node.func)
    ret = hints.get("return") if hints else None
    if ret is None or _normalize(ret) is _UNKNOWN:
        return node
    try:
        import typeguard
    except ImportError as exc:
        raise HyperNodesError(
            "type_check='runtime' needs the typeguard package: pip install 'hypernodes[typecheck]'"
        ) from exc

    outputs = node.outputs
    if len(outputs) == 1:
        checks: list[tuple[int | None, str, Any]] = [(None, outputs[0], ret)]
    else:
        checks = [(i, out, _tuple_item(ret, i, len(outputs))) for i, out in enumerate(outputs)]
        checks = [c for c in checks if c[2] is not None]
    name = node.name
    func = node.__wrapped__
    ignore_forward_refs = typeguard.ForwardRefPolicy.IGNORE

    def check(result: Any) -> Any:
        for index, out, hint in checks:
            if index is None:
                value = result
            else:
                try:
                    value = result[index]
                except Exception:  # the wrong shape: the plan reports it
                    return result
            try:
                typeguard.check_type(value, hint, forward_ref_policy=ignore_forward_refs)
            except typeguard.TypeCheckError as exc:
                raise TypeMismatchError(
                    f"node {name!r} returned {type(value).__name__} for {out!r}, but its "
                    f"annotation says {describe_type(hint)} ({exc})",
                    producer=f"node {name!r}",
                    consumer=None,
                    name=out,
                    produced=type(value),
                    expected=hint,
                ) from None
            except Exception:  # a hint typeguard cannot check: undecided, so it passes
                continue
        return result

    if node.is_async:

        @functools.wraps(func)
        async def checked(*args: Any, **kwargs: Any) -> Any:
            return check(await func(*args, **kwargs))

    else:

        @functools.wraps(func)
        def checked(*args: Any, **kwargs: Any) -> Any:
            return check(func(*args, **kwargs))

    copy = object.__new__(CheckedNode)
    copy.__dict__.update(node.__dict__)
    copy.func = checked
    if not node.per_item:  # a batch-only node: its batch calls are checked too
        copy.batch_func = checked
    return copy


def with_runtime_checks(items: Iterable[Any]) -> list[Any]:
    """The nodes of a pipeline, with checked copies of those that annotate what they return."""
    return [runtime_checked(item) for item in items]


__all__ = [
    "TYPE_CHECK_MODES",
    "CheckedNode",
    "TypeCheck",
    "check_mode",
    "check_pipeline",
    "compatible",
    "element_type",
    "function_hints",
    "runtime_checked",
    "with_runtime_checks",
]
