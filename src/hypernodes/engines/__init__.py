"""Engines that execute pipelines."""

from .base import Engine
from .hypernodes import HypernodesEngine

__all__ = ["Engine", "HypernodesEngine"]
