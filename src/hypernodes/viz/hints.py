"""Type hints of the values a pipeline passes around, as short strings for pictures.

A node's input and output types come from its function's annotations (``typing.get_type_hints``,
falling back to the raw annotations when a name cannot be resolved).  A nested pipeline's outputs
take the types of the inner nodes that produce them; mapped ones become ``list[...]``.
"""

from __future__ import annotations

import inspect
import re
import typing
from typing import Any

from ..model.node import Node
from ..model.pipeline_node import PipelineNode

_QUALIFIED = re.compile(r"\b(?:[A-Za-z_]\w*\.)+([A-Za-z_]\w*)")


def type_name(hint: Any) -> str:
    """A short, readable name for a type hint: ``int``, ``list[float]``, ``Optional[str]``."""
    if hint is None or hint is type(None):
        return "None"
    if isinstance(hint, str):  # a raw annotation; quotes come from a quoted forward reference
        return hint.strip("'\"")
    if isinstance(hint, type) and not typing.get_args(hint):
        return hint.__qualname__
    text = repr(hint)
    return _QUALIFIED.sub(r"\1", text)  # drop module paths: typing.Optional -> Optional


def _annotations(func: Any) -> dict[str, Any]:
    """The annotations of ``func`` (parameters and ``"return"``), resolved where possible."""
    # a callable object's hints live on its class's ``__call__`` (classes: see the signature)
    target = func if inspect.isroutine(func) else type(func).__call__
    if not isinstance(func, type):
        try:
            hints = typing.get_type_hints(target)
        except Exception:  # an unresolvable forward reference: use what is written
            hints = None
        if hints:
            return hints
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return {}
    found = {
        name: p.annotation
        for name, p in signature.parameters.items()
        if p.annotation is not inspect.Parameter.empty
    }
    if signature.return_annotation is not inspect.Signature.empty:
        found["return"] = signature.return_annotation
    return found


class TypeHints:
    """Input and output types of nodes and nested pipelines, looked up once per object."""

    def __init__(self) -> None:
        self._memo: dict[int, tuple[Any, dict[str, str], dict[str, str]]] = {}

    def inputs(self, item: Any) -> dict[str, str]:
        """Input (wire) name -> type name, for the inputs whose type is known."""
        return self._lookup(item)[1]

    def outputs(self, item: Any) -> dict[str, str]:
        """Output name -> type name, for the outputs whose type is known."""
        return self._lookup(item)[2]

    def pipeline_input(self, pipeline: Any, name: str) -> str | None:
        """The type of ``pipeline``'s input ``name``: what the first node reading it annotates."""
        for item in pipeline.pgraph.order:
            if name in item.inputs:
                found = self.inputs(item).get(name)
                if found is not None:
                    return found
        return None

    def pipeline_output(self, pipeline: Any, name: str) -> str | None:
        """The type of ``pipeline``'s output ``name``: what its producer annotates."""
        producer = pipeline.pgraph.producer.get(name)
        return None if producer is None else self.outputs(producer).get(name)

    def _lookup(self, item: Any) -> tuple[Any, dict[str, str], dict[str, str]]:
        found = self._memo.get(id(item))
        if found is None:
            if isinstance(item, PipelineNode):
                ins, outs = self._pipeline_node(item)
            elif isinstance(item, Node):
                ins, outs = self._node(item)
            else:
                ins, outs = {}, {}
            found = (item, ins, outs)  # keep ``item`` alive so its id is not reused
            self._memo[id(item)] = found
        return found

    def _node(self, node: Node) -> tuple[dict[str, str], dict[str, str]]:
        hints = _annotations(node.func)
        ins = {
            wire: type_name(hints[param])
            for wire, param in zip(node.inputs, node.parameters)
            if param in hints
        }
        outs: dict[str, str] = {}
        if "return" in hints:
            result = hints["return"]
            if len(node.outputs) == 1:
                outs[node.outputs[0]] = type_name(result)
            else:
                outs = dict(zip(node.outputs, _tuple_items(result, len(node.outputs))))
        return ins, outs

    def _pipeline_node(self, pn: PipelineNode) -> tuple[dict[str, str], dict[str, str]]:
        ins: dict[str, str] = {}
        for inner, outer in pn.input_to_outer.items():
            found = self.pipeline_input(pn.pipeline, inner)
            if found is not None:
                ins[outer] = f"list[{found}]" if outer in pn.map_over else found
        outs: dict[str, str] = {}
        for inner, outer in pn.output_to_outer.items():
            found = self.pipeline_output(pn.pipeline, inner)
            if found is not None:
                outs[outer] = f"list[{found}]" if pn.map_over else found
        return ins, outs


def _tuple_items(hint: Any, count: int) -> list[str]:
    """Element types of a ``tuple[A, B]`` (or ``tuple[A, ...]``) return hint; none if unclear."""
    if typing.get_origin(hint) is not tuple:
        return []
    args = typing.get_args(hint)
    if len(args) == 2 and args[1] is Ellipsis:
        return [type_name(args[0])] * count
    if len(args) != count:
        return []
    return [type_name(a) for a in args]
