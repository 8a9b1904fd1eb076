"""HyperNodes: pipelines of plain Python functions that run once, map over thousands of items, and
scale across executors without changing the functions."""

from .cache import DiskCache, MemoryCache
from .callbacks import CallbackContext, PipelineCallback
from .engines import HypernodesEngine
from .exceptions import HyperNodesError
from .node import Node, node
from .pipeline import Pipeline
from .pipeline_node import PipelineNode

__version__ = "0.1.0"

__all__ = [
    "CallbackContext",
    "PipelineCallback",
    "DiskCache",
    "HyperNodesError",
    "HypernodesEngine",
    "MemoryCache",
    "Node",
    "Pipeline",
    "PipelineNode",
    "node",
]
