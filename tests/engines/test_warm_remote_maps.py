"""A map whose items are all cache hits runs in the caller: no worker pool, no cluster.

The remote driver looks the leading items up before it sends anything away; the hits load here
with the same rows and events as anywhere else, and the items from the first miss on go to the
workers as usual.
"""

from __future__ import annotations

import io
import os
from collections import Counter

import psutil
import pytest

from callbacks.recorder import Recorder  # the callback tests' recorder (tests/ is on the path)
from hypernodes import DiskCache, HypernodesEngine, ItemError, Pipeline, node
from hypernodes.telemetry import ProgressCallback

pytestmark = pytest.mark.timeout(120)


@node(output_name="y")
def double_with_pid(x: int) -> tuple[int, int]:
    return 2 * x, os.getpid()


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def _warm(cache: DiskCache, xs: list[int]) -> None:
    Pipeline([double_with_pid], cache=cache).map(inputs={"x": xs}, map_over="x")


@pytest.mark.parametrize("callbacks", [None, "recorder", "progress"])
def test_a_warm_parallel_map_starts_no_worker_process(tmp_path, callbacks):
    cache = DiskCache(tmp_path / "cache")
    _warm(cache, list(range(50)))
    cbs = {
        None: None,
        "recorder": [Recorder()],
        "progress": [ProgressCallback(mode="plain", file=io.StringIO())],
    }
    before = _children()
    with HypernodesEngine(map_executor="parallel", max_workers=2) as engine:
        pipeline = Pipeline([double_with_pid], engine=engine, cache=cache, callbacks=cbs[callbacks])
        rows = pipeline.map(inputs={"x": list(range(50))}, map_over="x")
        started = _children() - before
    assert [row["y"][0] for row in rows] == [2 * x for x in range(50)]
    assert {row["y"][1] for row in rows} == {os.getpid()}  # computed by the warm-up, here
    assert started == set()


def test_a_warm_parallel_map_reports_the_same_events_as_a_local_one(tmp_path):
    cache = DiskCache(tmp_path / "cache")
    _warm(cache, list(range(6)))
    local, remote = Recorder(), Recorder()
    Pipeline([double_with_pid], cache=cache, callbacks=[local]).map(
        inputs={"x": list(range(6))}, map_over="x"
    )
    with HypernodesEngine(map_executor="parallel", max_workers=2) as engine:
        Pipeline([double_with_pid], engine=engine, cache=cache, callbacks=[remote]).map(
            inputs={"x": list(range(6))}, map_over="x"
        )
    assert Counter(remote.events) == Counter(local.events)
    assert sum(1 for e in remote.events if e[0] == "on_map_item_cached") == 6


def test_a_grown_map_runs_its_warm_prefix_here_and_the_new_items_on_workers(tmp_path):
    cache = DiskCache(tmp_path / "cache")
    _warm(cache, list(range(20)))
    with HypernodesEngine(map_executor="parallel", max_workers=2) as engine:
        pipeline = Pipeline([double_with_pid], engine=engine, cache=cache)
        rows = pipeline.map(inputs={"x": list(range(30))}, map_over="x")
    assert [row["y"][0] for row in rows] == [2 * x for x in range(30)]
    assert {row["y"][1] for row in rows[:20]} == {os.getpid()}
    assert os.getpid() not in {row["y"][1] for row in rows[20:]}  # new items: worker processes


def test_a_warm_dask_map_never_contacts_the_cluster(tmp_path):
    pytest.importorskip("distributed", reason="DaskEngine needs the dask extra")
    from hypernodes.engines import DaskEngine

    cache = DiskCache(tmp_path / "cache")
    _warm(cache, list(range(10)))
    # Nothing listens at this address: a map that needed the cluster would fail to connect.
    engine = DaskEngine(address="tcp://127.0.0.1:9", connect_timeout=2)
    try:
        rows = Pipeline([double_with_pid], engine=engine, cache=cache).map(
            inputs={"x": list(range(10))}, map_over="x"
        )
    finally:
        engine.shutdown()
    assert [row["y"][0] for row in rows] == [2 * x for x in range(10)]


@node(output_name="y")
def fails_on_25(x: int) -> tuple[int, int]:
    if x == 25:
        raise ValueError("25")
    return 2 * x, os.getpid()


def test_items_after_a_warm_prefix_keep_their_indexes(tmp_path):
    cache = DiskCache(tmp_path / "cache")
    Pipeline([fails_on_25], cache=cache).map(inputs={"x": list(range(20))}, map_over="x")
    with HypernodesEngine(map_executor="parallel", max_workers=2) as engine:
        pipeline = Pipeline([fails_on_25], engine=engine, cache=cache)
        rows = pipeline.map(inputs={"x": list(range(30))}, map_over="x", on_error="continue")
        with pytest.raises(ValueError) as info:
            pipeline.map(inputs={"x": list(range(30))}, map_over="x")
    failed = rows[25]["y"]
    assert isinstance(failed, ItemError) and failed.index == 25
    assert "[item 25]" in info.value.__notes__[0]
