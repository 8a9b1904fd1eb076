"""Fault injection for the cache reliability tests: a process holding the database lock, a full
file system, and the cache warnings a run raised.

The fixtures (``small_disk``, a real 2 MiB tmpfs; ``fresh_cache_warnings``) are in tests/conftest.py."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import textwrap

import pytest

from hypernodes.cache import base

_HOLD_LOCK = textwrap.dedent(
    """
    import sqlite3, sys, time
    con = sqlite3.connect(sys.argv[1], isolation_level=None)
    con.execute("BEGIN EXCLUSIVE")
    print("locked", flush=True)
    time.sleep(120)
    """
)


class LockHolder:
    """Another process that holds an exclusive SQLite lock on ``db`` until :meth:`release`."""

    def __init__(self, db: pathlib.Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _HOLD_LOCK, str(db)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if line.strip() != "locked":
            self.release()
            raise RuntimeError(f"the lock holder did not start: {self.proc.stderr.read()}")  # type: ignore[union-attr]

    def release(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=30)

    def __enter__(self) -> LockHolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def cache_messages(record: list[pytest.WarningsRecorder] | object) -> list[str]:
    """The messages of the CacheWarnings in a ``pytest.warns``/``recwarn`` record."""
    return [str(w.message) for w in record if issubclass(w.category, base.CacheWarning)]  # type: ignore[attr-defined]


def fill_disk(folder: pathlib.Path) -> None:
    """Write a file in ``folder`` until its file system is full."""
    with open(folder / "filler", "wb", buffering=0) as f:
        try:
            while f.write(b"\0" * 65536):
                pass
        except OSError:
            pass
