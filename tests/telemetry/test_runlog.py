"""The run log: what ``RunLog`` writes to SQLite for runs and maps, statuses of every kind,
``HYPERNODES_RUN_LOG`` in a real process, and many processes writing one folder at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from hypernodes import MemoryCache, Pipeline, node
from hypernodes.execution.item_error import ItemError
from hypernodes.telemetry import RunLog
from hypernodes.telemetry import runlog_store as store

SRC = str(Path(__file__).resolve().parents[2] / "src")


@node(output_name="y")
def checked(x: int) -> int:
    if x == 3:
        raise ValueError(f"three is not allowed (got {x})")
    return 2 * x


@node(output_name="z")
def plus_one(y: int) -> int:
    return y + 1


def _one_run(folder: Path) -> tuple[store.RunInfo, dict[str, store.NodeStats]]:
    with store.reading(folder) as conn:
        run = store.find_run(conn, None)
        return run, {s.node: s for s in store.node_stats(conn, run.run_id)}


def test_a_map_is_recorded_with_structure_engine_nodes_items_and_the_failure(tmp_path):
    log = RunLog(tmp_path)
    pipeline = Pipeline([checked, plus_one], callbacks=[log], name="numbers")
    rows = pipeline.map({"x": list(range(6))}, map_over="x", on_error="continue")
    assert isinstance(rows[3]["z"], ItemError)

    run, stats = _one_run(tmp_path)
    assert (run.pipeline, run.kind, run.total, run.status) == ("numbers", "map", 6, "failed")
    assert run.ended is not None and run.started <= run.ended
    assert [n["name"] for n in run.structure["nodes"]] == ["checked", "plus_one"]
    assert run.structure["inputs"] == ["x"]
    assert run.engine["engine"] == "HypernodesEngine"
    assert run.engine["map_executor"] == "sequential"
    assert run.versions["hypernodes"] and run.versions["python"]
    assert run.pid == os.getpid()
    assert (stats["checked"].ran, stats["checked"].failed) == (5, 1)
    assert (stats["plus_one"].ran, stats["plus_one"].failed) == (5, 0)
    assert stats["checked"].seconds > 0
    with store.reading(tmp_path) as conn:
        (failure,) = store.failures(conn, run.run_id)
        assert store.item_counts(conn, run) == {"ok": 5, "failed": 1}
        spans = store.spans(conn, run.run_id)
    assert (failure["node"], failure["item"], failure["status"]) == ("checked", 3, "failed")
    assert failure["error_type"] == "ValueError"
    assert failure["error_message"] == "three is not allowed (got 3)"
    assert json.loads(failure["inputs"]) == {"x": "3"}
    assert len(spans) == 10
    assert all(run.started <= s.start <= s.end <= run.ended for s in spans)
    assert sorted({s.item for s in spans}) == [0, 1, 2, 4, 5]


def test_each_call_is_its_own_run_and_a_run_has_no_items(tmp_path):
    log = RunLog(tmp_path)
    pipeline = Pipeline([checked, plus_one], callbacks=[log], name="once")
    assert pipeline.run({"x": 1}) == {"y": 2, "z": 3}
    assert pipeline.run({"x": 2}) == {"y": 4, "z": 5}
    with store.reading(tmp_path) as conn:
        runs = store.list_runs(conn)
        assert [(r.kind, r.status) for r in runs] == [("run", "ok"), ("run", "ok")]
        assert len({r.run_id for r in runs}) == 2
        spans = store.spans(conn, runs[0].run_id)
    assert [(s.node, s.item) for s in spans] == [("checked", None), ("plus_one", None)]


_CALLS: dict[int, int] = {}


@node(output_name="steady", retries=1, retry_delay=0.0)
def flaky(x: int) -> int:
    _CALLS[x] = _CALLS.get(x, 0) + 1
    if _CALLS[x] == 1:
        raise ConnectionError(f"first try of {x}")
    return x


@node(output_name="late", timeout=0.05)
def slow_on_two(steady: int) -> int:
    if steady == 2:
        time.sleep(1.0)
    return steady


def test_retried_timed_out_and_cached_calls_get_their_status(tmp_path):
    _CALLS.clear()
    log = RunLog(tmp_path)
    pipeline = Pipeline([flaky, slow_on_two], callbacks=[log], cache=MemoryCache(), name="st")
    pipeline.map({"x": [1, 2]}, map_over="x", on_error="continue")
    pipeline.map({"x": [1, 2]}, map_over="x", on_error="continue")  # item 0 now from the cache
    with store.reading(tmp_path) as conn:
        second, first = store.list_runs(conn)
        stats = {s.node: s for s in store.node_stats(conn, first.run_id)}
        rows = {(r["node"], r["status"]) for r in conn.execute("SELECT * FROM failures")}
        timed_out = store.failures(conn, first.run_id)
        again = {s.node: s for s in store.node_stats(conn, second.run_id)}
        cached_items = store.item_counts(conn, second)
    assert (stats["flaky"].retried, stats["flaky"].ran) == (2, 2)
    assert (stats["slow_on_two"].ran, stats["slow_on_two"].timed_out) == (1, 1)
    assert ("flaky", "retried") in rows and ("slow_on_two", "timed_out") in rows
    assert [(f["item"], f["error_type"]) for f in timed_out] == [(1, "NodeTimeoutError")]
    assert json.loads(timed_out[0]["inputs"]) == {"steady": "2"}
    assert again["flaky"].cached == 2 and again["slow_on_two"].cached == 1
    assert cached_items.get("cached") == 1


inner = Pipeline([checked], name="inner")


def test_nested_map_calls_are_recorded_under_their_path_and_item(tmp_path):
    log = RunLog(tmp_path)

    @node(output_name="xs")
    def fan(n: int) -> list[int]:
        return list(range(n))

    each = inner.as_node(input_mapping={"xs": "x"}, output_mapping={"y": "ys"}, map_over="xs")
    outer = Pipeline([fan, each], callbacks=[log], name="outer")
    outer.map({"n": [2, 4]}, map_over="n", on_error="continue")
    with store.reading(tmp_path) as conn:
        run = store.find_run(conn, "last")
        spans = store.spans(conn, run.run_id)
        (failure,) = store.failures(conn, run.run_id)
        assert store.item_counts(conn, run) == {"ok": 1, "failed": 1}
    nested = sorted((s.item, s.sub) for s in spans if s.node == "checked")
    assert nested == [(0, "0"), (0, "1"), (1, "0"), (1, "1"), (1, "2")]
    assert {s.path for s in spans if s.node == "checked"} == {"outer/inner"}
    assert (failure["path"], failure["item"], failure["sub"]) == ("outer/inner", 1, "3")


def test_rows_are_written_while_the_map_runs(tmp_path):
    gate = threading.Event()

    @node(output_name="y")
    def waits(x: int) -> int:
        if x == 5:
            assert gate.wait(20), "the run log showed nothing while the map ran"
        return x

    log = RunLog(tmp_path, flush_interval=0.05)
    pipeline = Pipeline([waits], callbacks=[log], name="live")
    worker = threading.Thread(target=pipeline.map, args=({"x": list(range(8))}, "x"))
    worker.start()
    try:
        seen = 0
        deadline = time.monotonic() + 20
        while seen < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
            try:
                with store.reading(tmp_path) as conn:
                    run = store.find_run(conn, None)
                    seen = sum(store.item_counts(conn, run).values())
                    assert run.status == "running" and run.ended is None
            except store.RunLogError:  # not created yet, or no run in it yet
                continue
        assert seen == 5  # items 0-4 are in the file while item 5 waits
    finally:
        gate.set()
        worker.join(30)
    _, stats = _one_run(tmp_path)
    assert stats["waits"].ran == 8


def test_no_callbacks_and_no_variable_means_no_dispatcher():
    from hypernodes.telemetry import env

    assert env.PATH is None  # the test suite runs without HYPERNODES_RUN_LOG
    ctx = Pipeline([checked])._root_context()
    assert ctx.dispatcher is None and not ctx.instrumented


_SCRIPT = """
import sys
from hypernodes import Pipeline, node

