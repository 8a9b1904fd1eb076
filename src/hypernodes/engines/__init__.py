"""Engines that execute pipelines, and the executors that schedule their work.

``DaftEngine`` is an extra (``pip install "hypernodes[daft]"``): it is imported on first use, so
importing this package never imports Daft.
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
    "DaftEngine",
    "Engine",
    "Executor",
    "HypernodesEngine",
    "ParallelExecutor",
    "SequentialExecutor",
    "ThreadedExecutor",
]


def __getattr__(name: str) -> Any:
    if name == "DaftEngine":
        from .daft import DaftEngine

        return DaftEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
