"""Running coroutines from synchronous code, also when the caller already has a running event loop."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any

_local = threading.local()


class _OwnedRunner(asyncio.Runner):
    """This thread's reusable loop, closed when the thread ends (its thread-local storage is
    cleared then), so pool threads that exit leave no open event loop behind."""

    def __del__(self) -> None:
        loop = getattr(self, "_loop", None)
        if loop is None or loop.is_closed() or loop.is_running():
            return
        with contextlib.suppress(BaseException):
            if asyncio._get_running_loop() is not None:
                loop.close()  # collected on another loop's thread: nothing can be awaited here
            else:
                self.close()


def _thread_runner() -> asyncio.Runner:
    runner = getattr(_local, "runner", None)
    if runner is None:
        # One loop per thread, reused: async nodes that keep loop-bound clients keep working.
        runner = _local.runner = _OwnedRunner()
    return runner


def run_sync(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coro`` to completion and return its result, from any synchronous context.

    With no loop running in this thread, the coroutine runs on this thread's own reusable loop.
    Inside a running loop (a notebook cell, an ``async def`` caller) blocking that loop would
    deadlock, so the coroutine runs on a fresh thread with its own loop while this thread waits.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        runner = _thread_runner()
        try:
            return runner.run(coro)
        except (KeyboardInterrupt, SystemExit):
            # Raised inside a task, these leave the loop mid-step with that run's tasks still on
            # it, to raise again in the next run: start the next run on a fresh loop.
            _local.runner = None
            with contextlib.suppress(BaseException):
                runner.close()
            raise
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="hypernodes-async-bridge", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]
