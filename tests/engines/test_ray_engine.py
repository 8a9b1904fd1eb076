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
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="RayEngine needs ray: pip install 'hypernodes[ray]'")

from engine_cases import CASES, add_one, double
from ml_cases import counted_model, log_lines, model_pipeline

from callbacks.recorder import Recorder  # the callback tests' recorder (tests/ is on the path)
from hypernodes import DiskCache, HypernodesEngine, ItemError, Pipeline, node
from hypernodes.engines import RayEngine
from hypernodes.exceptions import WorkerCrashedError

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]

IDS = [case.name for case in CASES]


def _ray_processes() -> dict[int, str]:
    """Ray's own processes (GCS, raylet, workers) on this machine, by pid."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(part in command for part in ("gcs_server", "raylet", "ray::", "ray/_private")):
            found[int(entry.name)] = command
    return found


def _listening(pids) -> set[str]:
    """The addresses the processes ``pids`` listen on."""
    import psutil

    found = set()
    for connection in psutil.net_connections("inet"):
        if connection.status == psutil.CONN_LISTEN and connection.pid in pids:
            found.add(connection.laddr.ip)
    return found


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


# ---------------------------------------------------------------------------------------------
# A separate head (`ray start --head`), in a network namespace that has only loopback

HEAD_SCRIPT = """
import json, os, subprocess, sys
from collections import Counter
from pathlib import Path

os.environ.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled")
ray = str(Path(sys.executable).parent / "ray")
subprocess.run(
    [ray, "start", "--head", "--node-ip-address=127.0.0.1", "--port=6379", "--num-cpus=2",
     "--include-dashboard=false", "--disable-usage-stats"],
    check=True, capture_output=True,
)
try:
    from hypernodes import ItemError, Pipeline, PipelineCallback, node
    from hypernodes.engines import RayEngine

    @node(output_name="y")
    def poison(x: int) -> int:
        if x == 3:
            os._exit(1)
        return x * 2

    class Ends(PipelineCallback):
        def __init__(self):
            self.ends = []

        def on_node_end(self, *, node, outputs, duration, context):
            self.ends.append(node)

    seen = {}
    ends = Ends()
    with RayEngine(address="127.0.0.1:6379", chunk_size=2, max_retries=0) as engine:
        pipeline = Pipeline([poison], engine=engine, callbacks=[ends])
        rows = pipeline.map({"x": range(6)}, map_over="x", on_error="continue")
        seen["rows"] = [
            type(r["y"].exception).__name__ if isinstance(r["y"], ItemError) else r["y"]
            for r in rows
        ]
        seen["ends"] = len(ends.ends)
    print("RESULT " + json.dumps(seen), flush=True)
finally:
    subprocess.run([ray, "stop", "--force"], capture_output=True)
"""


def _loopback_namespace_or_skip() -> list[str]:
    import shutil
    import subprocess

    why = (
        "a separate Ray head listens on every interface: this test runs it only inside a network "
        "namespace that has nothing but loopback (unshare --net, as root)"
    )
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        pytest.skip(why)
    probe = subprocess.run(
        ["unshare", "--net", "sh", "-c", "ip link set lo up"], capture_output=True, timeout=30
    )
    if probe.returncode != 0:
        pytest.skip(f"{why}; unshare failed: {probe.stderr.decode(errors='replace')[-200:]}")
    return ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$0" "$@"']


def test_a_separate_ray_head_runs_the_map_and_isolates_a_crash(tmp_path):
    """`ray start --head` on 127.0.0.1, RayEngine(address=...) joins it: rows, relayed events and
    a poison item that fails alone; `ray stop` leaves no Ray process (30-50 s on a
    small shared machine, most of it Ray starting and stopping)."""
    import json
    import subprocess
    import sys

    command = _loopback_namespace_or_skip()
    script = tmp_path / "head.py"
    script.write_text(HEAD_SCRIPT, encoding="utf-8")
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": src}
    before = set(_ray_processes())
    done = subprocess.run(
        [*command, sys.executable, str(script)],
        capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path,
    )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-2000:] + done.stderr[-4000:]
    seen = json.loads(lines[-1][len("RESULT ") :])
    assert seen["rows"] == [0, 2, 4, "WorkerCrashedError", 8, 10]
    assert seen["ends"] == 5  # the node-end events of the five items that finished
    deadline = time.monotonic() + 60
    while (left := set(_ray_processes()) - before) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, f"Ray processes left running: {sorted(left)}"
