"""A real Dask cluster of separate processes: ``dask scheduler`` and ``dask worker``.

Unlike the in-process ``LocalCluster`` fixtures, these run with Dask's default configuration (no
``DASK_*`` variables, an empty config directory: ``allowed-failures`` is 3), each worker in its
own temporary working directory whose ``sys.path`` holds only the library's ``src`` (the tests'
modules cannot be imported there), on 127.0.0.1 and free ports.  Every process starts in a
session of its own, so that :meth:`DaskProcesses.stop` kills each whole process group (the
worker's nanny and the worker it spawns) and checks that none of them is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parents[2] / "src"


def _dask_command() -> list[str]:
    script = Path(sys.executable).parent / "dask"
    return [str(script)] if script.exists() else [sys.executable, "-m", "dask"]


class DaskProcesses:
    """A scheduler and named workers, each a process group started with ``start_new_session``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.groups: dict[str, subprocess.Popen[bytes]] = {}
        config = root / "dask-config"  # empty: Dask's built-in defaults only
        config.mkdir(parents=True, exist_ok=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
        self.env.update(DASK_CONFIG=str(config), PYTHONPATH=str(SRC), PYTHONDONTWRITEBYTECODE="1")
        self.env.pop("PYTHONSTARTUP", None)
        self.address = ""

    def _start(self, name: str, args: list[str]) -> None:
        where = self.root / name
        where.mkdir(parents=True, exist_ok=True)
        log = (where / "log.txt").open("wb")
        self.groups[name] = subprocess.Popen(
            [*_dask_command(), *args],
            cwd=where,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def start_scheduler(self, within: float = 60.0) -> str:
        """Start ``dask scheduler`` on a free loopback port; its address."""
        file = self.root / "scheduler.json"
        self._start(
            "scheduler",
            ["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(file)],
        )  # fmt: skip
        deadline = time.monotonic() + within
        while not file.exists() or not file.read_text().strip():
            self._check_alive("scheduler")
            if time.monotonic() > deadline:
                raise TimeoutError(f"dask scheduler did not start: {self.log('scheduler')}")
            time.sleep(0.1)
        time.sleep(0.1)  # the file is written in one go, but give it a moment
        self.address = json.loads(file.read_text())["address"]
        return self.address

    def start_worker(self, name: str, resources: str | None = None) -> None:
        """Start ``dask worker`` (a nanny and one worker process of one thread) in its own
        directory."""
        args = ["worker", self.address, "--nthreads", "1", "--nworkers", "1", "--host",
                "127.0.0.1", "--no-dashboard", "--name", name,
                "--local-directory", str(self.root / name)]  # fmt: skip
        if resources:
            args += ["--resources", resources]
        self._start(name, args)

    def wait_for_workers(self, client: Any, count: int, within: float = 60.0) -> None:
        deadline = time.monotonic() + within
        while len(client.scheduler_info(n_workers=-1)["workers"]) < count:
            for name in self.groups:
                self._check_alive(name)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{count} dask workers did not join")
            time.sleep(0.1)

    def kill(self, name: str) -> None:
        """Kill a whole process group (a worker and its nanny, or the scheduler) at once."""
        process = self.groups[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def stop(self) -> list[str]:
        """Stop every process group (SIGTERM, then SIGKILL); the processes still left in them."""
        for process in self.groups.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for process in self.groups.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
        for process in self.groups.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        return left_in_groups({process.pid for process in self.groups.values()})

    def log(self, name: str) -> str:
        return (self.root / name / "log.txt").read_text(errors="replace")[-3000:]

    def _check_alive(self, name: str) -> None:
        if self.groups[name].poll() is not None:
            raise RuntimeError(f"dask {name} exited: {self.log(name)}")


def left_in_groups(groups: set[int], within: float = 10.0) -> list[str]:
    """The processes still alive in the process groups ``groups`` after up to ``within`` s."""
    import psutil

    deadline = time.monotonic() + within
    while True:
        left = []
        for process in psutil.process_iter(["pid", "cmdline", "status"]):
            try:
                if process.info["status"] == psutil.STATUS_ZOMBIE:
                    continue
                if os.getpgid(process.pid) in groups:
                    left.append(f"{process.pid}: {' '.join(process.info['cmdline'] or [])}")
            except (ProcessLookupError, psutil.Error):
                continue
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)
