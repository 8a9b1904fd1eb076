"""Engines under the original HyperNodes' names, and its engine-level calls.

``SeqEngine(cache=..., callbacks=...)`` is 0.4's default engine: it holds the cache and callbacks
that 0.4 pipelines did not.  Here it is a sequential :class:`HypernodesEngine`; a pipeline that
sets no cache (callbacks) of its own uses the engine's.  ``SequentialEngine`` is the seed era's
name of the same engine.

0.4 also ran pipelines from the engine: ``engine.run(pipeline, inputs)`` and ``engine.map(
pipeline, inputs, map_over)``.  :func:`run_pipeline` and :func:`map_pipeline` are those calls;
``SeqEngine`` and ``DaftEngine`` accept them beside the plan-level calls pipelines make.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..execution.plan import Plan
from ..model.checks import check_cache
from ..observe.callbacks import check_callbacks
from .hypernodes import HypernodesEngine

__all__ = ["SeqEngine", "SequentialEngine", "map_pipeline", "original_batch_size", "run_pipeline"]


def run_pipeline(
    engine: Any,
    pipeline: Any,
    inputs: Mapping[str, Any] | None = None,
    output_name: str | Sequence[str] | None = None,
    **ignored: Any,
) -> dict[str, Any]:
    """0.4's ``engine.run(pipeline, inputs, output_name)``: ``pipeline`` run on ``engine``."""
    return pipeline.with_engine(engine).run(inputs, output_name=output_name)


def map_pipeline(
    engine: Any,
    pipeline: Any,
    inputs: Mapping[str, Any] | None = None,
    map_over: str | Sequence[str] | None = None,
    map_mode: str = "zip",
    output_name: str | Sequence[str] | None = None,
    **options: Any,
) -> Any:
    """0.4's ``engine.map(pipeline, inputs, map_over, map_mode, output_name)``."""
    options.pop("_ctx", None)  # 0.4's internal callback context: ours is made per call
    return pipeline.with_engine(engine).map(
        inputs, map_over=map_over, map_mode=map_mode, output_name=output_name, **options
    )


def original_batch_size(
    batch_size: int | None, use_batch_udf: bool, config: Mapping[str, Any]
) -> int | None:
    """The batch size of a DaftEngine given 0.4's options: ``use_batch_udf=False`` is one item
    per UDF call; ``default_daft_config["batch_size"]`` applies when ``batch_size`` is not set.
    Other ``default_daft_config`` keys are warned about (nothing reads them here)."""
    ignored = sorted(set(config) - {"batch_size"})
    if ignored:
        warnings.warn(
            f"DaftEngine(default_daft_config=...) keys {ignored} have no effect here; "
            "set per-node Daft options with @node(resources={...}) (see docs/migrating.md)",
            UserWarning,
            stacklevel=3,
        )
    if not use_batch_udf:
        return 1
    if batch_size is None:
        batch_size = config.get("batch_size")
    return batch_size


class SeqEngine(HypernodesEngine):
    """0.4's default engine: sequential, holding a ``cache`` and ``callbacks``.

    A pipeline run on it with no cache (callbacks) of its own uses these.  It takes our engine's
    options too (``map_executor="threaded"``...), and ``engine.run(pipeline, inputs)`` /
    ``engine.map(pipeline, inputs, map_over)`` as 0.4 did.
    """

    def __init__(
        self,
        cache: Any = None,
        callbacks: Iterable[Any] | None = None,
        node_executor: str | Any = "sequential",
        map_executor: str | Any = "sequential",
        max_workers: int | None = None,
        batch_size: int | None = None,
    ) -> None:
        super().__init__(node_executor, map_executor, max_workers, batch_size)
        #: the cache of pipelines that set none
        self.cache = check_cache(cache)
        #: the callbacks of pipelines that set none
        self.callbacks: list[Any] = check_callbacks(callbacks or [])

    def run(self, plan: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one item of ``plan`` (what pipelines call), or 0.4's ``run(pipeline, inputs,
        output_name)``."""
        if isinstance(plan, Plan):
            return super().run(plan, *args, **kwargs)
        return run_pipeline(self, plan, *args, **kwargs)

    def map(self, plan: Any, *args: Any, **kwargs: Any) -> Any:
        """Run the items of ``plan`` (what pipelines call), or 0.4's ``map(pipeline, inputs,
        map_over, map_mode="zip", output_name=None)``."""
        if isinstance(plan, Plan):
            return super().map(plan, *args, **kwargs)
        return map_pipeline(self, plan, *args, **kwargs)

    def __reduce__(self) -> tuple[Any, ...]:
        # A copy for a worker process: the executors only (workers use the caller's cache and
        # relay events to the caller's callbacks)
        return (type(self), (None, None, self._node, self._map, self.max_workers, self.batch_size))

    def __repr__(self) -> str:
        return f"SeqEngine(cache={self.cache!r}, callbacks={self.callbacks!r})"


class SequentialEngine(SeqEngine):
    """The seed era's name of :class:`SeqEngine`."""
