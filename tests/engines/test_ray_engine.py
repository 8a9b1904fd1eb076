"""RayEngine against a real local Ray: the engine conformance cases, crash isolation, resources.

The engine starts its own Ray (``RayEngine()``: two CPUs, bound to the loopback interface) once
for the module; the fixture checks that Ray listened on loopback only and that no Ray process is
left after ``shutdown``.  Ray's worker processes run in Ray's session directory, where the tests'
modules cannot be imported: the nodes reach them by value.
"""

from __future__ import annotations

import os
import time
from collections import Counter

import pytest

pytest.importorskip("ray", reason="RayEngine needs ray: pip install 'hypernodes[ray]'")

from engine_cases import CASES, add_one, double
from ml_cases import counted_model, log_lines, model_pipeline
from ray_support import listening as _listening
from ray_support import ray_processes as _ray_processes

from callbacks.recorder import Recorder  # the callback tests' recorder (tests/ is on the path)
from hypernodes import DiskCache, HypernodesEngine, ItemError, Pipeline, node
from hypernodes.engines import RayEngine
from hypernodes.exceptions import WorkerCrashedError

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]

IDS = [case.name for case in CASES]


@pytest.fixture(scope="module")
def engine():
    # Ray's processes inherit the environment: a relative PYTHONPATH=src would not find the
    # library from their own working directories.
    saved = os.environ.get("PYTHONPATH")
    if saved:
        os.environ["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in saved.split(":"))
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    before = set(_ray_processes())
    engine = RayEngine(num_cpus=2)
    try:
        assert Pipeline([add_one], engine=engine).map({"x": [1]}, map_over="x") == [{"a": 2}]
        started = set(_ray_processes()) - before
        assert started, "RayEngine started no Ray process"
        assert _listening(started) <= {"127.0.0.1", "::ffff:127.0.0.1", "::1"}, _listening(started)
        yield engine
    finally:
        engine.shutdown()
        if saved is not None:
            os.environ["PYTHONPATH"] = saved
    deadline = time.monotonic() + 60
    while (left := set(_ray_processes()) - before) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, f"Ray processes left running: {sorted(left)}"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_case_gives_the_reference_rows_and_events(engine, case):
    reference, ours = Recorder(), Recorder()
    with HypernodesEngine() as local:
        assert case.run(local, callbacks=[reference]) == case.expected()
    assert case.run(engine, callbacks=[ours]) == case.expected()
    assert Counter(ours.events) == Counter(reference.events)
    assert ours.overlaps == 0


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_case_cache_hits_match_the_reference(engine, case, tmp_path):
    """A DiskCache written on Ray is hit locally exactly as one written locally."""
    local = HypernodesEngine()
    reference = Recorder()
    case.run(local, cache=DiskCache(tmp_path / "reference"))
    expected = case.run(local, cache=DiskCache(tmp_path / "reference"), callbacks=[reference])
    ours = Recorder()
    case.run(engine, cache=DiskCache(tmp_path / "shared"))
    assert case.run(local, cache=DiskCache(tmp_path / "shared"), callbacks=[ours]) == expected
    assert Counter(ours.events) == Counter(reference.events)


@node(output_name="pid")
def pid_of(x: int) -> int:
    return os.getpid()


@node(output_name="y")
def poison(x: int) -> int:
    if x == 5:
        os._exit(1)  # the worker process dies, as in a segfault or the OOM killer
    return x


def test_items_run_in_ray_workers(engine):
    rows = Pipeline([pid_of], engine=engine).map({"x": range(8)}, map_over="x")
    assert os.getpid() not in {row["pid"] for row in rows}


def test_an_item_that_kills_its_worker_fails_alone(engine):
    pipeline = Pipeline([poison], engine=RayEngine(chunk_size=4, max_retries=0))
    rows = pipeline.map({"x": range(10)}, map_over="x", on_error="continue")
    failed = rows[5]["y"]
    assert isinstance(failed, ItemError) and isinstance(failed.exception, WorkerCrashedError)
    assert failed.exception.items == [5]
    assert [row["y"] for i, row in enumerate(rows) if i != 5] == [x for x in range(10) if x != 5]
    with pytest.raises(WorkerCrashedError, match="map item 1 killed the worker") as info:
        pipeline.map({"x": range(4, 7)}, map_over="x")  # x=5 is item 1 of this map
    assert info.value.items == [1]


def test_a_resource_is_built_once_per_worker_process(engine, tmp_path):
    log = str(tmp_path / "model.log")
    pipeline = model_pipeline().bind(model=counted_model(log)).with_engine(engine)
    xs = [float(x) for x in range(40)]
    rows = pipeline.map({"x": xs}, map_over="x") + pipeline.map({"x": xs}, map_over="x")
    assert [row["y"] for row in rows] == [x * 2.0 for x in xs] * 2
    workers = {row["where"][0] for row in rows}
    assert all(run == built for run, built in (row["where"] for row in rows))
    assert os.getpid() not in workers
    assert Counter(log_lines(log, "build")) == Counter(dict.fromkeys(workers, 1))


def test_imap_streams_and_a_chunk_is_one_task(engine):
    pipeline = Pipeline([add_one, double], engine=RayEngine(chunk_size=7))
    rows = list(pipeline.imap({"x": iter(range(30))}, map_over="x"))
    assert rows == [(x, {"a": x + 1, "b": 2 * (x + 1)}) for x in range(30)]
