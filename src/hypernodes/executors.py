"""The original HyperNodes import path for executors: everything here lives in
:mod:`hypernodes.engines` and is re-exported so that ``from hypernodes.executors import
AsyncExecutor`` keeps working.  New code should import from ``hypernodes.engines``."""

from __future__ import annotations

from typing import Any

from . import engines as _engines
from .engines import (
    AsyncExecutor,
    CustomExecutor,
    Executor,
    ParallelExecutor,
    SequentialExecutor,
    ThreadedExecutor,
)

__all__ = [
    "AsyncExecutor",
    "CustomExecutor",
    "Executor",
    "ParallelExecutor",
    "SequentialExecutor",
    "ThreadedExecutor",
]


def __getattr__(name: str) -> Any:
    # Whatever else hypernodes.engines offers.
    try:
        if name.startswith("__"):  # not __path__ & co: this module is not the package
            raise AttributeError(name)
        return getattr(_engines, name)
    except AttributeError:
        raise AttributeError(f"module 'hypernodes.executors' has no attribute {name!r}") from None
