"""DaskEngine on a real LocalCluster: the same rows, events and cache hits as HypernodesEngine.

Most tests share the session's 2-worker cluster (``dask_client`` in conftest.py); the tests of the
engine's own cluster, of ``address=`` and of a killed worker start their own, small ones.
"""

from __future__ import annotations

import gc
import io
import itertools
import math
import os
import pickle
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip(
    "distributed", reason="the DaskEngine tests need the dask extra: pip install -e '.[dask]'"
)

import cloudpickle
from dask_support import (
    cancel_own_task_on,
    child_pids,
    crash_on,
    fan_out,
    flaky,
    inner_pids,
    owner_pid,
    pid_of,
    stall_once_on,
    still_running,
    too_slow,
    worker_pids,
)
from distributed import LocalCluster, get_task_stream
from engine_cases import CASES, add_one, double, label, minus_three

from callbacks.recorder import Recorder  # the callback tests' recorder (tests/ is on the path)
from hypernodes import (
    DiskCache,
    HypernodesEngine,
    ItemError,
    MemoryCache,
    Pipeline,
    node,
)
from hypernodes.engines import DaskEngine
from hypernodes.exceptions import (
    ExecutorError,
    UnpicklableError,
    WorkerCrashedError,
)

pytestmark = pytest.mark.timeout(120)

NODE_EXECUTORS = ("sequential", "threaded", "async")
IDS = [case.name for case in CASES]


@pytest.fixture(scope="module")
def engines(dask_client):
    """One DaskEngine per node executor, all on the session's cluster."""
    made = {name: DaskEngine(client=dask_client, node_executor=name) for name in NODE_EXECUTORS}
    yield made
    for engine in made.values():
        engine.shutdown()


@pytest.fixture
def engine(engines):
    return engines["sequential"]


def chunk_tasks(stream) -> list[str]:
    """The keys of the chunk tasks a ``get_task_stream`` block recorded."""
    return [row["key"] for row in stream.data if "-hypernodes-" in str(row["key"])]


def scheduler_chunk_keys(client) -> list[str]:
    """Chunk tasks the scheduler still holds (none once a map has returned or stopped)."""

    def keys(dask_scheduler):
        return [str(k) for k in dask_scheduler.tasks if "-hypernodes-" in str(k)]

    return client.run_on_scheduler(keys)


def describe(pids: set[int]) -> list[str]:
    import psutil

    found = []
    for pid in pids:
        try:
            found.append(f"{pid}: {' '.join(psutil.Process(pid).cmdline())}")
        except psutil.NoSuchProcess:
            found.append(f"{pid}: gone")
    return found


def eventually_empty(fetch, within: float = 10.0) -> list:
    deadline = time.monotonic() + within
    while True:
        found = fetch()
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------------
# Conformance with HypernodesEngine


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("node_executor", NODE_EXECUTORS)
def test_case_gives_the_reference_rows_and_events(engines, node_executor, case):
    reference, ours = Recorder(), Recorder()
    with HypernodesEngine(node_executor=node_executor) as local:
        assert case.run(local, callbacks=[reference]) == case.expected()
    assert case.run(engines[node_executor], callbacks=[ours]) == case.expected()
    assert Counter(ours.events) == Counter(reference.events)
    assert ours.overlaps == 0  # callbacks never run two at a time
    # each item's events arrive in order: it starts first and ends last
    top = [e for e in ours.events if len(e[1]) == 1]
    for items in {e[2] for e in top if e[0] == "on_map_item_start"}:
        mine = [e[0] for e in top if e[2] == items]
        assert mine[0] == "on_map_item_start" and mine[-1] == "on_map_item_end"


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("writer", ["dask", "local"])
def test_case_cache_hits_match_the_reference(engine, case, writer, tmp_path):
    """A DiskCache written on one engine is hit on the other exactly as it is on HypernodesEngine
    alone (the same keys everywhere)."""
    local = HypernodesEngine()
    first, second = (engine, local) if writer == "dask" else (local, engine)
    reference = Recorder()
    case.run(local, cache=DiskCache(tmp_path / "reference"))
    expected = case.run(local, cache=DiskCache(tmp_path / "reference"), callbacks=[reference])
    ours = Recorder()
    case.run(first, cache=DiskCache(tmp_path / "shared"))
    assert case.run(second, cache=DiskCache(tmp_path / "shared"), callbacks=[ours]) == expected
    assert Counter(ours.events) == Counter(reference.events)


