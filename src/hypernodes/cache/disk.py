"""``DiskCache``: node results on disk, shared by threads, processes and later runs.

Built on the ``diskcache`` package (SQLite in WAL mode for the index and small values, one file
per large value, written completely before the row that points to it is committed).  Each entry
is a checksummed pickle (see :mod:`hypernodes.cache.base`), so a truncated or corrupted entry is
detected, dropped with a warning and recomputed, never returned.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Sequence
from typing import Any

import diskcache

from ..exceptions import CachePathError
from .base import CacheWriteError, CorruptEntry, dump_entry, load_entry, warn_once

_UNLIMITED = 2**62
_BATCH_SELECT = "SELECT key, mode, filename, value FROM Cache WHERE raw = 1 AND key IN (%s)"


def _check_directory(path: str) -> None:
    """Raise :class:`CachePathError` if ``path``, or the nearest part of it that exists, is a file."""
    found = os.path.abspath(path)
    while not os.path.lexists(found) and os.path.dirname(found) != found:
        found = os.path.dirname(found)
    if os.path.exists(found) and not os.path.isdir(found):
        where = "that path" if found == os.path.abspath(path) else f"{found!r} in that path"
        raise CachePathError(
            f"DiskCache({path!r}): {where} is an existing file, not a directory. DiskCache takes "
            "a directory (created if missing) to keep its index and entries in: give a path that "
            "is a directory or does not exist yet"
        )


class DiskCache:
    """A persistent cache in the directory ``path`` (created if missing).

    Safe for many threads and processes at once: writes are atomic SQLite transactions, so no
    reader sees a half-written entry and concurrent writers lose nothing.  A ``DiskCache`` pickles
    as its settings and reopens the directory in the process that unpickles it, so it can be
    handed to worker processes.  ``size_limit`` (bytes) turns on eviction of the oldest entries;
    by default nothing is evicted.  ``timeout`` is how long to wait for a busy database.
    """

    def __init__(
        self, path: str | os.PathLike[str], size_limit: int | None = None, timeout: float = 60.0
    ) -> None:
        self.path = os.fspath(path)
        _check_directory(self.path)
        self.size_limit = size_limit
        self.timeout = timeout
        self._store: diskcache.Cache | None = None
        self._lock = threading.Lock()
        self._batched = True

    @property
    def store(self) -> diskcache.Cache:
        """The underlying ``diskcache.Cache`` (opened on first use in each process)."""
        store = self._store
        if store is None:
            with self._lock:
                if self._store is None:
                    self._store = self._open()
                store = self._store
        return store

    def _open(self) -> diskcache.Cache:
        settings: dict[str, Any] = {
            "statistics": 0,
            "tag_index": 0,
            "eviction_policy": "none" if self.size_limit is None else "least-recently-stored",
            "size_limit": _UNLIMITED if self.size_limit is None else self.size_limit,
        }
        return diskcache.Cache(self.path, timeout=self.timeout, **settings)

    # -- the store protocol -----------------------------------------------------------------

    def get_many(self, keys: Sequence[bytes]) -> dict[bytes, Any]:
        """The values stored under those of ``keys`` that are present and intact.

        Reads all of ``keys`` in one SQLite query on diskcache's own table (a warm map item then
        costs one round trip, not one per output); falls back on ``diskcache.Cache.get`` per key
        if that table ever looks different.
        """
        store = self.store
        blobs: list[tuple[bytes, Any]] = []
        try:
            if self._batched and len(keys) > 1:
                blobs = self._fetch_batch(store, keys)
            else:
                for key in keys:
                    blob = store.get(key, retry=True)
                    if blob is not None:
                        blobs.append((key, blob))
        except (sqlite3.Error, OSError, diskcache.Timeout) as exc:
            warn_once(
                ("read", self.path, type(exc)),
                f"DiskCache({self.path!r}): read failed, treating it as a miss: {exc}",
            )
        found: dict[bytes, Any] = {}
        for key, blob in blobs:
            try:
                found[key] = load_entry(blob)
            except CorruptEntry as exc:
                warn_once(
                    ("corrupt", self.path, key),
                    f"DiskCache({self.path!r}): dropping a corrupt entry ({exc}); "
                    "it will be recomputed",
                )
                self._discard(key)
        return found

    def _fetch_batch(
        self, store: diskcache.Cache, keys: Sequence[bytes]
    ) -> list[tuple[bytes, Any]]:
        query = _BATCH_SELECT % ",".join("?" * len(keys))
        try:
            rows = store._sql(query, list(keys)).fetchall()
            fetch = store._disk.fetch
        except (AttributeError, sqlite3.OperationalError):  # a diskcache with another layout
            self._batched = False
            return [(k, b) for k in keys if (b := store.get(k, retry=True)) is not None]
        blobs = []
        for key, mode, filename, value in rows:
            try:
                blobs.append((bytes(key), fetch(mode, filename, value, False)))
            except OSError:  # its file was removed after the row was read: a miss
                continue
        return blobs

    def set(self, key: bytes, value: Any) -> None:
        """Store ``value`` under ``key``; raises :class:`CacheWriteError` if it cannot."""
        blob = dump_entry(value)
        try:
            self.store.set(key, blob, retry=True)
        except (sqlite3.Error, OSError, diskcache.Timeout) as exc:
            raise CacheWriteError(f"DiskCache({self.path!r}) could not write: {exc}") from exc

    def _discard(self, key: bytes) -> None:
        with contextlib.suppress(sqlite3.Error, OSError, diskcache.Timeout):
            self.store.delete(key, retry=True)

    def clear(self) -> None:
        """Delete every entry."""
        self.store.clear(retry=True)

    def __len__(self) -> int:
        return len(self.store)

    def volume(self) -> int:
        """Bytes the cache takes on disk (database plus value files)."""
        return int(self.store.volume())

    @property
    def size_bytes(self) -> int:
        """Same as :meth:`volume`."""
        return self.volume()

    def export_writes(self) -> list[tuple[bytes, Any]]:
        """Nothing to relay: every process writes to the shared directory itself."""
        return []

    def import_writes(self, entries: list[tuple[bytes, Any]]) -> None:
        """Nothing to do: see :meth:`export_writes`."""

    def close(self) -> None:
        """Close this process's connections (the cache reopens on next use)."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> DiskCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- pickling: settings only; the child reopens the directory ------------------------------

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "size_limit": self.size_limit, "timeout": self.timeout}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = state["path"]
        self.size_limit = state["size_limit"]
        self.timeout = state["timeout"]
        self._store = None
        self._lock = threading.Lock()
        self._batched = True

    def __repr__(self) -> str:
        return f"DiskCache({self.path!r})"


__all__ = ["CacheWriteError", "DiskCache"]
