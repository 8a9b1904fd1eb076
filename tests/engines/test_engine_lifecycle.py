"""Engines as context managers: no thread or process left behind, shutdown that never breaks a
pipeline sharing the engine, executors the user owns left alone, and Ctrl-C that returns at once."""

from __future__ import annotations

import gc
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from hypernodes import HypernodesEngine, Pipeline, node
from hypernodes.engines import AsyncExecutor, ParallelExecutor, ThreadedExecutor

pytestmark = pytest.mark.timeout(90)

SRC = Path(__file__).resolve().parents[2] / "src"


@node(output_name="pid")
def worker_pid(x: int) -> int:
    time.sleep(0.01)
    return os.getpid()


@node(output_name="y")
def nap(x: int) -> int:
    time.sleep(0.05)
    return x


def process_gone(pid: int) -> bool:
    """No such process, or only a zombie waiting to be reaped by someone else."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.mark.parametrize(
    ("node_executor", "map_executor"),
    [("threaded", "threaded"), ("async", "async"), ("threaded", "async"), ("async", "threaded")],
)
def test_with_block_leaves_no_thread_behind(node_executor, map_executor):
    # The engine's own threads, by identity: a count of all threads would also move with threads
    # that other tests left finishing in the background (a cluster's closer, a pool winding down).
    before = set(threading.enumerate())
    with HypernodesEngine(node_executor, map_executor, max_workers=4) as engine:
        pipeline = Pipeline([nap, worker_pid], engine=engine)
        rows = pipeline.map({"x": range(20)}, map_over="x")
        assert pipeline.run({"x": 1})["y"] == 1
        started = [
            t for t in threading.enumerate() if t not in before and t.name.startswith("hypernodes")
        ]
        assert started  # workers were started...
    assert [r["y"] for r in rows] == list(range(20))
    assert [t.name for t in started if t.is_alive()] == []  # ...and all are gone


def test_with_block_leaves_no_process_behind():
    before = threading.active_count()
    with HypernodesEngine(map_executor="parallel", max_workers=2) as engine:
        rows = Pipeline([worker_pid], engine=engine).map({"x": range(40)}, map_over="x")
        pids = {row["pid"] for row in rows}
        assert os.getpid() not in pids
        assert all(not process_gone(pid) for pid in pids)
    assert pids and all(process_gone(pid) for pid in pids)
    assert threading.active_count() == before


def test_pipelines_reuse_the_engine_workers_and_never_shut_them_down():
    with HypernodesEngine(map_executor="parallel", max_workers=2) as engine:
        first = Pipeline([worker_pid], engine=engine).map({"x": range(20)}, map_over="x")
        second = Pipeline([worker_pid, nap], engine=engine).map({"x": range(20)}, map_over="x")
        first_pids = {row["pid"] for row in first}
        assert {row["pid"] for row in second} <= first_pids  # same pool, still running
        assert all(not process_gone(pid) for pid in first_pids)


def test_shutting_down_a_shared_engine_does_not_break_a_running_pipeline():
    engine = HypernodesEngine(map_executor=ThreadedExecutor(max_workers=2))
    mine = Pipeline([nap], engine=engine, name="mine")
    theirs = Pipeline([worker_pid], engine=engine, name="theirs")
    outcome: dict[str, object] = {}

    def run_mine() -> None:
        outcome["rows"] = mine.map({"x": range(40)}, map_over="x")  # ~1 s on two threads

    thread = threading.Thread(target=run_mine)
    thread.start()
    time.sleep(0.2)
    theirs.map({"x": [1]}, map_over="x")
    engine.shutdown()  # the other pipeline's owner is done with the engine
    thread.join(timeout=30)
    assert outcome["rows"] == [{"y": x} for x in range(40)]
    # The engine still works afterwards: a later call starts new workers.
    assert theirs.map({"x": [1, 2]}, map_over="x")[0]["pid"] == os.getpid()
    engine.shutdown()


def test_the_users_own_executor_is_never_shut_down():
    user_pool = ThreadPoolExecutor(max_workers=2)
    with HypernodesEngine(node_executor=user_pool, map_executor=user_pool) as engine:
        assert Pipeline([nap], engine=engine).map({"x": [1, 2]}, map_over="x") == [
            {"y": 1},
            {"y": 2},
        ]
    assert user_pool.submit(pow, 2, 5).result() == 32
    user_pool.shutdown()


def test_an_engine_dropped_without_shutdown_releases_its_threads():
    before = threading.active_count()
    engine = HypernodesEngine(map_executor="threaded", node_executor="async")
    Pipeline([nap], engine=engine).map({"x": range(8)}, map_over="x")
    assert threading.active_count() > before
    del engine
    gc.collect()
    assert wait_until(lambda: threading.active_count() == before)


def test_engine_pickles_as_its_configuration_without_workers():
    engine = HypernodesEngine(
        node_executor=AsyncExecutor(max_workers=7), map_executor="parallel", max_workers=3
    )
    copy = pickle.loads(pickle.dumps(engine))
    assert isinstance(copy._node, AsyncExecutor) and copy._node.limit == 7
    assert isinstance(copy._map, ParallelExecutor) and copy._map.workers == 3
    user_pool = ThreadPoolExecutor(max_workers=1)
    with_user_pool = pickle.loads(pickle.dumps(HypernodesEngine(node_executor=user_pool)))
    assert "SequentialExecutor" in repr(with_user_pool)  # another process cannot use the pool
    user_pool.shutdown()


# ---------------------------------------------------------------------------------------------
# Ctrl-C

INTERRUPTED = textwrap.dedent(
    """
    import json, os, sys, threading, time
    from hypernodes import HypernodesEngine, Pipeline, node

    STARTED = []

    @node(output_name="pid")
    def slow(x):
        STARTED.append(x)
        time.sleep(0.2)
        return os.getpid()

    if __name__ == "__main__":
        kind = sys.argv[1]
        engine = HypernodesEngine(map_executor=kind, max_workers=4)
        pipeline = Pipeline([slow], engine=engine)
        pids = sorted({r["pid"] for r in pipeline.map({"x": range(8)}, map_over="x")})
        STARTED.clear()
        print("ready", flush=True)
        try:
            pipeline.map({"x": range(400)}, map_over="x")  # 20 s of work on 4 workers
            outcome = "finished"
        except KeyboardInterrupt:
            outcome = "interrupted"
        caught = time.perf_counter()
        started_then = len(STARTED)
        time.sleep(0.5)
        report = {
            "outcome": outcome,
            "started_then": started_then,
            "started_later": len(STARTED),
            "pids": pids,
        }
        engine.shutdown()
        report["threads"] = threading.active_count()
        print(json.dumps(report), flush=True)
    """
)


@pytest.mark.parametrize("kind", ["threaded", "async", "parallel"])
def test_ctrl_c_returns_promptly_and_leaves_no_worker(tmp_path, kind):
    script = tmp_path / "interrupted.py"
    script.write_text(INTERRUPTED)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(
        [sys.executable, str(script), kind],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.5)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["outcome"] == "interrupted"
    # 0.5 s of settling + the time for shutdown: far from the 20 s the map had left.
    assert took < 5, took
    assert report["threads"] == 1
    if kind == "parallel":
        assert report["pids"] and all(process_gone(pid) for pid in report["pids"])
    else:
        assert report["started_later"] == report["started_then"]  # nothing new started
        assert report["started_then"] < 50
