"""The original HyperNodes import path for engines: everything here lives in
:mod:`hypernodes.engines` and is re-exported so that ``from hypernodes.engine import
HypernodesEngine`` keeps working.  New code should import from ``hypernodes.engines``."""

from __future__ import annotations

from typing import Any

from . import engines as _engines
from .engines import Engine, HypernodesEngine

__all__ = ["Engine", "HypernodesEngine"]


def __getattr__(name: str) -> Any:
    # Whatever hypernodes.engines offers (including engines it imports lazily, as extras).
    try:
        if name.startswith("__"):  # not __path__ & co: this module is not the package
            raise AttributeError(name)
        return getattr(_engines, name)
    except AttributeError:
        raise AttributeError(f"module 'hypernodes.engine' has no attribute {name!r}") from None
