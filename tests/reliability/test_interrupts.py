"""Ctrl-C keeps what is done and lets the program end (issue 23, "Wrong or lost results").

- ``kill -INT <parent pid>`` (what Jupyter's "interrupt" sends: the kernel only, not its worker
  processes) during a ``"parallel"`` map with a ``DiskCache`` stores the items the workers
  finished before the signal;
- Ctrl-C during a threaded map whose item never returns lets the interpreter exit at once,
  instead of waiting at exit for the stuck thread.

Both run a real child process and send it a real ``SIGINT``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import hypernodes

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT to a child process (POSIX)"),
]


def _env(**extra: str) -> dict[str, str]:
    """The environment of a child process: this checkout's hypernodes first on its path."""
    src = str(Path(hypernodes.__file__).resolve().parents[1])
    env = {**os.environ, **extra}
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    return env


PARALLEL_CHILD = """
import os, sys, time
from pathlib import Path
from hypernodes import DiskCache, HypernodesEngine, Pipeline, node

@node(output_name="y")
def work(x: int) -> int:
    time.sleep(0.3)
    Path(os.environ["HN_MARKS"], f"{x}-{os.environ['HN_ROUND']}").write_text("")
    return x * 2

executor = sys.argv[2]
engine = HypernodesEngine(map_executor=executor, max_workers=2)
pipeline = Pipeline([work], engine=engine, cache=DiskCache(sys.argv[1]))
print("ready", flush=True)
try:
    rows = pipeline.map({"x": list(range(60))}, map_over="x")
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(1)
print("finished", rows[-1], flush=True)
"""


def _child(script: Path, env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _finish(child: subprocess.Popen, limit: float) -> tuple[str, str]:
    try:
        return child.communicate(timeout=limit)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()


def test_sigint_to_the_parent_of_a_parallel_map_keeps_the_finished_items(tmp_path):
    script = tmp_path / "parallel_map.py"
    script.write_text(textwrap.dedent(PARALLEL_CHILD))
    marks = tmp_path / "marks"
    marks.mkdir()
    env = _env(HN_MARKS=str(marks), HN_ROUND="1")
    cache = str(tmp_path / "cache")
    child = _child(script, env, cache, "parallel")
    try:
        assert child.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 60
        while len(list(marks.iterdir())) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGINT)  # the parent only, as Jupyter's interrupt does
        out, err = _finish(child, 60)
    finally:
        if child.poll() is None:
            child.kill()
    assert "interrupted" in out, err
    done = {int(p.name.split("-")[0]) for p in marks.iterdir()}
    assert 5 <= len(done) < 60

    # The same map again, one item after the other: every item finished before the signal is
    # a cache hit (its function does not run again).
    env["HN_ROUND"] = "2"
    again = _child(script, env, cache, "sequential")
    assert again.stdout.readline().strip() == "ready"
    out, err = _finish(again, 120)
    assert "finished {'y': 118}" in out, err
    recomputed = {int(p.name.split("-")[0]) for p in marks.glob("*-2")}
    assert not (done & recomputed), f"finished before SIGINT but not stored: {done & recomputed}"
    assert recomputed == set(range(60)) - done


STUCK_CHILD = """
import sys, threading
from hypernodes import HypernodesEngine, Pipeline, node

@node(output_name="y")
def stuck(x: int) -> int:
    if x == 0:
        print("started", flush=True)
        threading.Event().wait()  # never returns
    return x

engine = HypernodesEngine(map_executor=sys.argv[1], max_workers=2)
try:
    if sys.argv[2] == "with":
        with engine:
            Pipeline([stuck], engine=engine).map({"x": list(range(4))}, map_over="x")
    else:
        Pipeline([stuck], engine=engine).map({"x": list(range(4))}, map_over="x")
except KeyboardInterrupt:
    print("interrupted", flush=True)
    raise
"""


@pytest.mark.parametrize("executor", ["threaded", "async"])
@pytest.mark.parametrize("scope", ["with", "plain"])
def test_ctrl_c_in_a_map_whose_item_never_returns_exits_promptly(executor, scope, tmp_path):
    script = tmp_path / "stuck_map.py"
    script.write_text(textwrap.dedent(STUCK_CHILD))
    child = _child(script, _env(), executor, scope)
    try:
        assert child.stdout.readline().strip() == "started"
        time.sleep(0.3)
        child.send_signal(signal.SIGINT)
        sent = time.monotonic()
        out, err = _finish(child, 30)
        took = time.monotonic() - sent
    finally:
        if child.poll() is None:
            child.kill()
    assert "interrupted" in out, err
    assert "KeyboardInterrupt" in err
    assert child.returncode not in (0, -signal.SIGKILL)
    assert took < 10, f"the interpreter took {took:.1f} s to exit after Ctrl-C"
