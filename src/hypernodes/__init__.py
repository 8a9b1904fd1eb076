"""HyperNodes: pipelines of plain Python functions that run once, map over thousands of items, and
scale across executors without changing the functions."""

import importlib
from typing import Any

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

#: names the original HyperNodes exported at the top level that ours spells elsewhere
#: (``from hypernodes import SeqEngine`` works; see docs/migrating.md); not in ``__all__``
ORIGINAL_NAMES = {
    **dict.fromkeys(
        (
            "DESIGN_STYLES", "CycleError", "DependencyError", "DualNode", "ExecutionError",
            "GraphvizStyle", "GraphvizTheme", "HyperNode", "HyperNodesEngine", "SeqEngine",
            "SequentialEngine", "batch_optimized", "stateful", "visualize",
        ),
        "hypernodes.compat",
    ),
    **dict.fromkeys(("Engine", "Executor", "DaftEngine", "DaskEngine"), "hypernodes.engines"),
}  # fmt: skip


def __getattr__(name: str) -> Any:
    module = ORIGINAL_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'hypernodes' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


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
