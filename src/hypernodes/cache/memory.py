"""``MemoryCache``: a cache in this process's memory, for notebooks and tests."""

from __future__ import annotations

import itertools
import pickle
import threading
from collections.abc import Sequence
from typing import Any

from ..model.checks import check_whole
from .base import CacheWriteError

# Immutable atoms are stored as they are; anything else as a pickled private copy, so that a node
# mutating a value it received cannot change what the cache holds.
_IMMUTABLE = frozenset({int, float, complex, str, bytes, bool, type(None)})


_ABSENT: Any = object()


class _Pickled(bytes):
    """A stored pickled copy (distinguishes a stored copy from a stored ``bytes`` value)."""

    __slots__ = ()


class _ByReference:
    """A value that cannot be pickled, kept by reference (it must not be mutated afterwards)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class MemoryCache:
    """Node results kept in memory for the life of this object.

    Values are stored as private pickled copies (immutable atoms as they are), so later mutation
    of a returned object does not leak into the cache.  A value that cannot be pickled is kept by
    reference instead.  ``max_entries`` bounds the size (oldest entries go first); ``None`` keeps
    everything.  Safe to share between threads.  When a map runs in worker processes, each
    worker gets a snapshot and its new entries are sent back with ``export_writes`` /
    ``import_writes``.
    """

    def __init__(self, max_entries: int | None = None) -> None:
        self.max_entries = check_whole(max_entries, "max_entries", "MemoryCache")
        self._data: dict[bytes, Any] = {}
        self._lock = threading.Lock()
        self._journal: list[tuple[bytes, Any]] | None = None
        #: what ``explain_cache`` reads (see :mod:`hypernodes.cache.explain`); not entries
        self._records: dict[bytes, Any] = {}
        #: how many times :meth:`clear` ran (explain's records are written again after one)
        self.records_epoch = 0

    def put_record(self, key: bytes, value: Any) -> None:
        """Keep ``value`` (a small record of what a node's key is made of) under ``key``."""
        self._records[key] = value

    def get_record(self, key: bytes) -> Any:
        """The record under ``key``, or ``None``."""
        return self._records.get(key)

    def get_many(self, keys: Sequence[bytes]) -> dict[bytes, Any]:
        """The stored values for those of ``keys`` that are present."""
        data = self._data
        found: dict[bytes, Any] = {}
        for key in keys:
            # One lookup: a second one (``key in data``) could see an entry another thread
            # stored meanwhile and return None for it.
            stored = data.get(key, _ABSENT)
            if stored is _ABSENT:
                continue
            kind = type(stored)
            if kind is _Pickled:
                found[key] = pickle.loads(stored)
            elif kind is _ByReference:
                found[key] = stored.value
            else:
                found[key] = stored
        return found

    def set(self, key: bytes, value: Any) -> None:
        """Store ``value`` under ``key``."""
        if type(value) in _IMMUTABLE:
            if self._journal is None and self.max_entries is None:
                self._data[key] = value
                return
            stored: Any = value
        else:
            try:
                stored = _Pickled(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
            except Exception:
                stored = _ByReference(value)
        self._put(key, stored)

    def _put(self, key: bytes, stored: Any) -> None:
        # Under the lock: eviction iterates the dict, which must not change size meanwhile, and
        # the journal is swapped out by export_writes.  (The unbounded, journal-free fast path
        # in ``set`` is one dict store, atomic on its own.)
        local = type(stored) is _ByReference
        with self._lock:
            data = self._data
            data[key] = stored
            journal = self._journal
            if journal is not None and not local:
                journal.append((key, stored))
            limit = self.max_entries
            if limit is not None and len(data) > limit:
                for old in list(itertools.islice(iter(data), len(data) - limit)):
                    del data[old]
        if local and journal is not None:
            raise CacheWriteError("a value that cannot be pickled cannot leave this process")

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._data.clear()
            self._records.clear()
            self.records_epoch += 1

    def __len__(self) -> int:
        return len(self._data)

    def size_bytes(self) -> int:
        """Approximate bytes held by pickled copies (atoms and references count as 0)."""
        return sum(len(v) for v in list(self._data.values()) if type(v) is _Pickled)

    def export_writes(self) -> list[tuple[bytes, Any]]:
        """Entries written since this copy was unpickled in a worker (and forget them)."""
        with self._lock:
            journal, self._journal = self._journal or [], [] if self._journal is not None else None
        return journal

    def import_writes(self, entries: list[tuple[bytes, Any]]) -> None:
        """Add entries a worker exported."""
        for key, stored in entries:
            self._put(key, stored)

    def __getstate__(self) -> dict[str, Any]:
        with self._lock:
            items = list(self._data.items())
        entries = {k: v for k, v in items if type(v) is not _ByReference}
        return {"max_entries": self.max_entries, "data": entries}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.max_entries = state["max_entries"]
        self._data = dict(state["data"])
        self._lock = threading.Lock()
        self._journal = []  # a copy in another process: remember what it writes
        self._records = {}
        self.records_epoch = 0

    def __repr__(self) -> str:
        return f"MemoryCache({len(self._data)} entries)"
