"""HyperNodes: pipelines of plain Python functions that run once, map over thousands of items, and
scale across executors without changing the functions."""

from .engines import HypernodesEngine
from .exceptions import HyperNodesError
from .item_error import ItemError
from .node import Node, node
from .pipeline import Pipeline
from .pipeline_node import PipelineNode

__version__ = "0.1.0"

__all__ = [
    "HyperNodesError",
    "HypernodesEngine",
    "ItemError",
    "Node",
    "Pipeline",
    "PipelineNode",
    "node",
]
