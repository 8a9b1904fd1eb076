"""Fixtures shared by the engine tests: one real Dask ``LocalCluster`` for the whole session, and
an ``engine`` of each kind (see ``engine_kinds.py``) for the tests that parametrize ``kind``."""

from __future__ import annotations

import pytest

from hypernodes import HypernodesEngine
from hypernodes.engines import AsyncExecutor, ThreadedExecutor


@pytest.fixture(scope="session")
def dask_client():
    """A client of a 2-worker ``LocalCluster`` on 127.0.0.1 (processes, no dashboard), closed at
    the end of the session; its worker processes must be gone afterwards."""
    pytest.importorskip(
        "distributed", reason="the DaskEngine tests need the dask extra: pip install -e '.[dask]'"
    )
    from dask_support import child_pids, still_running, worker_pids
    from distributed import Client, LocalCluster

    before = child_pids()
    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
    )
    client = Client(cluster, set_as_default=False)
    started = child_pids() - before
    assert started, "the cluster started no worker process"
    try:
        yield client
    finally:
        started |= worker_pids(client)  # workers restarted during the session too
        client.close()
        cluster.close()
    assert not still_running(started), "LocalCluster processes outlived the cluster"


@pytest.fixture(scope="module")
def local_engines(request):
    """One engine per local map executor for the module, shut down after it."""
    workers = getattr(request.module, "LOCAL_WORKERS", 2)
    made = {
        "sequential": HypernodesEngine(),
        "threaded": HypernodesEngine(map_executor=ThreadedExecutor(max_workers=workers)),
        "async": HypernodesEngine(map_executor=AsyncExecutor(max_workers=workers)),
        "parallel": HypernodesEngine(map_executor="parallel", max_workers=2),
    }
    yield made
    for engine in made.values():
        engine.shutdown()


@pytest.fixture
def engine(request, local_engines, kind):
    """The engine of ``kind``; modules with an ``engine`` fixture of their own use theirs."""
    if kind == "dask":
        from hypernodes.engines import DaskEngine

        return DaskEngine(client=request.getfixturevalue("dask_client"), chunk_size=2)
    if kind == "daft":
        pytest.importorskip("daft", reason="DaftEngine needs the daft extra")
        from hypernodes.engines import DaftEngine

        made = DaftEngine(runner="native")
        request.addfinalizer(made.shutdown)
        return made
    return local_engines[kind]
