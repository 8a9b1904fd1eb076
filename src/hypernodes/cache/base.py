"""The store protocol every cache implements, the on-disk entry format and cache warnings."""

from __future__ import annotations

import pickle
import threading
import warnings
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import xxhash

_digest_of = xxhash.xxh3_128_digest


class CacheWarning(UserWarning):
    """Something made a result uncached (unhashable input, unpicklable output, corrupt entry)."""


class CacheWriteError(Exception):
    """A value could not be stored (it cannot be pickled, or the store refused it)."""


class CorruptEntry(Exception):
    """A stored entry failed its checksum or could not be unpickled."""


@runtime_checkable
class Cache(Protocol):
    """A content-addressed store: keys are signatures (bytes), values are node outputs.

    Keys never change meaning, so a store may keep or drop entries at will; it must never return
    a value for a key other than the one stored under it.  ``get_many`` returns the entries it
    has (a corrupt one is dropped with a :class:`CacheWarning`, i.e. treated as a miss); ``set``
    raises :class:`CacheWriteError` for a value it cannot store.  Stores are shared by threads,
    and ``export_writes``/``import_writes`` carry entries written in a worker process back to the
    parent's store for stores that do not share state across processes by themselves.
    """

    def get_many(self, keys: Sequence[bytes]) -> dict[bytes, Any]: ...

    def set(self, key: bytes, value: Any) -> None: ...

    def clear(self) -> None: ...

    def __len__(self) -> int: ...

    def export_writes(self) -> list[tuple[bytes, Any]]: ...

    def import_writes(self, entries: list[tuple[bytes, Any]]) -> None: ...


# ---------------------------------------------------------------------------------------------
# Entry format: magic, 16-byte xxh3-128 checksum of the payload, pickle payload.

_MAGIC = b"HN1"
_HEADER = len(_MAGIC) + 16


def dump_entry(value: Any) -> bytes:
    """Pickle ``value`` into a checksummed entry; raises :class:`CacheWriteError`."""
    try:
        payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # pickling raises all sorts: TypeError, PicklingError, AttributeError
        raise CacheWriteError(f"cannot pickle a {type(value).__name__}: {exc}") from exc
    return _MAGIC + _digest_of(payload) + payload


def load_entry(blob: Any) -> Any:
    """The value in an entry made by :func:`dump_entry`; raises :class:`CorruptEntry`."""
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise CorruptEntry(f"entry is a {type(blob).__name__}, not bytes")
    blob = bytes(blob)
    if len(blob) < _HEADER or blob[: len(_MAGIC)] != _MAGIC:
        raise CorruptEntry("entry is truncated or has no header")
    payload = blob[_HEADER:]
    if _digest_of(payload) != blob[len(_MAGIC) : _HEADER]:
        raise CorruptEntry("checksum mismatch (truncated or corrupted)")
    try:
        return pickle.loads(payload)
    except Exception as exc:
        raise CorruptEntry(f"cannot unpickle: {exc}") from exc


# ---------------------------------------------------------------------------------------------
# Warnings: once per (subject, detail) per process

_warned: set[tuple[Any, ...]] = set()
_warned_lock = threading.Lock()


def warn_once(key: tuple[Any, ...], message: str) -> None:
    """Issue ``message`` as a :class:`CacheWarning` the first time ``key`` is seen."""
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    warnings.warn(message, CacheWarning, stacklevel=3)
