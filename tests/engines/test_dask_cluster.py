"""DaskEngine against a real ``dask scheduler`` and ``dask worker`` processes, Dask's defaults.

The in-process ``LocalCluster`` fixtures (conftest.py, test_dask_engine.py) are fast but run with
``allowed-failures=0`` and workers that can import the tests; these start separate processes
(tests/engines/dask_processes.py): default configuration, each worker in a directory of its own
where this module cannot be imported, all on 127.0.0.1, every process group killed and checked
at the end.  The nodes are defined here on purpose: they reach the workers by value.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time

import pytest

pytest.importorskip(
    "distributed", reason="the DaskEngine tests need the dask extra: pip install -e '.[dask]'"
)

from dask_processes import DaskProcesses
from distributed import Client

from hypernodes import ItemError, Pipeline, node
from hypernodes.engines import DaskEngine
from hypernodes.exceptions import (
    ClusterLostError,
    NoWorkersError,
    WorkerCrashedError,
    WorkerImportError,
)

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(120)]


class Point:
    """A class of this module: its instances travel to workers that cannot import it."""

    def __init__(self, x: int) -> None:
        self.x = x


@node(output_name="point")
def to_point(x: int) -> Point:
    return Point(x * 10)


@node(output_name="y")
def poison(x: int, victim: int) -> int:
    if x == victim:
        os._exit(1)  # the worker process dies, as in a segfault or the OOM killer
    return x


@node(output_name="y")
def slow(x: int) -> int:
    time.sleep(0.3)
    return x


@node(output_name="g", resources={"num_gpus": 1})
def on_gpu(x: int) -> int:
    time.sleep(0.3)
    return x


def _processes(tmp_path_factory, workers: dict[str, str | None]):
    cluster = DaskProcesses(tmp_path_factory.mktemp("dask"))
    client = None
    try:
        cluster.start_scheduler()
        for name, resources in workers.items():
            cluster.start_worker(name, resources)
        client = Client(cluster.address, set_as_default=False, timeout=30)
        cluster.wait_for_workers(client, len(workers))
        yield cluster, client
    finally:
        if client is not None:
            client.close()
        left = cluster.stop()
        assert not left, f"processes outlived the cluster: {left}"


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """A scheduler and two workers for the tests that leave the cluster whole."""
    yield from _processes(tmp_path_factory, {"a": None, "b": None})


@pytest.fixture
def fresh(tmp_path_factory, request):
    """A cluster of its own for a test that kills parts of it."""
    yield from _processes(tmp_path_factory, request.param)


def test_the_workers_run_with_dask_defaults_and_cannot_import_this_module(shared):
    cluster, client = shared
    allowed = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.allowed_failures)
    assert allowed == 3  # Dask's default, as users run it
    found = client.run(lambda: importlib.util.find_spec(__name__.split(".")[-1]) is not None)
    assert set(found.values()) == {False}
    cwds = set(client.run(os.getcwd).values())
    assert cwds == {str(cluster.root / "a"), str(cluster.root / "b")}


def test_a_pipeline_from_a_module_the_workers_lack_runs(shared):
    _, client = shared
    with DaskEngine(address=client.scheduler.address) as engine:
        rows = Pipeline([to_point], engine=engine).map({"x": range(6)}, map_over="x")
    assert [type(row["point"]) for row in rows] == [Point] * 6  # the caller's own class
    assert [row["point"].x for row in rows] == [x * 10 for x in range(6)]


def test_a_module_installed_only_here_is_a_named_error(shared, tmp_path, monkeypatch):
    from hypernodes.execution import byvalue

    installed = tmp_path / "site"
    installed.mkdir()
    (installed / "only_here_pkg.py").write_text(
        "def triple(x):\n    return 3 * x\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(installed))
    # stands for a package installed here and not on the workers: pickled by reference
    monkeypatch.setattr(byvalue, "LIBRARY_DIRS", (*byvalue.LIBRARY_DIRS, f"{installed}{os.sep}"))
    import only_here_pkg

    monkeypatch.setitem(sys.modules, "only_here_pkg", only_here_pkg)
    triple = node(output_name="t")(only_here_pkg.triple)
    _, client = shared
    engine = DaskEngine(address=client.scheduler.address)
    with engine, pytest.raises(WorkerImportError, match=r"'only_here_pkg'.*pip install") as info:
        Pipeline([triple], engine=engine).map({"x": [1, 2]}, map_over="x")
    assert info.value.module == "only_here_pkg"
    assert "client.upload_file('only_here_pkg.py')" in str(info.value)


def test_a_poison_item_fails_alone_with_default_settings(shared):
    """With allowed-failures=3 the poison kills worker after worker: still only its row fails."""
    _, client = shared
    with DaskEngine(address=client.scheduler.address, chunk_size=4) as engine:
        pipeline = Pipeline([poison], engine=engine)
        rows = pipeline.map({"x": range(12), "victim": 6}, map_over="x", on_error="continue")
    failed = rows[6]["y"]
    assert isinstance(failed, ItemError) and isinstance(failed.exception, WorkerCrashedError)
    assert failed.exception.items == [6]
    assert "map item 6 killed the worker" in str(failed.exception)
    assert [row["y"] for i, row in enumerate(rows) if i != 6] == [x for x in range(12) if x != 6]


def _kill_after_first_row(cluster, name: str, rows, seen: list) -> list[float]:
    """Consume ``rows`` into ``seen``, killing process group ``name`` after the first row; the
    time of the kill is appended to the list returned (also when the consumer raises)."""
    killed: list[float] = []
    try:
        for row in rows:
            seen.append(row)
            if not killed:
                cluster.kill(name)
                killed.append(time.monotonic())
    finally:
        _KILLED[:] = killed
    return killed


_KILLED: list[float] = []


def _since_kill() -> float:
    assert _KILLED, "the map ended before the first row"
    return time.monotonic() - _KILLED[0]


@pytest.mark.parametrize("fresh", [{"a": None}], indirect=True)
def test_a_killed_scheduler_is_a_named_error_within_connect_timeout(fresh):
    cluster, _ = fresh
    engine = DaskEngine(address=cluster.address, connect_timeout=2, chunk_size=1)
    rows = Pipeline([slow], engine=engine).imap({"x": range(40)}, map_over="x")
    seen: list = []
    with pytest.raises(ClusterLostError) as info:
        _kill_after_first_row(cluster, "scheduler", rows, seen)
    waited = _since_kill()
    engine.shutdown()
    assert info.value.address == cluster.address and cluster.address in str(info.value)
    assert waited < 2 + 8, waited  # connect_timeout and a few seconds
    assert seen and seen == [(x, {"y": x}) for x in range(len(seen))]  # the streamed rows stay


@pytest.mark.parametrize("fresh", [{"gpu": "GPU=1", "cpu": None}], indirect=True)
def test_losing_the_gpu_worker_then_every_worker_are_named_errors_in_bounded_time(fresh):
    cluster, _ = fresh
    engine = DaskEngine(address=cluster.address, chunk_size=1, no_worker_timeout=2)
    seen: list = []
    gpu = Pipeline([on_gpu], engine=engine).imap({"x": range(40)}, map_over="x")
    with pytest.raises(NoWorkersError, match="GPU") as info:
        _kill_after_first_row(cluster, "gpu", gpu, seen)
    waited = _since_kill()
    assert info.value.resources == {"GPU": 1} and info.value.address == cluster.address
    assert waited < 2 + 8, waited  # no_worker_timeout and a few seconds

    everyone = Pipeline([slow], engine=engine).imap({"x": range(40)}, map_over="x")
    with pytest.raises(NoWorkersError, match="no worker at all") as info:
        _kill_after_first_row(cluster, "cpu", everyone, seen)
    waited = _since_kill()
    engine.shutdown()
    assert info.value.resources == {} and waited < 2 + 8, waited
