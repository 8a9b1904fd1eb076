"""The dependency graph of a pipeline's nodes: validation and topological order.

Built once per ``Pipeline`` construction and shared, read-only, by every copy that
``with_engine``/``bind``/... make.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import networkx as nx

from ..exceptions import CycleError, DuplicateOutputError, pipeline_phrase


class PipelineGraph:
    """Nodes of one pipeline with their producers, order, external inputs and outputs."""

    __slots__ = (
        "_graph",
        "edges",
        "nodes",
        "order",
        "output_names",
        "plans",
        "producer",
        "root_args",
    )

    def __init__(self, nodes: Sequence[Any], pipeline_name: str) -> None:
        producer: dict[str, Any] = {}
        for item in nodes:
            for out in item.outputs:
                other = producer.get(out)
                if other is not None:
                    raise DuplicateOutputError(
                        f"{pipeline_phrase(pipeline_name)}: output {out!r} is produced by both "
                        f"{other.name!r} and {item.name!r}; rename one of them "
                        "(@node(output_name=...), node.with_output(...), as_node(output_mapping=...) or "
                        "as_node(namespace=...))"
                    )
                producer[out] = item

        edges: dict[tuple[Any, Any], list[str]] = {}
        for item in nodes:
            for name in item.inputs:
                src = producer.get(name)
                if src is not None:
                    edges.setdefault((src, item), []).append(name)
        self.nodes = tuple(nodes)
        self.edges = edges
        self._graph: nx.DiGraph | None = None
        order = _generations(self.nodes, edges)
        if len(order) < len(self.nodes):
            raise _cycle_error(self.graph, pipeline_name)

        roots: dict[str, None] = {}
        for item in order:
            for name in item.inputs:
                if name not in producer:
                    roots[name] = None

        self.producer = producer
        self.order = tuple(order)
        self.root_args = tuple(roots)
        self.output_names = tuple(out for item in order for out in item.outputs)
        #: compiled plans, keyed by (requested outputs, provided input names)
        self.plans: dict[Any, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        # Compiled plans hold closures and are cheap to rebuild: a copy sent to a worker process
        # compiles its own.
        state = {name: getattr(self, name) for name in self.__slots__}
        state["plans"] = {}
        state["_graph"] = None  # rebuilt on first use
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)

    @property
    def graph(self) -> nx.DiGraph:
        """The networkx graph of the nodes; an edge carries ``names``, the values passed along it.

        Built on first use, since running a pipeline never needs it.
        """
        if self._graph is None:
            graph = nx.DiGraph()
            graph.add_nodes_from(self.nodes)
            graph.add_edges_from(
                (src, dst, {"names": list(names)}) for (src, dst), names in self.edges.items()
            )
            self._graph = graph
        return self._graph


def _generations(nodes: Sequence[Any], edges: dict[tuple[Any, Any], list[str]]) -> list[Any]:
    """Nodes in topological order, generation by generation, each in the order given.

    The same order as ``networkx.topological_generations`` on :attr:`PipelineGraph.graph`, without
    building the networkx graph: construction of a 100k-node pipeline stays well under a second.
    Nodes on a cycle are left out, which is how the caller detects one.
    """
    indegree = dict.fromkeys(nodes, 0)
    children: dict[Any, list[Any]] = {}
    for src, dst in edges:
        indegree[dst] += 1
        children.setdefault(src, []).append(dst)
    generation = [n for n in nodes if indegree[n] == 0]
    order: list[Any] = []
    while generation:
        order.extend(generation)
        following = []
        for parent in generation:
            for child in children.get(parent, ()):
                indegree[child] -= 1
                if indegree[child] == 0:
                    following.append(child)
        generation = following
    return order


def _cycle_error(graph: nx.DiGraph, pipeline_name: str) -> CycleError:
    edges = nx.find_cycle(graph)
    steps = [f"{src.name} --{'/'.join(graph[src][dst]['names'])}--> " for src, dst, *_ in edges]
    cycle = [src.name for src, *_ in edges] + [edges[0][0].name]
    text = "".join(steps) + edges[0][0].name
    return CycleError(
        f"{pipeline_phrase(pipeline_name)} has a cycle: {text}. Each node must only depend on values "
        "computed before it; rename an input or output to break the loop",
        cycle,
    )
