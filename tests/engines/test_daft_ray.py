"""DaftEngine on Daft's Ray runner, against a local Ray on the loopback interface.

Daft fixes its runner once per process, so the run happens in a subprocess (a script in the
test's temporary folder).  The script prints what it saw as JSON; this test compares it with the
local engine's answer and checks that no Ray process is left behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("daft", reason="DaftEngine needs daft (the dev extra installs it)")
pytest.importorskip("ray", reason='the Ray runner needs ray: pip install "hypernodes[ray]"')

pytestmark = pytest.mark.timeout(600)

SCRIPT = textwrap.dedent(
    """
    import asyncio, json, os, sys

    import ray

    from hypernodes import DiskCache, HypernodesEngine, ItemError, Pipeline, PipelineCallback, node
    from hypernodes.engines import DaftEngine


    @node(output_name="a")
    def add_one(x: int) -> int:
        return x + 1


    @node(output_name=("q", "r"))
    def split(a: int) -> tuple[int, int]:
        return divmod(a, 3)


    @node(output_name="sq", resources={"num_cpus": 1})
    async def square(a: int) -> int:
        await asyncio.sleep(0)
        return a * a


    @node(output_name="pid")
    def where(a: int) -> int:
        return os.getpid()


    @node(output_name="y")
    def triple(v: int) -> int:
        if v == 40:
            raise KeyError("forty")
        return 3 * v


    inner = Pipeline([triple], name="inner").as_node(
        input_mapping={"vs": "v"}, output_mapping={"y": "ys"}, map_over="vs", name="each"
    )


    @node(output_name="vs")
    def spread(a: int) -> list[int]:
        return list(range(a))


    class Count(PipelineCallback):
        def __init__(self):
            self.events = []

        def on_node_end(self, *, node, outputs, duration, context):
            self.events.append([node, list(context.path), list(context.items)])

        def on_map_item_end(self, *, index, duration, context):
            self.events.append(["item", list(context.path), list(context.items)])


    nodes = [add_one, split, square, where, spread, inner]
    xs = list(range(12))
    cache = DiskCache(sys.argv[1])
    seen = {}
    with DaftEngine(runner="ray", batch_size=4) as engine:
        count = Count()
        pipeline = Pipeline(nodes, engine=engine, callbacks=[count], name="p")
        rows = pipeline.map({"x": xs}, map_over="x", output_name=["a", "q", "r", "sq", "ys", "pid"])
        cached = Pipeline(nodes, engine=engine, cache=cache, name="p")
        seen["cached_rows"] = cached.map(
            {"x": xs}, map_over="x", output_name=["a", "q", "r", "sq", "ys"]
        )
        seen["rows"] = [{k: v for k, v in row.items() if k != "pid"} for row in rows]
        seen["pids"] = sorted({row["pid"] for row in rows})
        seen["driver"] = os.getpid()
        seen["events"] = sorted(count.events)
        node_ip = ray.nodes()[0]["NodeManagerAddress"]
        seen["addresses"] = [node_ip, ray.get_runtime_context().gcs_address]
        try:
            Pipeline(nodes, engine=engine, name="p").map({"x": [1, 45]}, map_over="x")
        except KeyError as exc:
            seen["error"] = [str(exc), exc.__notes__]
        tolerant = Pipeline(nodes, engine=engine, name="p").map(
            {"x": [1, 45]}, map_over="x", output_name=["sq", "ys"], on_error="continue"
        )
        seen["tolerant"] = [
            {k: (type(v).__name__ if isinstance(v, ItemError) else v) for k, v in row.items()}
            for row in tolerant
        ]
        seen["run"] = pipeline.run({"x": 2}, output_name=["a", "sq"])
    seen["ray_after_shutdown"] = ray.is_initialized()
    try:
        pipeline.map({"x": xs}, map_over="x")
    except Exception as exc:
        seen["after_shutdown"] = [type(exc).__name__, str(exc)]

    reference = Count()
    Pipeline(nodes, callbacks=[reference], name="p").map(
        {"x": xs}, map_over="x", output_name=["a", "q", "r", "sq", "ys", "pid"]
    )
    seen["reference_events"] = sorted(reference.events)

    local = Count()
    warm = Pipeline(nodes, engine=HypernodesEngine(), callbacks=[local], cache=cache, name="p")
    warm.map({"x": xs}, map_over="x", output_name=["a", "q", "r", "sq", "ys"])
    seen["local_node_ends"] = [e for e in local.events if e[0] != "item"]
    print("RESULT " + json.dumps(seen))
    """
)


def _ray_processes() -> set[int]:
    """PIDs of Ray's own processes (GCS, raylet, workers) on this machine."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(part in command for part in ("gcs_server", "raylet", "ray::", "ray/_private")):
            found.add(int(entry.name))
    return found


def _expected_rows(xs: list[int]) -> list[dict]:
    rows = []
    for x in xs:
        a = x + 1
        rows.append({"a": a, "q": a // 3, "r": a % 3, "sq": a * a, "ys": [3 * v for v in range(a)]})
    return rows


def test_ray_runner_gives_the_local_rows_events_and_cache(tmp_path):
    before = _ray_processes()
    script = tmp_path / "on_ray.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "DAFT_PROGRESS_BAR": "0", "RAY_USAGE_STATS_ENABLED": "0"}
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        timeout=540,
        env=env,
        cwd=tmp_path,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-5000:]
    seen = json.loads(lines[-1][len("RESULT ") :])

    xs = list(range(12))
    assert seen["rows"] == _expected_rows(xs)
    assert seen["cached_rows"] == _expected_rows(xs)
    assert seen["driver"] not in seen["pids"]  # the nodes ran in Ray's worker processes
    # every node and item event came back to the caller's callbacks, nested maps' too
    assert seen["events"] == seen["reference_events"]
    inner = [e for e in seen["events"] if e[0] == "triple"]
    assert len(inner) == sum(x + 1 for x in xs)
    # a node error keeps its type and says where
    assert seen["error"] == [
        "'forty'",
        ["hypernodes: raised by node 'triple' of pipeline p[item 1] > each[item 40]; inputs: v=40"],
    ]
    assert seen["tolerant"] == [{"sq": 4, "ys": [0, 3]}, {"sq": 2116, "ys": "ItemError"}]
    assert seen["run"] == {"a": 3, "sq": 9}
    # Ray stayed on the loopback interface, and the engine stopped the Ray it started
    assert all(address.startswith("127.0.0.1") for address in seen["addresses"])
    assert seen["ray_after_shutdown"] is False
    # Daft's Ray runner cannot move to a new Ray: using the engine again says so
    assert seen["after_shutdown"][0] == "ExecutorError"
    assert "stopped by shutdown()" in seen["after_shutdown"][1]
    # the local engine found in the DiskCache what the Ray workers wrote for the first stage
    assert not [e for e in seen["local_node_ends"] if e[0] in ("add_one", "split")]

    deadline = time.monotonic() + 60
    while (left := _ray_processes() - before) and time.monotonic() < deadline:
        time.sleep(1)
    assert not left, f"Ray processes left running: {sorted(left)}"
