"""``pipeline.as_node(namespace="train")``: every input and output of the inner pipeline seen
from outside as ``train_<name>``, so one pipeline can sit twice in a parent without a mapping
per name."""

from __future__ import annotations

import keyword
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..exceptions import NamespaceError

if TYPE_CHECKING:
    from .pipeline import Pipeline


def namespaced(
    pipeline: Pipeline,
    namespace: str,
    input_mapping: Mapping[str, str] | None,
    output_mapping: Mapping[str, str] | None,
) -> tuple[dict[str, str], dict[str, str]]:
    """The ``input_mapping`` (``{outer: inner}``) and ``output_mapping`` (``{inner: outer}``)
    that prefix every name with ``namespace_``; names the given mappings rename keep theirs."""
    if (
        not isinstance(namespace, str)
        or not namespace.isidentifier()
        or keyword.iskeyword(namespace)
    ):
        raise NamespaceError(
            f"as_node(namespace={namespace!r}): a namespace is a Python identifier such as "
            "'train', so that the names it makes (train_x) can be parameters of outer nodes"
        )
    inputs = dict(input_mapping or {})
    outputs = dict(output_mapping or {})
    mapped_inner = set(inputs.values())
    bound = pipeline.bound_inputs
    for inner in pipeline.root_args:
        if inner not in mapped_inner and inner not in bound:
            _add(inputs, f"{namespace}_{inner}", inner, namespace, "input")
    taken = set(outputs.values())
    for inner in pipeline.output_names:
        if inner not in outputs:
            outer = f"{namespace}_{inner}"
            if outer in taken:
                raise _clash(namespace, "output", outer, inner, "output_mapping")
            outputs[inner] = outer
    return inputs, outputs


def _add(inputs: dict[str, str], outer: str, inner: str, namespace: str, kind: str) -> None:
    other = inputs.get(outer)
    if other is not None and other != inner:
        raise _clash(namespace, kind, outer, inner, "input_mapping")
    inputs[outer] = inner


def _clash(namespace: str, kind: str, outer: str, inner: str, arg: str) -> NamespaceError:
    return NamespaceError(
        f"as_node(namespace={namespace!r}): {kind} {inner!r} becomes {outer!r}, a name that "
        f"{arg} already gives another {kind}; rename one of them in {arg}, or pick another "
        "namespace"
    )
