"""Engines that execute pipelines, and the executors that schedule their work."""

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
    "Engine",
    "Executor",
    "HypernodesEngine",
    "ParallelExecutor",
    "SequentialExecutor",
    "ThreadedExecutor",
]
