"""HyperNodes: pipelines of plain Python functions that run once, map over thousands of items, and
scale across executors without changing the functions."""

from . import compat
from .cache import DiskCache, FsspecCache, MemoryCache
from .engines import HypernodesEngine
from .exceptions import HyperNodesError
from .execution.item_error import ItemError
from .model.failures import failures
from .model.node import Node, node
from .model.pipeline import Pipeline
from .model.pipeline_node import PipelineNode
from .model.resources import Resource, resource
from .observe.callbacks import CallbackContext, PipelineCallback

compat.install()

#: the release (the one place it is written: pyproject.toml reads it, so does ``--version``)
__version__ = "0.5.0"

__all__ = [
    "CallbackContext",
    "DiskCache",
    "FsspecCache",
    "HyperNodesError",
    "HypernodesEngine",
    "ItemError",
    "MemoryCache",
    "failures",
    "PipelineCallback",
    "Node",
    "Pipeline",
    "PipelineNode",
    "Resource",
    "node",
    "resource",
]
