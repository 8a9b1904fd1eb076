"""A node's timeout cannot be swallowed by the node, and its options are checked (issue 23).

The timeout's interrupt is raised inside the node's call; a node that wraps its work in
``try: ... except Exception:`` (a retry loop, a "best effort" step) used to catch it and carry on
past the limit.  It is now a ``BaseException`` inside the node, as asyncio's cancellation is, and
becomes :class:`NodeTimeoutError` at the call's boundary.

The alarm interrupts only a process's main thread when no other interval timer is set, so the
checks run where that holds: a child process (a sequential run) and ``"parallel"`` workers
(pytest-timeout keeps the test process's own timer busy).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import hypernodes
from hypernodes import HypernodesEngine, ItemError, Pipeline, node
from hypernodes.exceptions import InvalidNodeError, NodeTimeoutError

pytestmark = pytest.mark.timeout(120)


@node(output_name="y", timeout=0.3)
def swallows(x: int) -> int:
    for _ in range(3):
        try:
            time.sleep(1)
        except Exception:  # what a careless retry loop does
            continue
    return x


def _env(**extra: str) -> dict[str, str]:
    """The environment of a child process: this checkout's hypernodes first on its path."""
    src = str(Path(hypernodes.__file__).resolve().parents[1])
    env = {**os.environ, **extra}
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    return env


CHILD = """
import time
from hypernodes import Pipeline, node
from hypernodes.exceptions import NodeTimeoutError

@node(output_name="y", timeout=0.3)
def swallows(x):
    for _ in range(3):
        try:
            time.sleep(1)
        except Exception:
            continue
    return x

@node(output_name="y", timeout=0.3)
def bare(x):
    try:
        time.sleep(1)
    except BaseException:  # catches even the interrupt: the late result is still refused
        pass
    return x

for fn in (swallows, bare):
    start = time.perf_counter()
    try:
        Pipeline([fn]).run({"x": 1})
        print(fn.name, "returned", round(time.perf_counter() - start, 1))
    except NodeTimeoutError as exc:
        print(fn.name, "timed out", round(time.perf_counter() - start, 1), exc)
"""


def test_a_node_catching_exception_cannot_swallow_its_timeout(tmp_path):
    script = tmp_path / "swallow.py"
    script.write_text(textwrap.dedent(CHILD))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("swallows timed out 0.3"), lines
    assert "node 'swallows' ran longer than its timeout of 0.3 s" in lines[0]
    assert lines[1].startswith("bare timed out"), lines


def test_a_parallel_worker_does_not_let_the_node_swallow_its_timeout():
    with HypernodesEngine(map_executor="parallel", max_workers=1) as engine:
        rows = Pipeline([swallows], engine=engine).map(
            {"x": [1, 2]}, map_over="x", on_error="continue"
        )
    for row in rows:  # before, the node swallowed the timeout and returned x after 3 s
        assert isinstance(row["y"], ItemError), row
        assert isinstance(row["y"].exception, NodeTimeoutError)


@pytest.mark.parametrize("limit", [math.nan, math.inf, -math.inf])
def test_a_timeout_must_be_finite(limit):
    with pytest.raises(InvalidNodeError, match=r"timeout must be a finite number > 0 \(None"):
        node(output_name="y", timeout=limit)(lambda x: x)


@pytest.mark.parametrize("option", ["retry_delay", "backoff"])
def test_delays_must_be_finite(option):
    with pytest.raises(InvalidNodeError, match=f"{option} must be a finite number"):
        node(output_name="y", **{option: math.nan})(lambda x: x)


@pytest.mark.parametrize("value", ["false", "no", 0, 1, None])
def test_cache_must_be_a_bool(value):
    with pytest.raises(InvalidNodeError, match=r"node 'f': cache must be True or False, got"):

        @node(output_name="y", cache=value)
        def f(x):
            return x


@pytest.mark.parametrize("value", [5, "", b"name"])
def test_a_node_name_must_be_a_non_empty_string(value):
    with pytest.raises(InvalidNodeError, match="node of function 'f': name must be a non-empty"):

        @node(output_name="y", name=value)
        def f(x):
            return x


def test_cache_version_of_an_unhashable_kind_names_the_node():
    with pytest.raises(InvalidNodeError, match=r"node 'f': cache_version must be a string or"):

        @node(output_name="y", cache_version=object())
        def f(x):
            return x


@pytest.mark.parametrize("version", ["v2", 3, 1.5, ("a", 1)])
def test_good_cache_versions_are_accepted(version):
    @node(output_name="y", cache_version=version)
    def f(x):
        return x

    assert f.cache_version == version
