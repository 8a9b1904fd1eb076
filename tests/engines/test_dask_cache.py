"""A Dask map whose workers run in other working directories shares the caller's cache: it hits
what a local run wrote, and its workers write what they compute for the next local run."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("distributed", reason="the Dask tests need the dask extra")

from dask_support import owner_pid

from hypernodes import DiskCache, FsspecCache, Pipeline
from hypernodes.engines import DaskEngine

pytestmark = pytest.mark.timeout(180)

KEY = b"dask-shared-key-" * 2


@pytest.mark.parametrize("kind", ["disk", "fsspec"])
def test_workers_elsewhere_hit_the_local_entries(kind, dask_client, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if kind == "disk":
        cache = DiskCache("relative-cache", key=KEY)  # relative: resolved here, once
    else:
        cache = FsspecCache("relative-store", key=KEY)
    local = Pipeline([owner_pid], cache=cache).map({"x": list(range(20))}, map_over="x")
    assert {row["owner"] for row in local} == {os.getpid()}

    elsewhere = tmp_path / "worker-cwd"
    elsewhere.mkdir()
    before = dask_client.run(os.getcwd)
    dask_client.run(os.chdir, str(elsewhere))
    try:
        assert set(dask_client.run(os.getcwd).values()) == {str(elsewhere)}
        engine = DaskEngine(client=dask_client, chunk_size=5)
        rows = Pipeline([owner_pid], cache=cache, engine=engine).map(
            {"x": list(range(30))}, map_over="x"
        )
    finally:
        for worker, cwd in before.items():
            dask_client.run(os.chdir, cwd, workers=[worker])
    assert rows[:20] == local  # hits: the pids of the local run
    workers = {row["owner"] for row in rows[20:]}
    assert os.getpid() not in workers  # computed on the workers ...
    assert (
        not (elsewhere / "relative-cache").exists() and not (elsewhere / "relative-store").exists()
    )
    again = Pipeline([owner_pid], cache=cache).map({"x": list(range(30))}, map_over="x")
    assert again == rows  # ... and written by them: hits here