def test_disk_cache_written_by_workers_is_all_hits_for_every_engine(engine, tmp_path):
    pipeline = Pipeline([add_one, double, minus_three], name="chain")
    items = {"x": list(range(40))}
    cold = Recorder()
    rows = pipeline.with_engine(engine).with_cache(DiskCache(tmp_path / "c")).with_callbacks([cold])
    assert rows.map(items, map_over="x") == pipeline.map(items, map_over="x")
    assert len([e for e in cold.events if e[0] == "on_node_end"]) == 120  # computed on workers
    for warm_engine in (HypernodesEngine(), engine):
        warm = Recorder()
        cached = pipeline.with_engine(warm_engine).with_cache(DiskCache(tmp_path / "c"))
        assert cached.with_callbacks([warm]).map(items, map_over="x") == rows.map(
            items, map_over="x"
        )
        hooks = Counter(e[0] for e in warm.events)
        assert hooks["on_node_start"] == 0 and hooks["on_map_item_cached"] == 40


def test_memory_cache_is_filled_through_the_relay(engine):
    cache = MemoryCache()
    pipeline = Pipeline([add_one, double], engine=engine, cache=cache)
    expected = [{"a": x + 1, "b": 2 * (x + 1)} for x in range(30)]
    assert pipeline.map({"x": range(30)}, map_over="x") == expected
    assert len(cache) == 60  # two outputs per item, written on workers, imported here
    warm = Recorder()
    assert pipeline.with_callbacks([warm]).map({"x": range(30)}, map_over="x") == expected
    hooks = Counter(e[0] for e in warm.events)
    assert hooks["on_map_item_cached"] == 30 and hooks["on_node_start"] == 0


def test_progress_bar_advances_to_the_end(engine):
    from hypernodes.telemetry import ProgressCallback

    out = io.StringIO()
    pipeline = Pipeline(
        [add_one, double],
        engine=DaskEngine(client=engine.client, chunk_size=7),
        callbacks=[ProgressCallback(mode="rich", file=out)],
        name="chain",
    )
    assert len(pipeline.map({"x": range(50)}, map_over="x")) == 50
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
    final = text[text.rindex("chain (map)") :]
    assert re.search(r"chain \(map\)\s.*50/50", final)


# ---------------------------------------------------------------------------------------------
# Where things run


def test_items_run_on_the_workers(engine, dask_client):
    rows = Pipeline([pid_of], engine=engine).map({"x": range(40)}, map_over="x")
    pids = {row["pid"] for row in rows}
    assert os.getpid() not in pids
    assert pids <= worker_pids(dask_client)


def test_a_map_nested_in_a_distributed_item_runs_in_that_worker(engine):
    outer = Pipeline([fan_out, owner_pid, inner_pids()], engine=engine, name="outer")
    rows = outer.map({"x": range(12)}, map_over="x")
    for row in rows:
        assert row["owner"] != os.getpid()
        assert row["inner_pids"] == [row["owner"]] * 3  # inline in the item's worker


def test_run_stays_here_and_its_nested_maps_are_distributed(engine):
    outer = Pipeline([fan_out, owner_pid, inner_pids()], engine=engine, name="outer")
    result = outer.run({"x": 5})
    assert result["owner"] == os.getpid()
    assert result["xs"] == [5, 6, 7]
    assert os.getpid() not in set(result["inner_pids"])


def test_product_mode_keeps_the_order_of_every_combination(engines):
    engine = DaskEngine(client=engines["sequential"].client, chunk_size=7)
    a, b = list(range(12)), list(range(10, 25))
    rows = Pipeline([label], engine=engine).map(
        {"a": a, "b": b}, map_over=["a", "b"], map_mode="product"
    )
    assert rows == [{"label": f"{x}-{y}"} for x, y in itertools.product(a, b)]


def test_the_engine_pickles_as_a_local_engine_with_its_node_executor(engines):
    copy = pickle.loads(cloudpickle.dumps(engines["threaded"]))
    assert isinstance(copy, HypernodesEngine)
    assert type(copy._node).__name__ == "ThreadedExecutor"


