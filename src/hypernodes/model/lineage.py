"""Lineage and slicing: what a value needs, what it feeds, and the part of a pipeline between.

The questions are asked of a graph with two kinds of vertex, nodes and values (inputs and
outputs), built from a :class:`~hypernodes.model.graph.PipelineGraph` when asked (running never
needs it).  Answers list names in the pipeline's topological order.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx

from ..exceptions import SubpipelineError, UnknownNameError, pipeline_phrase
from .graph import PipelineGraph

#: a vertex: ("node", position in pgraph.nodes) or ("value", name)
Vertex = tuple[str, Any]


@dataclass(frozen=True)
class Lineage:
    """Node names and value names that a lineage question selected, each in topological order.

    ``values`` holds inputs and outputs; ``nodes`` the nodes (nested pipelines by their node
    name).  A name is ``in`` a lineage when it is one of either; an empty lineage is falsy.
    """

    nodes: tuple[str, ...]
    values: tuple[str, ...]

    def __contains__(self, name: object) -> bool:
        return name in self.nodes or name in self.values

    def __bool__(self) -> bool:
        return bool(self.nodes or self.values)


def _bipartite(pgraph: PipelineGraph) -> nx.DiGraph:
    graph = nx.DiGraph()
    for position, item in enumerate(pgraph.nodes):
        vertex = ("node", position)
        graph.add_node(vertex)
        graph.add_edges_from((("value", name), vertex) for name in item.inputs)
        graph.add_edges_from((vertex, ("value", name)) for name in item.outputs)
    return graph


def _ordered(pgraph: PipelineGraph, chosen: set[Vertex]) -> Lineage:
    """``chosen`` as a :class:`Lineage`, in the order the pipeline runs its nodes."""
    position = {id(item): i for i, item in enumerate(pgraph.nodes)}
    nodes: list[str] = []
    values: dict[str, None] = {}
    for item in pgraph.order:
        for name in item.inputs:
            if ("value", name) in chosen and name not in pgraph.producer:
                values[name] = None
        if ("node", position[id(item)]) in chosen:
            nodes.append(item.name)
        for name in item.outputs:
            if ("value", name) in chosen:
                values[name] = None
    return Lineage(tuple(nodes), tuple(values))


def _vertices(pgraph: PipelineGraph, names: Iterable[str], label: str) -> set[Vertex]:
    """The vertices ``names`` stand for: a value, a node, or both when a node and a value share
    the name (a node's default output is named after it)."""
    found: set[Vertex] = set()
    known_values = {*pgraph.root_args, *pgraph.producer}
    for name in names:
        if not isinstance(name, str):
            raise UnknownNameError(f"names are strings (node or value names), got {name!r}")
        hits: set[Vertex] = {
            ("node", i) for i, item in enumerate(pgraph.nodes) if item.name == name
        }
        if name in known_values:
            hits.add(("value", name))
        if not hits:
            raise _unknown(name, pgraph, label, known_values)
        found |= hits
    return found


def _unknown(name: str, pgraph: PipelineGraph, label: str, values: set[str]) -> UnknownNameError:
    choices = sorted(values | {item.name for item in pgraph.nodes})
    close = difflib.get_close_matches(name, choices, n=3)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    return UnknownNameError(
        f"{pipeline_phrase(label)} has no node or value named {name!r}{hint}; "
        f"it has nodes {[item.name for item in pgraph.nodes]}, inputs {list(pgraph.root_args)} "
        f"and outputs {list(pgraph.output_names)}"
    )


def _closure(graph: nx.DiGraph, start: set[Vertex], down: bool) -> set[Vertex]:
    reach = nx.descendants if down else nx.ancestors
    found = set(start)
    for vertex in start:
        found |= reach(graph, vertex)
    return found


def upstream_of(pgraph: PipelineGraph, names: Sequence[str], label: str) -> Lineage:
    """Everything ``names`` are computed from, with ``names`` themselves."""
    start = _vertices(pgraph, names, label)
    return _ordered(pgraph, _closure(_bipartite(pgraph), start, down=False))


def downstream_of(pgraph: PipelineGraph, names: Sequence[str], label: str) -> Lineage:
    """Everything computed from ``names``, with ``names`` themselves."""
    start = _vertices(pgraph, names, label)
    return _ordered(pgraph, _closure(_bipartite(pgraph), start, down=True))


def path_between(pgraph: PipelineGraph, source: str, target: str, label: str) -> Lineage:
    """What lies on a path from ``source`` to ``target`` (both ends included); empty when
    ``target`` does not depend on ``source``."""
    graph = _bipartite(pgraph)
    down = _closure(graph, _vertices(pgraph, [source], label), down=True)
    up = _closure(graph, _vertices(pgraph, [target], label), down=False)
    between = down & up
    if not between & _vertices(pgraph, [target], label):
        between = set()
    return _ordered(pgraph, between)


# ---------------------------------------------------------------------------------------------
# subpipeline


def _value_names(
    pgraph: PipelineGraph, names: str | Sequence[str] | None, label: str, what: str
) -> tuple[str, ...]:
    if names is None:
        return ()
    chosen = (names,) if isinstance(names, str) else tuple(names)
    known = {*pgraph.root_args, *pgraph.producer}
    for name in chosen:
        if name not in known:
            raise SubpipelineError(
                f"subpipeline({what}=...) names {name!r}, which is no value of "
                f"{pipeline_phrase(label)}; {what} are input or output names: inputs "
                f"{list(pgraph.root_args)}, outputs {list(pgraph.output_names)}"
            )
    return chosen


def _needed(pgraph: PipelineGraph, outputs: Iterable[str], cut: set[str]) -> list[Any]:
    """The nodes that compute ``outputs``, walking back no further than the ``cut`` values."""
    needed: dict[int, Any] = {}
    stack = [name for name in outputs if name not in cut]
    seen: set[str] = set()
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        producer = pgraph.producer.get(name)
        if producer is None or id(producer) in needed:
            continue
        needed[id(producer)] = producer
        stack.extend(n for n in producer.inputs if n not in cut)
    return [item for item in pgraph.nodes if id(item) in needed]


def _check_cut(kept: list[Any], cut: set[str], label: str) -> None:
    """A kept node may not produce a value given as an input: it would compute it again."""
    for item in kept:
        clash = [name for name in item.outputs if name in cut]
        if clash:
            others = [name for name in item.outputs if name not in cut]
            raise SubpipelineError(
                f"{pipeline_phrase(label)}: node {item.name!r} produces {clash} (given as inputs) "
                f"and also {others}, which the outputs need; list {others} in inputs too, or do "
                f"not cut at {clash}"
            )


def slice_nodes(
    pgraph: PipelineGraph,
    inputs: str | Sequence[str] | None,
    outputs: str | Sequence[str] | None,
    label: str,
) -> list[Any]:
    """The nodes of :meth:`Pipeline.subpipeline`, in the order given to the pipeline."""
    given = _value_names(pgraph, inputs, label, "inputs")
    wanted = _value_names(pgraph, outputs, label, "outputs")
    cut = set(given)
    if not wanted:
        if not given:
            return list(pgraph.nodes)
        down = downstream_of(pgraph, given, label)
        wanted = tuple(name for name in down.values if name in pgraph.producer and name not in cut)
    kept = _needed(pgraph, wanted, cut)
    _check_cut(kept, cut, label)
    read = {name for item in kept for name in item.inputs}
    unused = [name for name in given if name not in read]
    if unused:
        raise SubpipelineError(
            f"subpipeline of {pipeline_phrase(label)}: inputs {unused} lead to none of the outputs "
            f"{list(wanted)}; drop them from inputs, or ask for outputs computed from them "
            f"(pipeline.downstream_of({unused[0]!r}) lists those)"
        )
    return kept
