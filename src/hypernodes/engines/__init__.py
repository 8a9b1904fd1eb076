"""Engines that execute pipelines, and the executors that schedule their work.

``DaskEngine`` is an extra (``pip install 'hypernodes[dask]'``): it is imported on first access,
so that importing this package never imports dask.
"""

from typing import Any

from .base import Engine
from .executors import (
    AsyncExecutor,
    CustomExecutor,
    Executor,
    SequentialExecutor,
    ThreadedExecutor,
)
from .hypernodes import HypernodesEngine
from .parallel import ParallelExecutor

__all__ = [
    "AsyncExecutor",
    "CustomExecutor",
    "DaskEngine",
    "Engine",
    "Executor",
    "HypernodesEngine",
    "ParallelExecutor",
    "SequentialExecutor",
    "ThreadedExecutor",
]


def __getattr__(name: str) -> Any:
    if name == "DaskEngine":
        from .dask import DaskEngine

        return DaskEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
