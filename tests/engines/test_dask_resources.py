"""DaskEngine honours ``num_gpus``/``num_cpus`` hints as Dask worker resources when the cluster's
workers declare them, and ignores them (with no effect on results) when they do not."""

from __future__ import annotations

import pytest
from ml_cases import on_cpu, on_gpu

from hypernodes import Pipeline

pytest.importorskip("distributed", reason="the DaskEngine tests need the dask extra")


def test_hints_the_cluster_does_not_declare_are_ignored(dask_client):
    from hypernodes.engines import DaskEngine
    from hypernodes.engines.dask import task_resources

    pipeline = Pipeline([on_gpu])
    plan = pipeline.plan(None, frozenset({"x"}))
    assert task_resources(plan, dask_client) is None  # the session cluster declares none
    assert task_resources(Pipeline([on_cpu]).plan(None, frozenset({"x"})), dask_client) is None
    rows = pipeline.with_engine(DaskEngine(client=dask_client)).map({"x": [1, 2]}, map_over="x")
    assert len(rows) == 2


@pytest.fixture
def gpu_and_cpu_workers():
    """A cluster of two single-thread worker processes on 127.0.0.1, one declaring a GPU."""
    from distributed import Client, Nanny, Scheduler, SpecCluster

    options = {"nthreads": 1, "host": "127.0.0.1"}
    cluster = SpecCluster(
        scheduler={
            "cls": Scheduler,
            "options": {"host": "127.0.0.1", "dashboard": False, "dashboard_address": ":0"},
        },
        workers={
            "gpu": {"cls": Nanny, "options": {**options, "resources": {"GPU": 1}}},
            "cpu": {"cls": Nanny, "options": options},
        },
    )
    client = Client(cluster, set_as_default=False)
    try:
        client.wait_for_workers(2, timeout=60)
        yield client
    finally:
        client.close()
        cluster.close()


@pytest.mark.timeout(180)
def test_a_gpu_hint_sends_chunks_only_to_workers_with_a_gpu(gpu_and_cpu_workers):
    import os

    from hypernodes.engines import DaskEngine
    from hypernodes.engines.dask import task_resources

    client = gpu_and_cpu_workers
    pids = client.run(os.getpid)  # worker address -> pid
    info = client.scheduler_info(n_workers=-1)["workers"]
    (gpu_pid,) = [pids[a] for a, w in info.items() if (w.get("resources") or {}).get("GPU")]
    plan = Pipeline([on_gpu]).plan(None, frozenset({"x"}))
    assert task_resources(plan, client) == {"GPU": 1}

    engine = DaskEngine(client=client, chunk_size=1)
    xs = list(range(8))
    gpu = Pipeline([on_gpu], engine=engine).map({"x": xs}, map_over="x")
    free = Pipeline([on_cpu], engine=engine).map({"x": xs}, map_over="x")
    assert {row["pid"] for row in gpu} == {gpu_pid}  # every GPU chunk on the GPU worker
    assert {row["pid"] for row in free} == set(pids.values())  # the others use both workers
