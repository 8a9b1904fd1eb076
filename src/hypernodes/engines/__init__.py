"""Engines that execute pipelines, and the executors that schedule their work.

``DaskEngine`` and ``DaftEngine`` are extras (``pip install 'hypernodes[dask]'``,
``'hypernodes[daft]'``): each is imported on first access, so importing this package never
imports dask or Daft.
"""

from typing import Any

from ..execution.executors import (
    AsyncExecutor,
    CustomExecutor,
    Executor,
    SequentialExecutor,
    ThreadedExecutor,
)
from .base import Engine
from .hypernodes import HypernodesEngine
from .parallel import ParallelExecutor
from .seq import SeqEngine, SequentialEngine

__all__ = [
    "AsyncExecutor",
    "CustomExecutor",
    "DaftEngine",
    "DaskEngine",
    "Engine",
    "Executor",
    "HypernodesEngine",
    "ParallelExecutor",
    "SeqEngine",
    "SequentialEngine",
    "SequentialExecutor",
    "ThreadedExecutor",
]


def __getattr__(name: str) -> Any:
    if name == "DaftEngine":
        from .daft import DaftEngine

        return DaftEngine
    if name == "DaskEngine":
        from .dask import DaskEngine

        return DaskEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
