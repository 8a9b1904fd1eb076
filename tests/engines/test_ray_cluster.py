"""RayEngine against a separate `ray start --head`, in a module of its own.

`ray stop --force`, which the head's script runs at the end, stops every Ray process on the
machine: the in-process Ray of ``test_ray_engine.py``'s fixture must be gone before it runs, so
this test cannot share that module.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="RayEngine needs ray: pip install 'hypernodes[ray]'")

from ray_support import ray_processes as _ray_processes

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]


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
