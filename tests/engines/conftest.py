"""Fixtures shared by the engine tests: one real Dask ``LocalCluster`` for the whole session."""

from __future__ import annotations

import pytest


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
