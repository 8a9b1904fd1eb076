"""0.4's DaskEngine(scheduler=..., num_workers=..., workload_type=...): Dask's local schedulers
on one machine, with no cluster started."""

from __future__ import annotations

import os
import threading

import pytest

from hypernodes import Pipeline, PipelineCallback, node
from hypernodes.exceptions import ExecutorError

pytest.importorskip("dask", reason="DaskEngine needs the dask extra")

from hypernodes.engines import DaskEngine


@node(output_name="where")
def where(x: int) -> tuple[int, int, str]:
    return (x * x, os.getpid(), threading.current_thread().name)


class Items(PipelineCallback):
    def __init__(self) -> None:
        self.ended: list[int] = []

    def on_map_item_end(self, item_index, duration, ctx):
        self.ended.append(item_index)


@pytest.mark.parametrize(
    ("options", "scheduler"),
    [
        ({"scheduler": "threads", "num_workers": 2}, "threads"),
        ({"scheduler": "processes", "num_workers": 2}, "processes"),
        ({"scheduler": "synchronous"}, "synchronous"),
        ({"workload_type": "cpu", "num_workers": 2}, "processes"),
        ({"workload_type": "io"}, "threads"),
        ({}, "threads"),  # 0.4's default: DaskEngine(callbacks=...) alone is local threads
    ],
)
def test_local_schedulers_run_maps_without_a_cluster(options, scheduler):
    items = Items()
    engine = DaskEngine(**options, callbacks=[items])
    assert engine.scheduler == scheduler
    with engine:
        rows = Pipeline([where], engine=engine).map({"x": list(range(6))}, map_over="x")
    assert [row["where"][0] for row in rows] == [x * x for x in range(6)]
    assert sorted(items.ended) == list(range(6))
    pids = {row["where"][1] for row in rows}
    threads = {row["where"][2] for row in rows}
    if scheduler == "processes":
        assert os.getpid() not in pids
    elif scheduler == "threads":
        assert pids == {os.getpid()} and threading.current_thread().name not in threads
    else:
        assert pids == {os.getpid()} and threads == {threading.current_thread().name}
    # no dask.distributed cluster was started for it
    assert not any(t.name.startswith("IO loop") for t in threading.enumerate())


def test_local_scheduler_options_are_checked():
    with pytest.raises(ExecutorError, match="Dask's local schedulers"):
        DaskEngine(scheduler="distributed")
    with pytest.raises(ExecutorError, match="workload_type must be one of"):
        DaskEngine(workload_type="gpu")
    with pytest.raises(ExecutorError, match="num_workers must be at least 1"):
        DaskEngine(scheduler="threads", num_workers=0)
