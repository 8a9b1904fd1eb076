"""DiskCache write-behind and batched reads: entries written in batches while a run is in
progress, all stored when it ends (normally, with an error, on Ctrl-C), visible to this process
at once; a map's reads go to SQLite in batches of items."""

from __future__ import annotations

import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from cache_helpers import subprocess_env

from hypernodes import DiskCache, HypernodesEngine, Pipeline, node
from hypernodes.cache import disk

pytestmark = pytest.mark.timeout(120)


@node(output_name="y")
def double(x: int) -> int:
    return 2 * x


@node(output_name="z")
def fails_at_60(y: int) -> int:
    if y == 120:
        raise ValueError("sixty")
    return y + 1


def test_entries_wait_in_memory_and_are_read_back_at_once(tmp_path: pathlib.Path):
    cache = DiskCache(tmp_path / "c")
    other = DiskCache(tmp_path / "c")
    key = b"k" * 18
    with cache.defer():
        cache.set(key, {"v": 1})
        assert cache.get_many([key]) == {key: {"v": 1}}  # this process sees it at once
        assert other.get_many([key]) == {}  # not written yet
    assert other.get_many([key]) == {key: {"v": 1}}  # written when the run ended
    cache.set(b"j" * 18, 2)  # outside a run: written at once
    assert other.get_many([b"j" * 18]) == {b"j" * 18: 2}


def test_a_full_batch_is_written_during_the_run(tmp_path: pathlib.Path, monkeypatch):
    monkeypatch.setattr(disk, "FLUSH_ENTRIES", 10)
    cache = DiskCache(tmp_path / "c")
    other = DiskCache(tmp_path / "c")
    keys = [bytes([i]) * 18 for i in range(25)]
    with cache.defer():
        for i, key in enumerate(keys):
            cache.set(key, i)
        assert len(other.get_many(keys)) == 20  # two batches of 10 are on disk, 5 wait
    assert len(other.get_many(keys)) == 25


@pytest.mark.parametrize("executor", ["sequential", "threaded", "async"])
def test_a_map_stores_everything_it_computed_even_when_it_fails(tmp_path: pathlib.Path, executor):
    path = tmp_path / "c"
    calls: list[int] = []

    @node(output_name="y")
    def counted(x: int) -> int:
        calls.append(x)
        return 2 * x

    with HypernodesEngine(map_executor=executor) as engine:
        pipeline = Pipeline([counted, fails_at_60], engine=engine, cache=DiskCache(path))
        with pytest.raises(ValueError, match="sixty"):
            pipeline.map({"x": range(100)}, map_over="x")
        assert 60 in calls
        done = sorted(set(calls))
        calls.clear()
        # a fresh cache object and a fresh pipeline: only what is on disk counts
        fresh = Pipeline([counted], engine=engine, cache=DiskCache(path))
        fresh.map({"x": done}, map_over="x")
    assert calls == []  # every item computed before the failure was stored


NODES = textwrap.dedent(
    """
    import os, time
    from hypernodes import node

    @node(output_name="y")
    def slow(x):
        with open(os.environ["CALL_LOG"], "a") as log:
            log.write(f"{x}\\n")
        print(x, flush=True)
        time.sleep(float(os.environ.get("PAUSE", "0")))
        return x * 3
    """
)

CHILD = textwrap.dedent(
    """
    import sys
    from hypernodes import DiskCache, Pipeline
    from wb_nodes import slow

    try:
        Pipeline([slow], cache=DiskCache(sys.argv[1])).map(
            {"x": list(range(int(sys.argv[2])))}, map_over="x"
        )
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    """
)


def _run_child(tmp_path: pathlib.Path, items: int, pause: str) -> subprocess.Popen:
    (tmp_path / "wb_nodes.py").write_text(NODES)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = subprocess_env(str(tmp_path), CALL_LOG=str(tmp_path / "calls.log"), PAUSE=pause)
    return subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "c"), str(items)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _calls(tmp_path: pathlib.Path) -> list[int]:
    log = tmp_path / "calls.log"
    return [int(line) for line in log.read_text().split()] if log.exists() else []


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT to a child process (POSIX)")
def test_ctrl_c_keeps_the_finished_items(tmp_path: pathlib.Path):
    child = _run_child(tmp_path, 100_000, "0.02")
    try:
        started = [int(child.stdout.readline()) for _ in range(40)]
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert "interrupted" in out, err
    finished = started[:-1]  # items run one at a time: all but the last one seen had finished
    (tmp_path / "calls.log").unlink()
    again = _run_child(tmp_path, len(finished), "0")  # the same items, in a new process
    _, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    assert _calls(tmp_path) == []  # every finished item was stored, none is computed again


