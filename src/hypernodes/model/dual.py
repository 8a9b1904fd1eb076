"""The original HyperNodes 0.4's dual nodes, on our batch nodes: ``DualNode(output_name,
singular=, batch=)`` and ``@batch_optimized``.

A dual node here is a :class:`~hypernodes.Node` with a batch twin (``@node(batch=fn)``): ``run``
and per-item paths call ``singular``; maps call ``batch`` on groups of items.  Our batch functions
take one list per parameter; 0.4's took a ``pyarrow.Array`` for each mapped parameter and the
value itself for a constant one.  :class:`DualNode` keeps 0.4's contract when pyarrow is
installed, by the batch function's annotations: a parameter annotated ``pa.Array`` (or
``pa.ChunkedArray``) gets the batch as an array; one annotated with another type gets the one
value all items share; an unannotated one gets an array unless every item holds the very same
object (a constant).  Without pyarrow every parameter gets a list.  The result may be a
``pyarrow`` array, a numpy array or a list.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from ..exceptions import InvalidNodeError
from .node import Node

try:  # pyarrow is optional: without it batch functions get lists
    import pyarrow as _pa
except ImportError:  # pragma: no cover - pyarrow comes with the dev extra
    _pa = None

__all__ = ["BatchAdapter", "DualNode", "adapt_for_hypernodes", "batch_optimized"]

#: how a batch parameter is passed: as an array, as the one shared value, or decided per call
ARRAY, SHARED, EITHER = "array", "shared", "either"


def _arrow_kinds() -> tuple[type, ...]:
    return () if _pa is None else (_pa.Array, _pa.ChunkedArray)


def _how(param: inspect.Parameter) -> str:
    """How a batch function's parameter wants its values, read from its annotation."""
    hint = param.annotation
    if hint is inspect.Parameter.empty:
        return EITHER
    kinds = _arrow_kinds()
    if isinstance(hint, str):
        return ARRAY if hint.split(".")[-1] in ("Array", "ChunkedArray") else SHARED
    if isinstance(hint, type) and kinds and issubclass(hint, kinds):
        return ARRAY
    origin = getattr(hint, "__origin__", None)
    if origin in (list, tuple) or (isinstance(origin, type) and issubclass(origin, Sequence)):
        return "list"
    return SHARED


def _as_arg(values: list[Any], how: str) -> Any:
    if how == "list" or _pa is None:
        return values
    if how == SHARED:
        return values[0]
    if how == EITHER and values and all(v is values[0] for v in values):
        return values[0]
    return _pa.array(values)


def _as_list(result: Any) -> Any:
    if isinstance(result, tuple):  # several outputs: one sequence each
        return tuple(_as_list(part) for part in result)
    if _pa is not None and isinstance(result, _arrow_kinds()):
        return result.to_pylist()
    if hasattr(result, "tolist") and not isinstance(result, list):
        return result.tolist()
    return result


def _arrow_batch(batch: Callable[..., Any], names: Sequence[str]) -> Callable[..., Any]:
    """``batch`` (0.4's contract) as our batch function: lists in, a sequence out."""
    try:
        params = list(inspect.signature(batch).parameters.values())
    except (TypeError, ValueError) as exc:
        raise InvalidNodeError(f"cannot read the parameters of {batch!r}: {exc}") from exc
    if len(params) != len(names):
        raise InvalidNodeError(
            f"DualNode: the batch function takes {len(params)} parameter(s) "
            f"({[p.name for p in params]}), the singular one {len(names)} ({list(names)})"
        )
    kinds = [_how(p) for p in params]

    def call_batch(*columns: list[Any]) -> Any:
        return _as_list(batch(*[_as_arg(c, k) for c, k in zip(columns, kinds)]))

    # our batch twin must take the singular function's parameter names
    call_batch.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names]
    )
    call_batch.__wrapped_batch__ = batch  # type: ignore[attr-defined]
    call_batch.__name__ = getattr(batch, "__name__", "batch")
    call_batch.__qualname__ = getattr(batch, "__qualname__", call_batch.__name__)
    call_batch.__module__ = getattr(batch, "__module__", __name__)
    return call_batch


