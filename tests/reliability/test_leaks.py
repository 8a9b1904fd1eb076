"""Nothing leaked: dropped engines release their worker processes, workers die with a killed
parent, and pool threads leave no event loop open.  Real processes and real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.timeout(120)

SRC = str(Path(__file__).resolve().parents[2] / "src")


def python(code: str, *args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def test_dropped_parallel_engines_release_their_workers():
    child = python(
        """
        import gc, time, psutil
        from hypernodes import HypernodesEngine, Pipeline, node

        @node(output_name="y")
        def add_one(x):
            return x + 1

        if __name__ == "__main__":
            for _ in range(6):
                engine = HypernodesEngine(map_executor="parallel", max_workers=2)
                Pipeline([add_one], engine=engine).map({"x": range(20)}, map_over="x")
                del engine  # no shutdown(): the engine is dropped
            gc.collect()
            deadline = time.time() + 10
            while time.time() < deadline:
                alive = [p for p in psutil.Process().children(recursive=True) if p.is_running()]
                if len(alive) <= 4:
                    break
                time.sleep(0.2)
            print(len(alive))
        """
    )
    out, err = child.communicate(timeout=100)
    assert child.returncode == 0, err
    assert int(out.split()[-1]) <= 4  # at most 2 x workers, where 6 pools were started


def test_workers_die_soon_after_their_parent_is_killed():
    child = python(
        """
        import os, sys, time
        from hypernodes import HypernodesEngine, Pipeline, node

        @node(output_name="y")
        def slow(x):
            print(os.getpid(), flush=True)
            time.sleep(60)
            return x

        if __name__ == "__main__":
            print("parent", os.getpid(), flush=True)
            engine = HypernodesEngine(map_executor="parallel", max_workers=2)
            Pipeline([slow], engine=engine).map({"x": range(4)}, map_over="x")
        """
    )
    assert child.stdout is not None
    assert child.stdout.readline().startswith("parent")
    workers = {int(child.stdout.readline()) for _ in range(2)}
    assert all(psutil.pid_exists(pid) for pid in workers)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    deadline = time.time() + 10
    alive = workers
    while time.time() < deadline and alive:
        alive = {pid for pid in alive if _running(pid)}
        time.sleep(0.2)
    assert not alive, f"worker processes {alive} outlived their killed parent"


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_pool_threads_leave_no_event_loop_open():
    # A threaded node executor under an async map with a nested map used to leave one open loop
    # per pool thread (file descriptors, ResourceWarnings) until garbage collection.
    child = python(
        """
        import asyncio, gc, psutil, warnings
        warnings.simplefilter("error", ResourceWarning)
        from hypernodes import HypernodesEngine, Pipeline, node

        @node(output_name="y")
        async def later(x):
            await asyncio.sleep(0)
            return x + 1

        @node(output_name="z")
        def plus(x):
            return x

        inner = Pipeline([later, plus], name="inner").as_node(
            input_mapping={"xs": "x"}, output_mapping={"y": "ys"}, map_over="xs"
        )

        @node(output_name="xs")
        def spread(n):
            return list(range(n))

        if __name__ == "__main__":
            before = None
            for _ in range(4):
                if before is None and _ == 1:  # after the caller's own loop exists
                    before = psutil.Process().num_fds()
                with HypernodesEngine(node_executor="threaded", map_executor="async") as engine:
                    outer = Pipeline([spread, inner], engine=engine)
                    rows = outer.map({"n": [3] * 20}, map_over="n")
                    assert rows[0]["ys"] == [1, 2, 3]
            gc.collect()
            print(psutil.Process().num_fds() - before)
        """,
    )
    out, err = child.communicate(timeout=100)
    assert child.returncode == 0, err
    assert "ResourceWarning" not in err, err
    assert int(out.split()[-1]) <= 0, f"{out.split()[-1]} file descriptors left open"
