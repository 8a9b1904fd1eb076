"""A thread pool whose threads never hold up the interpreter's exit.

The standard library's ``ThreadPoolExecutor`` joins its threads when the interpreter exits.
After Ctrl-C in a map whose item never returns (a hung request, a ``wait()`` without a
timeout), the ``KeyboardInterrupt`` reaches the caller, and then the program hangs at exit
waiting for that thread.  The executors' threads are therefore daemon threads: a program that
ends, or is interrupted, ends at once.  Nothing is lost by that, because a map only returns when
all its items are done; only work a caller has already abandoned is stopped with the process.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

_STOP = None  # the sentinel a worker thread stops at


class DaemonPool(Executor):
    """A ``concurrent.futures`` executor of at most ``max_workers`` daemon threads, started as
    work arrives; each runs ``initializer(*initargs)`` first."""

    def __init__(
        self,
        max_workers: int,
        thread_name_prefix: str,
        initializer: Callable[..., Any] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> None:
        self._max_workers = max_workers
        self._prefix = thread_name_prefix
        self._initializer = initializer
        self._initargs = initargs
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._closed = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Run ``fn(*args, **kwargs)`` in one of the threads; its future."""
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new work after the pool was shut down")
            future: Future = Future()
            self._queue.put((future, fn, args, kwargs))
            if not self._idle.acquire(blocking=False) and len(self._threads) < self._max_workers:
                thread = threading.Thread(
                    target=self._work, name=f"{self._prefix}_{len(self._threads)}", daemon=True
                )
                thread.start()
                self._threads.append(thread)
        return future

    def _work(self) -> None:
        if self._initializer is not None:
            self._initializer(*self._initargs)
        while True:
            task = self._queue.get()
            if task is _STOP:
                return
            future, fn, args, kwargs = task
            del task
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:  # handed to whoever waits on the future
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            del future, fn, args, kwargs
            self._idle.release()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking work; with ``cancel_futures`` drop what has not started; with ``wait``
        join the threads (after the work they run ends)."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        if cancel_futures:
            self._drain()
        for _ in threads:
            self._queue.put(_STOP)
        if wait:
            for thread in threads:
                thread.join()

    def _drain(self) -> None:
        while True:
            try:
                task = self._queue.get_nowait()
            except queue.Empty:
                return
            if task is not _STOP:
                task[0].cancel()
