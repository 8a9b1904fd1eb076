"""Replacing a node's function: :meth:`Pipeline.with_node_function` and ``hypernodes.testing``.

The replacement keeps the node's place and options (outputs, retries, timeout, cache settings,
checks); only the function changes, so its code digest, and with it the cache keys, change too.
"""

from __future__ import annotations

import copy
import difflib
import functools
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..exceptions import NodeSignatureError, UnknownNodeError, pipeline_phrase
from .gc import gc_paused
from .graph import PipelineGraph
from .node import Node
from .pipeline_node import PipelineNode
from .typecheck import CheckedNode, runtime_checked

if TYPE_CHECKING:
    from .pipeline import Pipeline


def patched_graph(pipeline: Pipeline, name: str, func: Callable[..., Any]) -> PipelineGraph:
    """The graph of ``pipeline`` with node ``name`` (a path ``"inner.node"`` into nested
    pipelines) calling ``func``."""
    if not isinstance(name, str) or not name:
        raise UnknownNodeError(f"name must be a node's name (a string), got {name!r}")
    head, _, rest = name.partition(".")
    position, found = _find(pipeline, head, name)
    if rest:
        if not isinstance(found, PipelineNode):
            raise UnknownNodeError(
                f"{name!r}: node {head!r} of {pipeline_phrase(pipeline.label)} is not a nested "
                f"pipeline, so it has no node {rest!r}"
            )
        replacement: Any = _nested_copy(found, rest, func)
    elif isinstance(found, PipelineNode):
        raise UnknownNodeError(
            f"node {head!r} is a nested pipeline; name one of its nodes instead, e.g. "
            f"{head + '.' + found.pipeline.pgraph.nodes[0].name!r}"
        )
    else:
        replacement = replaced_node(found, func, runtime=pipeline.type_check == "runtime")
    nodes = list(pipeline.pgraph.nodes)
    nodes[position] = replacement
    with gc_paused():
        return PipelineGraph(nodes, pipeline.label)


def _find(pipeline: Pipeline, head: str, full: str) -> tuple[int, Any]:
    hits = [(i, item) for i, item in enumerate(pipeline.pgraph.nodes) if item.name == head]
    if len(hits) == 1:
        return hits[0]
    names = [item.name for item in pipeline.pgraph.nodes]
    where = pipeline_phrase(pipeline.label)
    if hits:
        raise UnknownNodeError(
            f"{where} has {len(hits)} nodes named {head!r}; give them distinct names "
            "(@node(name=...)) to patch one"
        )
    close = difflib.get_close_matches(head, names, n=3)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    raise UnknownNodeError(f"{where} has no node {full!r}{hint}; its nodes are {names}")


def _nested_copy(found: PipelineNode, rest: str, func: Callable[..., Any]) -> PipelineNode:
    inner = found.pipeline.with_node_function(rest, func)
    clone = copy.copy(found)
    clone.pipeline = inner
    clone._requirements = {}
    return clone


def replaced_node(old: Node, func: Callable[..., Any], runtime: bool = False) -> Node:
    """A copy of ``old`` that calls ``func`` (its returns checked with ``runtime``); raises
    :class:`NodeSignatureError` when ``func`` takes other parameters than ``old``'s function or
    declares another number of outputs."""
    where = f"with_node_function({old.name!r}, ...)"
    plain = _plain_function(where, old, func)
    fresh = Node(plain, name=old.name, output_name=old.output_name, batch=not old.per_item)
    _check_parameters(where, old, fresh)
    _check_returns(where, old, plain)
    clone = object.__new__(Node if isinstance(old, CheckedNode) else type(old))
    clone.__dict__.update(old.__dict__)  # a runtime-checked node is checked again below
    clone.func, clone.__wrapped__, clone.is_async = fresh.func, fresh.__wrapped__, fresh.is_async
    to_input = dict(zip(old.parameters, old.inputs))
    clone.parameters = fresh.parameters
    clone.inputs = tuple(to_input[p] for p in fresh.parameters)
    # the node's defaults stay (the pipeline's inputs do not change); the replacement's win
    clone.defaults = {**old.defaults, **{to_input[p]: v for p, v in fresh.defaults.items()}}
    clone.keyword_only = frozenset(to_input[p] for p in fresh.keyword_only)
    # a dual node's batch function would bypass the replacement: it goes
    clone.batch_func = None if old.per_item else plain
    if runtime:
        clone = runtime_checked(clone)
    lacking = {
        p: old.defaults[to_input[p]]
        for p in fresh.parameters
        if to_input[p] in old.defaults and p not in fresh.defaults
    }
    if lacking:  # the plan leaves trailing defaults to the function itself: give it them
        clone.func = _with_defaults(clone.func, fresh.parameters, lacking, fresh.is_async)
    return clone


def _plain_function(where: str, old: Node, func: Any) -> Callable[..., Any]:
    """The function to call: ``func``, or a node's function (with as many outputs as ``old``)."""
    plain = func.func if isinstance(func, Node) else func
    if not callable(plain):
        raise NodeSignatureError(f"{where}: the replacement must be a function, got {func!r}")
    if isinstance(func, Node) and len(func.outputs) != len(old.outputs):
        raise NodeSignatureError(
            f"{where}: the replacement node has outputs {list(func.outputs)}, but node "
            f"{old.name!r} has {list(old.outputs)}; return as many values"
        )
    return plain


def _with_defaults(
    func: Callable[..., Any], params: tuple[str, ...], defaults: dict[str, Any], is_async: bool
) -> Callable[..., Any]:
    """``func`` called with ``defaults`` for the parameters (of ``params``) it is not given."""

    def complete(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        given = set(params[: len(args)]) | set(kwargs)
        return {**{p: v for p, v in defaults.items() if p not in given}, **kwargs}

    if is_async:

        @functools.wraps(func)
        async def acall(*args: Any, **kwargs: Any) -> Any:
            return await func(*args, **complete(args, kwargs))

        return acall

    @functools.wraps(func)
    def call(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **complete(args, kwargs))

    return call


def _check_parameters(where: str, old: Node, fresh: Node) -> None:
    if set(fresh.parameters) == set(old.parameters):
        return
    missing = [p for p in old.parameters if p not in fresh.parameters]
    extra = [p for p in fresh.parameters if p not in old.parameters]
    detail = "; ".join(
        part
        for part in (
            f"it lacks {missing}" if missing else "",
            f"it also takes {extra}" if extra else "",
        )
        if part
    )
    raise NodeSignatureError(
        f"{where}: the replacement takes {list(fresh.parameters)}, but node {old.name!r} takes "
        f"{list(old.parameters)} ({detail}); give it the same parameter names, in any order"
    )


def _check_returns(where: str, old: Node, func: Callable[..., Any]) -> None:
    """A replacement annotated to return a fixed-length tuple must fit a node of several outputs."""
    if len(old.outputs) == 1:
        return
    try:
        hint = typing.get_type_hints(func).get("return")
    except Exception:  # unresolvable annotations: nothing to compare
        return
    if hint is None or typing.get_origin(hint) is not tuple:
        return
    args = typing.get_args(hint)
    if not args or args[-1] is Ellipsis or len(args) == len(old.outputs):
        return
    raise NodeSignatureError(
        f"{where}: the replacement is annotated to return {len(args)} values, but node "
        f"{old.name!r} has {len(old.outputs)} outputs {list(old.outputs)}"
    )


__all__ = ["patched_graph", "replaced_node"]