# ---------------------------------------------------------------------------------------------
# Chunks and streaming


def test_one_task_per_chunk_counted_on_the_scheduler(dask_client):
    pipeline = Pipeline([add_one, double], engine=DaskEngine(client=dask_client, chunk_size=64))
    with get_task_stream(dask_client) as stream:
        rows = pipeline.map({"x": range(1000)}, map_over="x")
    assert rows == [{"a": x + 1, "b": 2 * (x + 1)} for x in range(1000)]
    assert 0 < len(chunk_tasks(stream)) <= math.ceil(1000 / 64)


@node(output_name="size")
def size_of(blob: bytes) -> int:
    return len(blob)


def test_a_large_chunk_goes_to_a_worker_directly_not_through_the_scheduler(
    dask_client, monkeypatch
):
    from hypernodes.engines.dask import SCATTER_LIMIT

    scattered: list[int] = []
    scatter = dask_client.scatter

    def spy(data, **options):
        scattered.append(len(data))
        return scatter(data, **options)

    monkeypatch.setattr(dask_client, "scatter", spy)
    blobs = [bytes([i]) * (SCATTER_LIMIT // 2 + 1) for i in range(4)]
    engine = DaskEngine(client=dask_client, chunk_size=2)
    rows = Pipeline([size_of], engine=engine).map({"blob": blobs}, map_over="blob")
    assert rows == [{"size": SCATTER_LIMIT // 2 + 1}] * 4
    assert len(scattered) == 2 and min(scattered) > SCATTER_LIMIT  # the two chunks, not the spec
    small = Pipeline([size_of], engine=engine).map({"blob": [b"x"] * 4}, map_over="blob")
    assert small == [{"size": 1}] * 4 and len(scattered) == 2  # small chunks stay in the task


def test_tasks_are_named_after_the_pipeline_and_its_nodes(dask_client):
    from dask.utils import key_split

    pipeline = Pipeline([add_one, double], engine=DaskEngine(client=dask_client), name="etl")
    with get_task_stream(dask_client) as stream:
        pipeline.map({"x": range(20)}, map_over="x")
    names = {key_split(key) for key in chunk_tasks(stream)}
    assert names == {"etl.add_one+double-hypernodes"}  # what the dashboard groups them by


def test_the_default_chunk_size_adapts_to_items_and_threads(engine, dask_client):
    from hypernodes.engines.dask import default_chunk_size

    threads = sum(dask_client.nthreads().values())
    pipeline = Pipeline([add_one], engine=engine)
    for count in (3, 1000, 50_000):
        size = default_chunk_size(count, threads)
        with get_task_stream(dask_client) as stream:
            assert len(pipeline.map({"x": range(count)}, map_over="x")) == count
        tasks = len(chunk_tasks(stream))
        assert 0 < tasks <= math.ceil(count / size)
        assert tasks <= 4 * threads  # never one task per item
        assert tasks < count or count <= 4 * threads
    assert default_chunk_size(1_000_000, threads) == 10_000  # capped


def test_imap_streams_indexed_rows_in_order_or_as_completed(engine):
    pipeline = Pipeline([add_one], name="p")
    plan = pipeline.plan(None, frozenset({"x"}))
    ctx = pipeline.with_engine(engine)._root_context()
    items = [{"x": x} for x in range(100)]
    small = DaskEngine(client=engine.client, chunk_size=9)
    ordered = list(small.imap(plan, iter(items), 100, ctx))
    assert ordered == [(i, {"a": i + 1}) for i in range(100)]
    unordered = list(small.imap(plan, iter(items), 100, ctx, ordered=False))
    assert sorted(unordered, key=lambda pair: pair[0]) == ordered


def test_chunks_of_an_iterator_of_unknown_length_grow(engine, dask_client):
    """A long stream is not one task per 256 items: 20k items are 7 tasks (256, 512, ... 8192,
    then the rest), where fixed 256-item chunks made 79."""
    pipeline = Pipeline([add_one], engine=engine)
    with get_task_stream(dask_client) as stream:
        count = sum(1 for _ in pipeline.imap({"x": iter(range(20_000))}, map_over="x"))
    assert count == 20_000
    assert 0 < len(chunk_tasks(stream)) <= 8


def test_pipeline_imap_streams_an_iterator_of_unknown_length(engine, dask_client):
    from hypernodes.engines.dask import UNKNOWN_COUNT_CHUNK

    pipeline = Pipeline([add_one], engine=engine)
    with get_task_stream(dask_client) as stream:
        pairs = list(pipeline.imap({"x": iter(range(600))}, map_over="x"))
    assert pairs == [(i, {"a": i + 1}) for i in range(600)]
    assert 0 < len(chunk_tasks(stream)) <= math.ceil(600 / UNKNOWN_COUNT_CHUNK)
    unordered = list(pipeline.imap({"x": range(600)}, map_over="x", ordered=False))
    assert sorted(unordered, key=lambda pair: pair[0]) == pairs


def test_amap_from_an_event_loop(engine):
    import asyncio

    pipeline = Pipeline([add_one, double], engine=engine)
    rows = asyncio.run(pipeline.amap({"x": range(50)}, map_over="x"))
    assert rows == [{"a": x + 1, "b": 2 * (x + 1)} for x in range(50)]


def test_stopping_an_imap_early_cancels_the_rest(dask_client):
    pipeline = Pipeline([add_one], name="p")
    plan = pipeline.plan(None, frozenset({"x"}))
    engine = DaskEngine(client=dask_client, chunk_size=10, max_in_flight=4)
    ctx = pipeline.with_engine(engine)._root_context()
    stream = engine.imap(plan, ({"x": x} for x in range(10_000)), 10_000, ctx)
    assert next(stream) == (0, {"a": 1})
    stream.close()
    assert eventually_empty(lambda: scheduler_chunk_keys(dask_client)) == []


def test_a_finished_map_leaves_no_task_on_the_scheduler(engine, dask_client):
    Pipeline([add_one], engine=engine).map({"x": range(500)}, map_over="x")
    assert eventually_empty(lambda: scheduler_chunk_keys(dask_client)) == []


def test_on_error_raise_gives_the_first_failure_with_its_type_and_note(dask_client):
    from engine_cases import picky

    engine = DaskEngine(client=dask_client, chunk_size=3)
    with pytest.raises(ValueError, match="no multiples of four: 4") as info:
        Pipeline([picky], engine=engine, name="p").map({"x": range(30)}, map_over="x")
    assert info.value.__notes__ == [
        "hypernodes: raised by node 'picky' of pipeline p[item 4]; inputs: x=4"
    ]


def test_a_chunk_cancelled_on_the_cluster_is_a_named_error(dask_client):
    engine = DaskEngine(client=dask_client, chunk_size=4)
    pipeline = Pipeline([cancel_own_task_on], engine=engine, name="p")
    with pytest.raises(WorkerCrashedError, match=r"map items 8-11 was cancelled") as info:
        pipeline.map({"x": range(20), "victim": 9}, map_over="x")
    assert info.value.items == [8, 9, 10, 11]
    assert eventually_empty(lambda: scheduler_chunk_keys(dask_client)) == []


def test_retries_and_timeouts_of_nodes_apply_on_the_workers(engine):
    from hypernodes.exceptions import NodeTimeoutError

    rows = Pipeline([flaky], engine=engine).map({"x": range(20, 30)}, map_over="x")
    assert rows == [{"steady": x} for x in range(20, 30)]  # each item retried twice, on a worker
    with pytest.raises(NodeTimeoutError, match="too_slow") as info:
        Pipeline([too_slow], engine=engine, name="p").map({"x": range(6)}, map_over="x")
    assert "p[item 3]" in " ".join(info.value.__notes__)


# ---------------------------------------------------------------------------------------------
# What cannot travel


def test_an_unpicklable_node_is_named_before_anything_is_submitted(engine, dask_client):
    lock = threading.Lock()

    @node(output_name="locked")
    def uses_lock(x: int) -> int:
        with lock:
            return x

    pipeline = Pipeline([add_one, uses_lock], engine=engine, name="p")
    with (
        get_task_stream(dask_client) as stream,
        pytest.raises(UnpicklableError, match="node 'uses_lock'"),
    ):
        pipeline.map({"x": range(10)}, map_over="x")
    assert chunk_tasks(stream) == []


def test_a_closure_node_travels_by_value(engine):
    offset = 1000

    @node(output_name="shifted")
    def shift(x: int) -> int:
        return x + offset

    rows = Pipeline([shift], engine=engine).map({"x": range(5)}, map_over="x")
    assert rows == [{"shifted": 1000 + x} for x in range(5)]


# ---------------------------------------------------------------------------------------------
# Clients and clusters


def test_a_users_client_stays_open_after_shutdown(dask_client):
    with DaskEngine(client=dask_client) as engine:
        Pipeline([add_one], engine=engine).map({"x": range(10)}, map_over="x")
    assert dask_client.status == "running"
    assert dask_client.submit(sum, [1, 2], pure=False).result() == 3
    engine.shutdown()
    assert dask_client.status == "running"


def test_an_in_process_cluster_leaves_this_process_a_caller():
    from distributed import Client

    from hypernodes.execution import remote

    with (
        LocalCluster(
            n_workers=1,
            threads_per_worker=2,
            processes=False,
            dashboard_address=None,
            scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
        DaskEngine(client=client, chunk_size=2) as engine,
    ):
        outer = Pipeline([fan_out, owner_pid, inner_pids()], engine=engine, name="outer")
        rows = outer.map({"x": range(6)}, map_over="x")
    assert [row["xs"] for row in rows] == [[x, x + 1, x + 2] for x in range(6)]
    assert {row["owner"] for row in rows} == {os.getpid()}  # worker threads of this process
    assert not remote.in_worker()  # later maps here are still distributed


def test_the_engines_own_cluster_starts_on_first_use_and_stops_on_shutdown():
    before = child_pids()
    engine = DaskEngine(n_workers=1)
    assert child_pids() == before  # nothing started yet
    rows = Pipeline([pid_of], engine=engine).map({"x": range(4)}, map_over="x")
    workers = worker_pids(engine.client)
    assert {row["pid"] for row in rows} <= workers and os.getpid() not in workers
    assert "127.0.0.1" in engine.client.scheduler.address
    engine.shutdown()
    left = still_running(workers)
    assert not left, describe(left)


@pytest.mark.parametrize("where", ["here", "on Dask's event loop"])
def test_a_dropped_engine_stops_its_cluster(where):
    holder = [DaskEngine(n_workers=1)]
    Pipeline([add_one], engine=holder[0]).map({"x": range(4)}, map_over="x")
    started = worker_pids(holder[0].client)
    assert started
    if where == "here":
        holder.clear()
        gc.collect()
    else:  # the last reference goes in the client's own loop thread, which cannot wait on itself
        holder[0].client.loop.add_callback(holder.clear)
    assert not still_running(started)
    assert not holder


def test_a_script_that_never_shuts_down_leaves_no_process(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            """
            import os
            from hypernodes import Pipeline, node
            from hypernodes.engines import DaskEngine

            @node(output_name="pid")
            def pid_of(x: int) -> int:
                return os.getpid()

            if __name__ == "__main__":
                engine = DaskEngine(n_workers=1)
                rows = Pipeline([pid_of], engine=engine).map({"x": [1, 2]}, map_over="x")
                print(" ".join(str(row["pid"]) for row in rows), flush=True)
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=90, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    pids = {int(pid) for pid in done.stdout.split()}
    assert pids and os.getpid() not in pids
    assert not still_running(pids)
    assert "Traceback" not in done.stderr and " - ERROR - " not in done.stderr, done.stderr


def test_the_dask_page_runs_as_a_script(tmp_path):
    """docs/dask.md's examples start clusters under ``if __name__ == "__main__":``, which
    tests/test_docs.py does not enter; here the page runs as a script, guards and all."""
    page = Path(__file__).resolve().parents[2] / "docs" / "dask.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
    assert sum('__name__ == "__main__"' in block for block in blocks) >= 2
    script = tmp_path / "dask_page.py"
    script.write_text("\n\n".join(blocks))
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr


# ---------------------------------------------------------------------------------------------
# Import


def test_importing_the_engines_does_not_import_dask():
    code = (
        "import sys\n"
        "import hypernodes.engines as engines\n"
        "from hypernodes.engines import HypernodesEngine\n"
        "assert 'dask' not in sys.modules and 'distributed' not in sys.modules\n"
        "from hypernodes.engines import DaskEngine\n"
        "assert 'distributed' not in sys.modules\n"
        "DaskEngine(client=None)\n"
        "assert 'distributed' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_without_dask_the_engine_says_how_to_install_it():
    code = (
        "import sys\n"
        "sys.modules['distributed'] = None\n"
        "from hypernodes.engines import DaskEngine\n"
        "DaskEngine()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode != 0
    assert "ImportError" in done.stderr and "pip install 'hypernodes[dask]'" in done.stderr


# ---------------------------------------------------------------------------------------------
# A separately started cluster (last: its killed worker restarts in the background)


@pytest.fixture(scope="module")
def spare_cluster():
    """A separately started 2-worker cluster that gives up on a task after one lost worker."""
    import dask

    before = child_pids()
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
        )
    started = child_pids() - before
    yield cluster
    cluster.close()
    assert not still_running(started | (child_pids() - before))


def test_address_connects_to_a_running_scheduler_and_shutdown_disconnects(spare_cluster):
    scheduler = spare_cluster.scheduler
    clients_before = set(scheduler.clients)
    engine = DaskEngine(address=spare_cluster.scheduler_address)
    rows = Pipeline([pid_of], engine=engine).map({"x": range(6)}, map_over="x")
    assert os.getpid() not in {row["pid"] for row in rows}
    assert set(scheduler.clients) > clients_before  # connected as a client
    engine.shutdown()
    assert eventually_empty(lambda: set(scheduler.clients) - clients_before) == set()
    assert len(spare_cluster.workers) == 2  # the cluster is not ours to stop
    # the engine reconnects when used again
    assert Pipeline([add_one], engine=engine).map({"x": [1]}, map_over="x") == [{"a": 2}]
    engine.shutdown()


def test_an_unreachable_scheduler_is_a_clear_error_naming_it():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    engine = DaskEngine(address=address, connect_timeout=1)
    started = time.monotonic()
    with pytest.raises(ExecutorError, match=re.escape(address)):
        Pipeline([add_one], engine=engine).map({"x": [1, 2]}, map_over="x")
    assert time.monotonic() - started < 30  # bounded by connect_timeout, never a hang
    engine.shutdown()


def test_a_worker_killed_mid_map_costs_nothing(spare_cluster, tmp_path):
    """The killed chunk runs again (item by item): every row arrives, each item's events once."""
    marker = tmp_path / "pid"
    recorder = Recorder()
    engine = DaskEngine(address=spare_cluster.scheduler_address, chunk_size=2)
    pipeline = Pipeline([stall_once_on], engine=engine, callbacks=[recorder], name="p")

    def kill_the_stalled_worker() -> None:
        deadline = time.monotonic() + 60
        while not marker.exists():
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)
        os.kill(int(marker.read_text()), signal.SIGKILL)

    killer = threading.Thread(target=kill_the_stalled_worker)
    killer.start()
    try:
        rows = pipeline.map({"x": range(10), "stall": 5, "marker": str(marker)}, map_over="x")
    finally:
        killer.join()
        engine.shutdown()
    assert marker.exists()  # the worker was killed mid-map
    assert rows == [{"slept": x} for x in range(10)]
    ends = [e[3] for e in recorder.events if e[0] == "on_map_item_end"]
    assert sorted(ends) == list(range(10))


def test_an_item_that_kills_its_worker_is_named(spare_cluster):
    engine = DaskEngine(address=spare_cluster.scheduler_address, chunk_size=4)
    pipeline = Pipeline([crash_on], engine=engine, name="p")
    try:
        with pytest.raises(WorkerCrashedError, match="map item 6 killed the worker") as info:
            pipeline.map({"x": range(12), "victim": 6}, map_over="x")
        assert info.value.items == [6]
        rows = pipeline.map({"x": range(12), "victim": 6}, map_over="x", on_error="continue")
    finally:
        engine.shutdown()
    assert [row["survived"] for row in rows if row["survived"] is not rows[6]["survived"]] == [
        x for x in range(12) if x != 6
    ]
    failed = rows[6]["survived"]
    assert isinstance(failed, ItemError) and isinstance(failed.exception, WorkerCrashedError)
    assert failed.exception.items == [6]
