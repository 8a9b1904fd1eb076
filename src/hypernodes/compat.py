"""The original HyperNodes' names and import paths, in one place.

Code written for the original library (the seed era's ``HypernodesEngine`` and 0.4's
``SeqEngine``, ``DualNode``, ``@stateful``) imports names this package spells differently or
keeps elsewhere.  This module gives each of them, mapped onto ours (docs/migrating.md has a row
per name), and :func:`install` registers the original's module paths (``hypernodes.engine``,
``hypernodes.executors``, ``hypernodes.callbacks``, ``hypernodes.decorators``...) as aliases in
:data:`sys.modules` when :mod:`hypernodes` is imported, so both spellings give the very same
objects.  New code should use our names: ``hypernodes``, ``hypernodes.engines``,
``hypernodes.observe.callbacks``, ``Resource``, ``@node(batch=...)``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from .engines import HypernodesEngine
from .engines.seq import SeqEngine, SequentialEngine, map_pipeline, run_pipeline
from .exceptions import CycleError, DependencyError, HyperNodesError
from .model.dual import BatchAdapter, DualNode, adapt_for_hypernodes, batch_optimized
from .model.stateful import StatefulHandle, stateful
from .viz.styles import ORIGINAL_STYLES, STYLES, Style

#: old module path -> the module that holds its names now
ALIASES = {
    "hypernodes.engine": "hypernodes.engines",
    "hypernodes.executors": "hypernodes.engines",
    "hypernodes.callbacks": "hypernodes.observe.callbacks",
    "hypernodes.sequential_engine": "hypernodes.engines",
    "hypernodes.decorators": "hypernodes.compat",
    "hypernodes.dual_node": "hypernodes.compat",
    "hypernodes.batch_adapter": "hypernodes.compat",
    "hypernodes.visualization": "hypernodes.compat",
}

#: the seed era's spelling of the engine's name
HyperNodesEngine = HypernodesEngine

#: the original's theme classes: our :class:`~hypernodes.viz.Style`
GraphvizStyle = Style
GraphvizTheme = Style

#: every theme name the original had (and ours), each with the theme it draws here
DESIGN_STYLES: Mapping[str, Style] = {
    **STYLES,
    **{name: STYLES[ours] for name, ours in ORIGINAL_STYLES.items()},
}


class ExecutionError(HyperNodesError, RuntimeError):
    """The original's wrapper of a node's failure.  Never raised here: a node's exception
    reaches you as its own type, with a note naming the node (``except ValueError:`` works), so
    ``except ExecutionError`` catches nothing; catch the node's own exception instead."""


@runtime_checkable
class HyperNode(Protocol):
    """The original's protocol of what a pipeline holds: a :class:`~hypernodes.Node` or a
    :class:`~hypernodes.PipelineNode` (``pipeline.as_node()``)."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def visualize(pipeline: Any, filename: Any = None, **options: Any) -> Any:
    """The original's ``visualize(pipeline, ...)``: ``pipeline.visualize(...)``."""
    return pipeline.visualize(filename, **options)


def install() -> None:
    """Make every old path importable (``import hypernodes.engine`` and ``from ... import``)."""
    for old, new in ALIASES.items():
        sys.modules.setdefault(old, importlib.import_module(new))


__all__ = [
    "ALIASES",
    "DESIGN_STYLES",
    "BatchAdapter",
    "CycleError",
    "DependencyError",
    "DualNode",
    "ExecutionError",
    "GraphvizStyle",
    "GraphvizTheme",
    "HyperNode",
    "HyperNodesEngine",
    "SeqEngine",
    "SequentialEngine",
    "StatefulHandle",
    "adapt_for_hypernodes",
    "batch_optimized",
    "install",
    "map_pipeline",
    "run_pipeline",
    "stateful",
    "visualize",
]
