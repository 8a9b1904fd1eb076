"""Engines that execute pipelines, and the executors that schedule their work.

``DaskEngine``, ``DaftEngine`` and ``RayEngine`` are extras (``pip install 'hypernodes[dask]'``,
``'hypernodes[daft]'``, ``'hypernodes[ray]'``): each is imported on first access, so importing
this package never imports dask, Daft or Ray.
"""

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:  # type checkers see the classes; at run time __getattr__ imports them
    from .daft import DaftEngine
    from .dask import DaskEngine

__all__ = [
    "AsyncExecutor",
    "CustomExecutor",
    "DaftEngine",
    "DaskEngine",
    "Engine",
    "Executor",
    "HypernodesEngine",
    "ParallelExecutor",
    "RayEngine",
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
    if name == "RayEngine":
        from .ray import RayEngine

        return RayEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
