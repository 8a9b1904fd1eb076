"""Helpers for testing code that builds or runs pipelines.

:func:`patch` swaps one node's function for a stand-in (a fake API client, a fixed answer) for
the length of a ``with`` block, on the pipeline object itself, so code that holds that pipeline
(a module-level pipeline, a parent that nests it) runs the stand-in too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .execution.remote import PlanSpec
from .model.pipeline import Pipeline

__all__ = ["patch"]


@contextmanager
def patch(pipeline: Pipeline, name: str, func: Callable[..., Any]) -> Iterator[Pipeline]:
    """Within the block, node ``name`` of ``pipeline`` calls ``func``; restored on the way out.

    ``func`` must fit the node as for :meth:`Pipeline.with_node_function` (same parameter
    names; a nested node by its path, ``"inner.fetch"``).  The pipeline is patched in place
    (one attribute swapped, the original put back however the block ends) and yielded.  Copies
    made before the block (``with_engine``, ``bind``, ...) keep the original; a patch is not
    meant for pipelines other threads are running at the same time.
    """
    patched = pipeline.with_node_function(name, func)
    original = pipeline.pgraph
    pipeline.pgraph = patched.pgraph
    PlanSpec.forget_all()  # parents already sent to worker processes hold the old nodes
    try:
        yield pipeline
    finally:
        pipeline.pgraph = original
        PlanSpec.forget_all()