@node(output_name="y")
def double(x: int) -> int:
    return 2 * x

pipeline = Pipeline([double], name=sys.argv[1])
for _ in range(int(sys.argv[2])):
    pipeline.map({"x": list(range(200))}, map_over="x")
pipeline.run({"x": 1})
"""


def _python(script: str, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    full = {**os.environ, "PYTHONPATH": SRC, **env}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_environment_variable_logs_every_pipeline_of_a_process(tmp_path):
    proc = _python(_SCRIPT, "from-env", "2", env={"HYPERNODES_RUN_LOG": str(tmp_path)})
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    with store.reading(tmp_path) as conn:
        runs = store.list_runs(conn)
        assert [(r.pipeline, r.kind, r.status) for r in runs] == [
            ("from-env", "run", "ok"),
            ("from-env", "map", "ok"),
            ("from-env", "map", "ok"),
        ]
        assert store.item_counts(conn, runs[1]) == {"ok": 200}
        assert runs[0].pid == proc.pid


def test_many_processes_log_to_one_folder_at_once(tmp_path):
    procs = [
        _python(_SCRIPT, f"proc{i}", "5", env={"HYPERNODES_RUN_LOG": str(tmp_path)})
        for i in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
    with store.reading(tmp_path) as conn:
        runs = store.list_runs(conn)
        assert len(runs) == 4 * 6
        assert {r.pid for r in runs} == {p.pid for p in procs}
        maps = [r for r in runs if r.kind == "map"]
        assert all(store.item_counts(conn, r) == {"ok": 200} for r in maps)
        assert all(r.status == "ok" for r in runs)


def test_an_unknown_folder_or_run_says_what_to_do(tmp_path):
    with pytest.raises(store.RunLogError, match="no run log in"), store.reading(tmp_path / "x"):
        pass
    log = RunLog(tmp_path)
    Pipeline([checked], callbacks=[log]).run({"x": 1})
    with store.reading(tmp_path) as conn, pytest.raises(store.RunLogError, match="runs list"):
        store.find_run(conn, "nosuchrun")


def test_an_imap_closed_early_is_a_stopped_run(tmp_path):
    log = RunLog(tmp_path)
    pipeline = Pipeline([plus_one], callbacks=[log], name="early")
    rows = pipeline.imap({"y": list(range(10))}, map_over="y")
    assert next(rows) == (0, {"z": 1})
    rows.close()
    run, stats = _one_run(tmp_path)
    assert (run.status, run.total) == ("stopped", 10)
    assert run.ended is not None and stats["plus_one"].ran < 10


def test_a_forked_child_logs_through_its_own_connection(tmp_path):
    log = RunLog(tmp_path)
    pipeline = Pipeline([checked], callbacks=[log], name="forked")
    pipeline.run({"x": 1})  # the parent's connection is open now
    with log._write_lock:  # fork while the parent's writer is in the middle of a write
        pid = os.fork()
        if pid == 0:  # the child: a run of its own, then out without the parent's atexit
            try:
                pipeline.run({"x": 2})
            finally:
                os._exit(0)
    deadline = time.monotonic() + 30
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung on the parent's run log")
        time.sleep(0.05)
    pipeline.run({"x": 4})
    with store.reading(tmp_path) as conn:
        runs = store.list_runs(conn)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert len(runs) == 3 and {r.pid for r in runs} == {os.getpid(), pid}
    assert all(r.status == "ok" for r in runs)


def test_a_run_log_still_being_created_is_a_named_error(tmp_path):
    import sqlite3

    sqlite3.connect(store.database_path(tmp_path)).close()  # the file, before its tables
    with pytest.raises(store.RunLogError, match="being created"), store.reading(tmp_path):
        pass
