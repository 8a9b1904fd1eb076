"""``DaskEngine(scheduler=...)``: the original HyperNodes 0.4's Dask engine on one machine,
without a cluster.

0.4's ``DaskEngine(scheduler="threads"|"processes"|"synchronous", num_workers=None,
workload_type="mixed")`` ran maps on Dask's local schedulers: a thread pool, a pool of worker
processes, or the calling thread.  Those three are what our executors are, so
:class:`DaskLocalEngine` runs maps on them directly ("threads": ``ThreadedExecutor``,
"processes": ``ParallelExecutor``, "synchronous": in this thread) with the same results and events
as every engine, and needs neither a cluster nor the ``distributed`` package.  ``workload_type``
picks the scheduler when ``scheduler`` is not given ("io" and "mixed": threads, "cpu":
processes); 0.4's partitioning hints (``npartitions``) have no counterpart: items stream to the
workers as they free up.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..exceptions import ExecutorError
from ..execution.executors import SequentialExecutor, ThreadedExecutor
from .parallel import ParallelExecutor
from .seq import SeqEngine

__all__ = ["SCHEDULERS", "WORKLOADS", "DaskLocalEngine", "wants_local"]

#: Dask's local schedulers, each with the executor that runs it here
SCHEDULERS = {
    "threads": ThreadedExecutor,
    "processes": ParallelExecutor,
    "synchronous": lambda workers: SequentialExecutor(),
}
#: 0.4's workload types, each with the scheduler it picks
WORKLOADS = {"io": "threads", "mixed": "threads", "cpu": "processes"}
#: the options that ask for the local engine (0.4's; the cluster engine takes none of them)
LOCAL_OPTIONS = ("scheduler", "num_workers", "workload_type", "npartitions", "cache", "callbacks")


def wants_local(kwargs: dict[str, Any]) -> bool:
    """Whether ``DaskEngine(**kwargs)`` asks for 0.4's local schedulers."""
    return any(kwargs.get(name) is not None for name in LOCAL_OPTIONS)


class DaskLocalEngine(SeqEngine):
    """Maps on one of Dask's local schedulers' counterparts (see the module docstring).  Holds a
    ``cache`` and ``callbacks`` for pipelines that set none, as 0.4's engines did."""

    def __init__(
        self,
        scheduler: str | None = None,
        num_workers: int | None = None,
        workload_type: str | None = None,
        npartitions: int | None = None,
        cache: Any = None,
        callbacks: Iterable[Any] | None = None,
        node_executor: str | Any = "sequential",
    ) -> None:
        if workload_type is not None and workload_type not in WORKLOADS:
            raise ExecutorError(
                f"workload_type must be one of {list(WORKLOADS)}, got {workload_type!r}"
            )
        chosen = scheduler or WORKLOADS.get(workload_type or "mixed", "threads")
        if chosen not in SCHEDULERS:
            raise ExecutorError(
                f"DaskEngine(scheduler=...) takes one of {list(SCHEDULERS)} (Dask's local "
                f"schedulers), got {chosen!r}; for a cluster pass client= or address="
            )
        if num_workers is not None and num_workers < 1:
            raise ExecutorError(f"num_workers must be at least 1, got {num_workers}")
        super().__init__(
            cache, callbacks, node_executor, SCHEDULERS[chosen](num_workers), num_workers
        )
        self.scheduler = chosen
        self.num_workers = num_workers
        self.workload_type = workload_type or "mixed"
        self.npartitions = npartitions

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            type(self),
            (self.scheduler, self.num_workers, self.workload_type, self.npartitions),
        )

    def __repr__(self) -> str:
        return f"DaskEngine(scheduler={self.scheduler!r}, num_workers={self.num_workers!r})"
