"""The dependency graph of a pipeline's nodes: validation and topological order.

Built once per ``Pipeline`` construction with networkx and shared, read-only, by every copy that
``with_engine``/``bind``/... make.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import networkx as nx

from .exceptions import CycleError, DuplicateOutputError


class PipelineGraph:
    """Nodes of one pipeline with their producers, order, external inputs and outputs."""

    __slots__ = ("nodes", "graph", "producer", "order", "root_args", "output_names", "plans")

    def __init__(self, nodes: Sequence[Any], pipeline_name: str) -> None:
        producer: dict[str, Any] = {}
        for item in nodes:
            for out in item.outputs:
                other = producer.get(out)
                if other is not None:
                    raise DuplicateOutputError(
                        f"pipeline {pipeline_name!r}: output {out!r} is produced by both "
                        f"{other.name!r} and {item.name!r}; rename one of them "
                        "(@node(output_name=...), node.with_output(...) or as_node(output_mapping=...))"
                    )
                producer[out] = item

        edges: dict[tuple[Any, Any], list[str]] = {}
        for item in nodes:
            for name in item.inputs:
                src = producer.get(name)
                if src is not None:
                    edges.setdefault((src, item), []).append(name)
        graph = nx.DiGraph()
        graph.add_nodes_from(nodes)
        graph.add_edges_from((src, dst, {"names": names}) for (src, dst), names in edges.items())
        try:
            order = [n for generation in nx.topological_generations(graph) for n in generation]
        except nx.NetworkXUnfeasible:
            raise _cycle_error(graph, pipeline_name) from None

        roots: dict[str, None] = {}
        for item in order:
            for name in item.inputs:
                if name not in producer:
                    roots[name] = None

        self.nodes = tuple(nodes)
        self.graph = graph
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
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)


def _cycle_error(graph: nx.DiGraph, pipeline_name: str) -> CycleError:
    edges = nx.find_cycle(graph)
    steps = [f"{src.name} --{'/'.join(graph[src][dst]['names'])}--> " for src, dst, *_ in edges]
    cycle = [src.name for src, *_ in edges] + [edges[0][0].name]
    text = "".join(steps) + edges[0][0].name
    return CycleError(
        f"pipeline {pipeline_name!r} has a cycle: {text}. Each node must only depend on values "
        "computed before it; rename an input or output to break the loop",
        cycle,
    )
