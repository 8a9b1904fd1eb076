"""The ``hypernodes`` command: run, describe and draw pipelines, inspect caches (click)."""

from .command import main

__all__ = ["main"]
