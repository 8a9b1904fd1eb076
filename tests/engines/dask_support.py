"""Nodes and process checks for the DaskEngine tests.

The nodes live in an importable module (as a user's would) so that Dask workers import them by
reference; this module imports nothing heavy, since every worker imports it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Any

from hypernodes import Pipeline, node


@node(output_name="pid")
def pid_of(x: int) -> int:
    return os.getpid()


@node(output_name="xs")
def fan_out(x: int) -> list[int]:
    return [x, x + 1, x + 2]


@node(output_name="owner")
def owner_pid(x: int) -> int:
    return os.getpid()


def inner_pids() -> Any:
    """A nested map over ``xs`` whose items report the process they ran in."""
    return Pipeline([pid_of], name="inner").as_node(
        input_mapping={"xs": "x"}, output_mapping={"pid": "inner_pids"}, map_over="xs"
    )


@node(output_name="slept")
def stall_once_on(x: int, stall: int, marker: str) -> int:
    """The first time item ``stall`` runs, it writes its process id to ``marker`` and waits to be
    killed; run again, it returns."""
    if x == stall and not Path(marker).exists():
        partial = Path(marker + ".part")
        partial.write_text(str(os.getpid()))
        partial.replace(marker)
        time.sleep(60)
    return x


@node(output_name="survived")
def crash_on(x: int, victim: int) -> int:
    """Item ``victim`` kills the worker process running it, every time."""
    if x == victim:
        os.kill(os.getpid(), signal.SIGKILL)
    return x


@node(output_name="kept")
def cancel_own_task_on(x: int, victim: int) -> int:
    """Item ``victim`` has the scheduler cancel the Dask task running it, as a lost scheduler
    connection or a closed cluster would."""
    if x == victim:
        from distributed import Future, get_client, get_worker

        client = get_client()
        client.cancel([Future(get_worker().get_current_task(), client)], force=True)
        time.sleep(0.5)
    return x


_ATTEMPTS: dict[int, int] = {}


@node(output_name="steady", retries=2)
def flaky(x: int) -> int:
    """Fails the first two times each item runs in a worker process, then succeeds."""
    _ATTEMPTS[x] = _ATTEMPTS.get(x, 0) + 1
    if _ATTEMPTS[x] <= 2:
        raise ConnectionError(f"attempt {_ATTEMPTS[x]} of item {x}")
    return x


@node(output_name="late", timeout=0.2)
def too_slow(x: int) -> int:
    if x == 3:
        time.sleep(2)
    return x


# ---------------------------------------------------------------------------------------------
# Processes


def _is_resource_tracker(process: Any) -> bool:
    try:
        return any("resource_tracker" in part for part in process.cmdline())
    except Exception:  # gone meanwhile
        return False


def child_pids() -> set[int]:
    """Live descendants of this process, without multiprocessing's resource tracker (which lives
    until the interpreter exits)."""
    import psutil

    found = set()
    for process in psutil.Process().children(recursive=True):
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                _reap(process.pid)
                continue
        except psutil.NoSuchProcess:
            continue
        if not _is_resource_tracker(process):
            found.add(process.pid)
    return found


def still_running(pids: set[int], within: float = 15.0) -> set[int]:
    """The processes of ``pids`` still running after up to ``within`` seconds (zombies reaped)."""
    import psutil

    deadline = time.monotonic() + within
    while True:
        alive = set()
        for pid in pids:
            try:
                if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                    _reap(pid)
                else:
                    alive.add(pid)
            except psutil.NoSuchProcess:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def worker_pids(client: Any) -> set[int]:
    """The process ids of a cluster's workers."""
    return set(client.run(os.getpid).values())
