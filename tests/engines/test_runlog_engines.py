"""The run log of maps whose items run in other processes: ``parallel`` (loky workers) and Dask
(a real LocalCluster).  Their events come back through the relay with the times they happened
in the workers, and the log records them as if they had run here."""

from __future__ import annotations

import json
import os

import pytest
from engine_cases import picky

from hypernodes import HypernodesEngine, Pipeline, node
from hypernodes.telemetry import RunLog
from hypernodes.telemetry import runlog_store as store


@node(output_name="pid")
def pid_after(picky: int) -> int:
    return os.getpid()


def _logged_map(folder, engine) -> list[dict]:
    log = RunLog(folder)
    pipeline = Pipeline([picky, pid_after], engine=engine, callbacks=[log], name="remote")
    return pipeline.map({"x": list(range(20))}, map_over="x", on_error="continue")


def _check_log(folder, rows: list[dict]) -> store.RunInfo:
    pids = {row["pid"] for row in rows if isinstance(row["pid"], int)}
    assert pids and os.getpid() not in pids, "the items should have run in worker processes"
    with store.reading(folder) as conn:
        run = store.find_run(conn, None)
        stats = {s.node: s for s in store.node_stats(conn, run.run_id)}
        failures = store.failures(conn, run.run_id)
        items = store.item_rows(conn, run.run_id, "remote")
        spans = store.spans(conn, run.run_id)
    assert (run.kind, run.total, run.status) == ("map", 20, "failed")
    assert (stats["picky"].ran, stats["picky"].failed) == (16, 4)  # multiples of four but 0 fail
    assert stats["pid_after"].ran == 16
    assert sorted(f["item"] for f in failures) == [4, 8, 12, 16]
    assert {(f["node"], f["error_type"]) for f in failures} == {("picky", "ValueError")}
    assert [json.loads(f["inputs"]) for f in failures if f["item"] == 8] == [{"x": "8"}]
    assert sorted(item for item, *_ in items) == list(range(20))
    assert [status for _, _, status, _, _ in items].count("failed") == 4
    # the times are the workers' own, inside the run
    assert len(spans) == 32
    assert all(run.started <= s.start <= s.end <= run.ended for s in spans)
    return run


def test_a_parallel_map_is_logged_with_worker_events(tmp_path):
    engine = HypernodesEngine(map_executor="parallel", max_workers=2)
    try:
        rows = _logged_map(tmp_path, engine)
    finally:
        engine.shutdown()
    run = _check_log(tmp_path, rows)
    assert "parallel" in run.engine["repr"].lower()


def test_a_dask_map_is_logged_with_worker_events(tmp_path, dask_client):
    pytest.importorskip("distributed")
    from hypernodes.engines.dask import DaskEngine

    rows = _logged_map(tmp_path, DaskEngine(client=dask_client, chunk_size=3))
    run = _check_log(tmp_path, rows)
    assert run.engine["engine"] == "DaskEngine"
