"""The store protocol every cache implements, the on-disk entry format and cache warnings."""

from __future__ import annotations

import hashlib
import hmac
import pickle
import socket
import threading
import warnings
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from ..exceptions import HyperNodesError


class CacheWarning(UserWarning):
    """Something made a result uncached (unhashable input, unpicklable output, corrupt entry,
    a cache that cannot be read or written)."""


class CacheTimeout(HyperNodesError, TimeoutError):
    """Another process held a ``DiskCache``'s database lock longer than its ``timeout``."""


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
# Entry format: magic, 16-byte keyed BLAKE2b tag of (cache key, payload), pickle payload.
# The tag is a MAC: only a holder of the secret key can make an entry that verifies, so a row
# written by anyone else (or for another key, or torn, or flipped) is refused before unpickling.

_MAGIC = b"HN2"
_TAG = 16
_HEADER = len(_MAGIC) + _TAG


class EntrySigner:
    """Signs and verifies entries with a secret (any length, at least 16 bytes recommended)."""

    __slots__ = ("_base", "_by_length")

    def __init__(self, secret: bytes) -> None:
        # BLAKE2b keys are at most 64 bytes: derive one of fixed size from the secret.
        derived = hashlib.blake2b(secret, digest_size=32, person=b"hypernodes-cache").digest()
        self._base = hashlib.blake2b(key=derived, digest_size=_TAG)
        #: key length -> keyed state that has absorbed that length (keys are all one length)
        self._by_length: dict[int, Any] = {}

    def tag(self, key: bytes, payload: bytes | memoryview) -> bytes:
        """The MAC of ``len(key)``, ``key`` and ``payload``; a prepared keyed state is copied."""
        state = self._by_length.get(len(key))
        if state is None:
            state = self._base.copy()
            state.update(len(key).to_bytes(4, "big"))
            self._by_length[len(key)] = state
        mac = state.copy()
        mac.update(key)
        mac.update(payload)
        return mac.digest()


def dump_entry(value: Any, signer: EntrySigner, key: bytes) -> bytes:
    """Pickle ``value`` into an authenticated entry for ``key``; raises :class:`CacheWriteError`."""
    try:
        payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # pickling raises all sorts: TypeError, PicklingError, AttributeError
        raise CacheWriteError(f"cannot pickle a {type(value).__name__}: {exc}") from exc
    return _MAGIC + signer.tag(key, payload) + payload


def load_entry(blob: Any, signer: EntrySigner, key: bytes) -> Any:
    """The value in an entry made by :func:`dump_entry` for ``key``; raises :class:`CorruptEntry`.

    Nothing is unpickled unless the tag verifies.
    """
    if type(blob) is not bytes:
        if not isinstance(blob, bytes | bytearray | memoryview):
            raise CorruptEntry(f"entry is a {type(blob).__name__}, not bytes")
        blob = bytes(blob)
    if len(blob) < _HEADER or not blob.startswith(_MAGIC):
        raise CorruptEntry("entry is truncated or has no header (or an older format)")
    payload = memoryview(blob)[_HEADER:]  # no copy
    if not hmac.compare_digest(signer.tag(key, payload), blob[len(_MAGIC) : _HEADER]):
        raise CorruptEntry(
            "checksum/authentication failed: truncated, corrupted, or written without this "
            "cache's key"
        )
    try:
        return pickle.loads(payload)
    except Exception as exc:
        raise CorruptEntry(f"cannot unpickle: {exc}") from exc


def refused_entry_message(owner: str, exc: CorruptEntry) -> str:
    """The warning for an entry that does not verify: most often one written with another key
    (another machine or user), so say that and how to share one."""
    if "authentication failed" in str(exc):
        return (
            f"{owner}: dropping a corrupt entry ({exc}); it will be recomputed. Most often it "
            "was written with a different key: every process and machine sharing a cache must "
            "use the same key (pass key=..., set $HYPERNODES_CACHE_KEY for FsspecCache, or "
            "point key_file= at one shared key file)"
        )
    return f"{owner}: dropping a corrupt entry ({exc}); it will be recomputed"


def where() -> str:
    """Where this process runs, for messages from workers: ``on host <name>`` (the host, not
    the process: the workers of one machine give one warning between them)."""
    return f"on host {socket.gethostname()}"


# ---------------------------------------------------------------------------------------------
# Warnings: once per (subject, detail) per process

_warned: set[tuple[Any, ...]] = set()
_warned_lock = threading.Lock()


#: in a worker process: warnings kept to be sent back to the caller (see ``collect_warnings``)
_collected: list[str] | None = None


def warn_once(key: tuple[Any, ...], message: str) -> None:
    """Issue ``message`` as a :class:`CacheWarning` the first time ``key`` is seen."""
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
        if _collected is not None:
            _collected.append(message)
    warnings.warn(message, CacheWarning, stacklevel=3)


def collect_warnings() -> None:
    """In a worker process: also keep the cache warnings issued from now on, for the caller."""
    global _collected
    with _warned_lock:
        if _collected is None:
            _collected = []


def drain_warnings() -> list[str]:
    """The warnings kept since the last drain (see :func:`collect_warnings`)."""
    global _collected
    with _warned_lock:
        if not _collected:
            return []
        kept, _collected = _collected, []
        return kept


def relay_warnings(messages: list[str]) -> None:
    """Issue, once each in this process, cache warnings sent back by worker processes."""
    for message in messages:
        warn_once(("relayed", message), f"{message} (in a worker process)")