def DualNode(
    output_name: str | tuple[str, ...],
    singular: Callable[..., Any],
    batch: Callable[..., Any],
    cache: bool = True,
    name: str | None = None,
) -> Node:
    """0.4's ``DualNode``: a node that runs ``singular`` per item and ``batch`` for groups of
    map items (see the module docstring for what ``batch`` receives).  Returns our dual
    :class:`~hypernodes.Node` (``node.is_batch`` is True)."""
    if not callable(singular) or not callable(batch):
        raise InvalidNodeError("DualNode needs callable singular= and batch= functions")
    made = Node(singular, output_name, cache=cache, name=name)
    return made.batch(_arrow_batch(batch, made.parameters))


class BatchAdapter:
    """What 0.4's ``@batch_optimized`` made: a function with a ``singular`` and a ``batch``
    version.  Calling it calls ``singular``; :meth:`node` makes our dual node of the pair."""

    def __init__(
        self, singular: Callable[..., Any], batch: Callable[..., Any], name: str | None = None
    ) -> None:
        self.singular = singular
        self.batch = batch
        self.name = name or getattr(singular, "__name__", "batch_optimized")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.singular(*args, **kwargs)

    def batch_version(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator: ``func`` (lists in, list out) becomes the batch version."""
        self.batch = func
        return func

    def node(self, output_name: str | tuple[str, ...], cache: bool = True) -> Node:
        """Our dual node: ``singular`` per item, ``batch`` (lists in, list out) for batches."""
        made = Node(self.singular, output_name, cache=cache, name=self.name)
        batch = self.batch
        params = list(inspect.signature(batch).parameters)
        if tuple(params) != made.parameters:  # the original allowed other names (texts/text)
            batch = _renamed(batch, made.parameters)
        return made.batch(batch)

    def __repr__(self) -> str:
        return f"BatchAdapter({self.name!r})"


def _renamed(batch: Callable[..., Any], names: Sequence[str]) -> Callable[..., Any]:
    def call_batch(*columns: Any) -> Any:
        return batch(*columns)

    call_batch.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names]
    )
    call_batch.__name__ = getattr(batch, "__name__", "batch")
    call_batch.__qualname__ = getattr(batch, "__qualname__", call_batch.__name__)
    call_batch.__module__ = getattr(batch, "__module__", __name__)
    return call_batch


def _looped(singular: Callable[..., Any]) -> Callable[..., Any]:
    """A batch version that calls ``singular`` once per item (0.4's ``auto_wrap``)."""

    def looped(*columns: list[Any]) -> list[Any]:
        return [singular(*values) for values in zip(*columns)]

    return looped


def batch_optimized(cls_or_func: Any = None, *, auto_wrap: bool = True) -> Any:
    """0.4's ``@batch_optimized``: a class with ``singular`` and ``batch`` static methods, or a
    function (its batch version set with ``@f.batch_version``, or a loop over it with
    ``auto_wrap``).  Gives a :class:`BatchAdapter`; ``adapter.node(output_name)`` is the node."""

    def decorate(target: Any) -> BatchAdapter:
        if inspect.isclass(target):
            if not hasattr(target, "singular"):
                raise InvalidNodeError(
                    f"@batch_optimized class {target.__name__} needs a 'singular' static method"
                )
            batch = getattr(target, "batch", None)
            if batch is None:
                batch = _looped(target.singular)
            return BatchAdapter(target.singular, batch, target.__name__)
        if not callable(target):
            raise InvalidNodeError(f"@batch_optimized needs a class or a function, got {target!r}")
        return BatchAdapter(target, _looped(target) if auto_wrap else target)

    return decorate if cls_or_func is None else decorate(cls_or_func)


def adapt_for_hypernodes(adapter: BatchAdapter, output_name: str | tuple[str, ...]) -> Node:
    """0.4's name for ``adapter.node(output_name)``."""
    return adapter.node(output_name)