KILLED = textwrap.dedent(
    """
    import os, signal, sys
    from hypernodes import DiskCache, Pipeline
    from hypernodes.cache import disk
    from wb_nodes import slow

    disk.FLUSH_ENTRIES = 1000  # a batch of 1000 entries goes to disk at a time

    class Killer(DiskCache):
        def set(self, key, value):
            if value == 4500 * 3:
                os.kill(os.getpid(), signal.SIGKILL)  # dies without unwinding
            super().set(key, value)

    Pipeline([slow], cache=Killer(sys.argv[1])).map({"x": list(range(10_000))}, map_over="x")
    """
)


def test_a_killed_process_loses_at_most_the_batch_not_written(tmp_path: pathlib.Path):
    (tmp_path / "wb_nodes.py").write_text(NODES)
    script = tmp_path / "killed.py"
    script.write_text(KILLED)
    env = subprocess_env(str(tmp_path), CALL_LOG=str(tmp_path / "calls.log"), PAUSE="0")
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "c")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    (tmp_path / "calls.log").unlink()
    again = _run_child(tmp_path, 4500, "0")  # items 0..4499 were computed before the kill
    _, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    recomputed = _calls(tmp_path)
    # the cache opens and reads fine; only the last batch, not yet written, is computed again
    assert recomputed == list(range(4000, 4500))


def test_a_warm_map_reads_in_batches_of_items(tmp_path: pathlib.Path, monkeypatch):
    path = tmp_path / "c"
    pipeline = Pipeline([double], cache=DiskCache(path))
    items = list(range(1000))
    expected = pipeline.map({"x": items}, map_over="x")
    queries: list[int] = []
    fetch = DiskCache._fetch

    def counting(self, store, keys):
        queries.append(len(keys))
        return fetch(self, store, keys)

    monkeypatch.setattr(DiskCache, "_fetch", counting)
    start = time.perf_counter()
    assert Pipeline([double], cache=DiskCache(path)).map({"x": items}, map_over="x") == expected
    assert time.perf_counter() - start < 30
    assert sum(queries) == 1000 and len(queries) <= 4  # 256 items a read, not one read each


@pytest.mark.parametrize("executor", ["sequential", "threaded", "async"])
def test_repeated_items_are_computed_once_although_reads_are_batched(
    tmp_path: pathlib.Path, executor
):
    calls: list[int] = []

    @node(output_name="y")
    def counted(x: int) -> int:
        calls.append(x)
        return 2 * x

    with HypernodesEngine(map_executor=executor) as engine:
        pipeline = Pipeline([counted], engine=engine, cache=DiskCache(tmp_path / "c"))
        rows = pipeline.map({"x": [1, 2, 3] * 400}, map_over="x")
    assert rows == [{"y": 2 * x} for x in [1, 2, 3] * 400]
    assert sorted(calls) == [1, 2, 3]  # the later copies read what the first ones wrote


@pytest.mark.parametrize("executor", ["threaded", "async"])
def test_a_warm_concurrent_map_reads_a_batch_of_items_at_a_time(
    tmp_path: pathlib.Path, monkeypatch, executor
):
    path = tmp_path / "c"
    items = list(range(3000))
    expected = Pipeline([double], cache=DiskCache(path)).map({"x": items}, map_over="x")
    queries: list[int] = []
    fetch = DiskCache._fetch

    def counting(self, store, keys):
        queries.append(len(keys))
        return fetch(self, store, keys)

    monkeypatch.setattr(DiskCache, "_fetch", counting)
    with HypernodesEngine(map_executor=executor) as engine:
        pipeline = Pipeline([double], engine=engine, cache=DiskCache(path))
        assert pipeline.map({"x": items}, map_over="x") == expected
    assert sum(queries) >= 3000
    # batches of quick items share a query (the first ones, and slow ones, run alone)
    assert max(queries) > 1 and len(queries) < len(items)
