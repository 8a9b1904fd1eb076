"""HyperNodes: pipelines of plain Python functions that run once, map over thousands of items, and
scale across executors without changing the functions."""

from .cache import DiskCache, MemoryCache
from .callbacks import CallbackContext, PipelineCallback
from .engines import HypernodesEngine
from .exceptions import HyperNodesError
from .item_error import ItemError
from .node import Node, node
from .pipeline import Pipeline
from .pipeline_node import PipelineNode
from .resources import Resource, resource

__version__ = "0.1.0"

__all__ = [
    "CallbackContext",
    "DiskCache",
    "HyperNodesError",
    "HypernodesEngine",
    "ItemError",
    "MemoryCache",
    "PipelineCallback",
    "Node",
    "Pipeline",
    "PipelineNode",
    "Resource",
    "node",
    "resource",
]
