"""``DiskCache``: node results on disk, shared by threads, processes and later runs.

Built on the ``diskcache`` package (SQLite in WAL mode for the index and small values, one file
per large value, written completely before the row that points to it is committed).  Each entry
is a pickle behind a MAC keyed with a secret kept outside the cache directory (see
:mod:`hypernodes.cache.keyfile`), so a truncated, corrupted or forged entry is refused before it
is unpickled, dropped with a warning and recomputed.

A cache never costs the caller its results: an unreadable index is moved aside and rebuilt, a
write that fails (disk full, I/O error) is a warning, and a cache that cannot be opened at all
runs the pipeline uncached.  Only a lock held by another process past ``timeout`` raises
:class:`~hypernodes.cache.base.CacheTimeout`.

Write-behind.  While a run or map is in progress (:meth:`DiskCache.defer`), small entries wait
in memory and are written in one SQLite transaction per batch: when ``FLUSH_ENTRIES`` entries
or ``FLUSH_BYTES`` bytes wait, when the oldest has waited ``FLUSH_SECONDS``, and always when
the run ends - normally, with an error, or by Ctrl-C - so finished items are never lost.  A
process that dies without unwinding (killed, power cut) loses at most the batch not written
yet; those items are simply computed again next time.  Entries waiting are visible to reads
in this process at once, and to other processes once written.  Large values (their own file)
and writes made outside a run go to disk at once, as before.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import diskcache

from ..exceptions import CachePathError, SettingValueError
from ..model.checks import check_seconds, check_whole
from .base import (
    CacheTimeout,
    CacheWriteError,
    CorruptEntry,
    EntrySigner,
    dump_entry,
    load_entry,
    refused_entry_message,
    warn_once,
    where,
)
from .keyfile import MIN_KEY_BYTES, KeyFileError, default_key_file, load_key

_UNLIMITED = 2**62
_BATCH_SELECT = "SELECT key, mode, filename, value FROM Cache WHERE raw = 1 AND key IN (%s)"
#: at most this many keys in one query (SQLite's default limit on parameters is 32766)
_SELECT_CHUNK = 900
#: a row of diskcache's own table for a value stored inline (``mode`` raw, no file); a key that
#: is there already keeps its row (keys are content addresses: same key, same value)
_BATCH_INSERT = (
    "INSERT OR IGNORE INTO Cache(key, raw, store_time, expire_time, access_time, access_count,"
    " tag, size, mode, filename, value) VALUES (?, 1, ?, NULL, ?, 0, NULL, 0, ?, NULL, ?)"
)
_MODE_RAW = diskcache.core.MODE_RAW

#: write-behind: a batch is written once this many entries wait ...
FLUSH_ENTRIES = 100_000
#: ... or this many bytes ...
FLUSH_BYTES = 64 * 2**20
#: ... or the oldest has waited this many seconds (at most what a killed process loses)
FLUSH_SECONDS = 2.0
_DB = diskcache.core.DBNAME  # "cache.db"
#: seconds before a cache that could not be opened is tried again
_REOPEN_DELAY = 30.0


# ---------------------------------------------------------------------------------------------
# What went wrong: SQLite's primary result codes, and OSError numbers


def _kind(exc: BaseException) -> str:
    """``"locked"``, ``"corrupt"``, ``"full"`` or ``"io"`` for an error of the store."""
    if isinstance(exc, diskcache.Timeout):
        return "locked"
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None:
            primary = code & 0xFF
            if primary in (5, 6):  # SQLITE_BUSY, SQLITE_LOCKED
                return "locked"
            if primary in (11, 26):  # SQLITE_CORRUPT, SQLITE_NOTADB
                return "corrupt"
            if primary == 13:  # SQLITE_FULL
                return "full"
            return "io"
        text = str(exc).lower()
        if "locked" in text:
            return "locked"
        if "malformed" in text or "not a database" in text:
            return "corrupt"
        return "full" if "full" in text else "io"
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "full"
    return "io"


_STORE_ERRORS = (sqlite3.Error, OSError, diskcache.Timeout)


# ---------------------------------------------------------------------------------------------
# diskcache, made private to the user and bounded by our timeout when it opens


def _private_opener(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


class _PrivateDisk(diskcache.Disk):
    """Value files created 0600 in 0700 folders; a partly written file (disk full) is removed."""

    def _write(self, full_path: str, iterator: Any, mode: str, encoding: str | None = None) -> int:
        top = self._directory
        folder = os.path.dirname(full_path)
        for count in range(1, 11):
            current = top
            for part in os.path.relpath(folder, top).split(os.sep):
                current = os.path.join(current, part)
                with contextlib.suppress(OSError):
                    os.mkdir(current, 0o700)
            try:
                writer = open(full_path, mode, encoding=encoding, opener=_private_opener)  # noqa: SIM115
            except OSError:
                if count == 10:
                    raise
                continue
            try:
                with writer:
                    size = 0
                    for chunk in iterator:
                        size += len(chunk)
                        writer.write(chunk)
                return size
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(full_path)
                raise
        raise OSError(f"cannot create {full_path}")  # pragma: no cover - the loop returns or raises


class _Store(diskcache.Cache):
    """``diskcache.Cache`` whose set-up statements wait for a lock at most ``timeout`` seconds.

    (diskcache retries those statements for a fixed 60 s whatever its timeout.)
    """

    def __init__(
        self, directory: str, timeout: float = 60.0, disk: Any = None, **settings: Any
    ) -> None:
        self._open_timeout = timeout
        super().__init__(directory, timeout=timeout, disk=_PrivateDisk, **settings)

    @property
    def _sql_retry(self) -> Any:
        sql = self._sql
        limit = self._open_timeout

        def execute(statement: str, *args: Any, **kwargs: Any) -> Any:
            start = time.monotonic()
            pause = 0.001
            while True:
                try:
                    return sql(statement, *args, **kwargs)
                except sqlite3.OperationalError as exc:
                    if _kind(exc) != "locked" or time.monotonic() - start >= limit:
                        raise
                    time.sleep(pause)
                    pause = min(pause * 2, 0.05)

        return execute


class _ReadOnlyStore:
    """The parts of ``diskcache.Cache`` that reads use, over a read-only SQLite connection: for
    a cache folder this process may read but not write (a shared, read-only cache)."""

    def __init__(self, directory: str) -> None:
        db = os.path.join(directory, _DB)
        last: Exception | None = None
        for mode in ("ro", "ro&immutable=1"):  # immutable: no -shm file can be made here
            try:
                con = sqlite3.connect(f"file:{db}?mode={mode}", uri=True, check_same_thread=False)
                con.execute("SELECT 1 FROM Cache LIMIT 1").fetchall()
            except sqlite3.Error as exc:
                last = exc
                continue
            self._con = con
            self._disk = diskcache.Disk(directory)
            self._lock = threading.Lock()
            return
        assert last is not None
        raise last

    def _sql(self, statement: str, *args: Any) -> Any:
        with self._lock:
            return _Rows(self._con.execute(statement, *args).fetchall())

    def get(self, key: bytes, default: Any = None, retry: bool = False) -> Any:
        rows = self._sql(_BATCH_SELECT % "?", [key]).fetchall()
        if not rows:
            return default
        _, mode, filename, value = rows[0]
        return self._disk.fetch(mode, filename, value, False)

    def set(self, *args: Any, **kwargs: Any) -> None:
        raise sqlite3.OperationalError("attempt to write a readonly database")

    def delete(self, *args: Any, **kwargs: Any) -> None:
        raise sqlite3.OperationalError("attempt to write a readonly database")

    def clear(self, *args: Any, **kwargs: Any) -> None:
        raise OSError("the cache directory is read-only here")

    def __len__(self) -> int:
        return int(self._sql("SELECT COUNT(*) FROM Cache").fetchall()[0][0])

    def volume(self) -> int:
        return 0

    def close(self) -> None:
        self._con.close()


class _Rows(list):  # type: ignore[type-arg]
    """Fetched rows, with the ``fetchall()`` a cursor has."""

    def fetchall(self) -> list[Any]:
        return list(self)


class _OpenFailed(Exception):
    """The cache cannot be opened for a reason other than a lock (disk full, no permission)."""


def _as_secret(key: bytes | str) -> bytes:
    if not isinstance(key, (str, bytes, bytearray, memoryview)):
        raise SettingValueError(
            f"DiskCache: key= must be bytes or a string, got {type(key).__name__}; "
            "generate one with secrets.token_bytes(32)"
        )
    secret = key.encode() if isinstance(key, str) else bytes(key)
    if len(secret) < MIN_KEY_BYTES:
        raise SettingValueError(
            f"DiskCache: key= must have at least {MIN_KEY_BYTES} bytes, got {len(secret)}: a "
            "short key is easy to guess. Generate one with secrets.token_bytes(32) and keep it in "
            "a file (key_file=...), or leave key= out to use your private key file"
        )
    return secret


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
    """A persistent cache in the directory ``path`` (created if missing, private to the user).

    Safe for many threads and processes at once: writes are atomic SQLite transactions, so no
    reader sees a half-written entry and concurrent writers lose nothing.  A ``DiskCache`` pickles
    as its settings and reopens the directory in the process that unpickles it, so it can be
    handed to worker processes.  ``size_limit`` (bytes) turns on eviction of the oldest entries;
    by default nothing is evicted.  ``timeout`` is how long to wait for a lock another process
    holds; past it, :class:`~hypernodes.cache.base.CacheTimeout` is raised.

    Entries are authenticated with a secret: by default the per-user key file (see
    :func:`~hypernodes.cache.keyfile.default_key_file`), else ``key_file=`` or ``key=`` (bytes,
    at least 16) for a cache that several machines or users share.
    """

    #: map loops read the keys of many items in one query (each query has a cost of its own),
    #: then ask :meth:`waiting` for what items of the batch wrote meanwhile
    batch_reads = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        size_limit: int | None = None,
        timeout: float = 60.0,
        *,
        key: bytes | str | None = None,
        key_file: str | os.PathLike[str] | None = None,
    ) -> None:
        if key is not None and key_file is not None:
            raise SettingValueError(
                "DiskCache takes key= or key_file=, not both: they would name two secrets. "
                "Pass key_file= for a key kept in a file (shared by several machines), key= for "
                "the bytes themselves"
            )
        _check_directory(os.fspath(path))
        # resolved once, here: workers with another working directory use the same folder
        self.path = os.path.abspath(os.fspath(path))
        self.size_limit = check_whole(size_limit, "size_limit", "DiskCache")
        self.timeout = check_seconds(timeout, "timeout", "DiskCache")
        self._key = None if key is None else _as_secret(key)
        #: the file holding the secret (``None`` when ``key=`` was given)
        self.key_file: str | None = None
        if key is None:
            self.key_file = os.path.abspath(os.fspath(key_file or default_key_file()))
        self._reset()

    def _reset(self) -> None:
        self._store: diskcache.Cache | None = None
        self._signer: EntrySigner | None = None
        self._lock = threading.RLock()
        self._batched = True
        self._retry_at = 0.0
        #: runs in progress that let writes wait (see :meth:`defer`)
        self._deferring = 0
        #: entries waiting to be written: key -> entry; ``_flushing`` is the batch being written
        self._pending: dict[bytes, bytes] = {}
        self._flushing: dict[bytes, bytes] | None = None
        self._pending_bytes = 0
        self._pending_since = 0.0
        self._pending_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        #: entries at least this long are written at once (diskcache gives them a file)
        self._inline_limit = diskcache.DEFAULT_SETTINGS["disk_min_file_size"]
        #: this copy was unpickled (a worker): it opens the caller's folder, never makes one
        self._copy = False
        #: the folder can be read but not written here: entries are read, none stored
        self._read_only = False
        #: how many times :meth:`clear` ran (explain's records are written again after one)
        self.records_epoch = 0

    # -- opening ------------------------------------------------------------------------------

    @property
    def store(self) -> diskcache.Cache:
        """The underlying ``diskcache.Cache`` (opened on first use in each process).

        Raises if the cache cannot be opened (the pipeline itself runs uncached then).
        """
        store = self._get(strict=True)
        assert store is not None
        return store

    def _get(self, strict: bool = False) -> diskcache.Cache | None:
        """The open store, or ``None`` while it cannot be opened (warned about once)."""
        store = self._store
        if store is not None:
            return store
        with self._lock:
            if self._store is not None:
                return self._store
            if not strict and time.monotonic() < self._retry_at:
                return None
            try:
                self._store = self._open()
            except _OpenFailed as exc:
                self._retry_at = time.monotonic() + _REOPEN_DELAY
                if strict:
                    raise OSError(str(exc)) from exc.__cause__
                warn_once(
                    ("open", self.path),
                    f"DiskCache({self.path!r}) cannot be opened {where()}, so this run is not "
                    f"cached there (results are unaffected): {exc}",
                )
            return self._store

    def _open(self) -> diskcache.Cache:
        try:
            secret = self._key if self._key is not None else load_key(self.key_file or "")
        except KeyFileError as exc:
            raise _OpenFailed(str(exc)) from exc
        self._signer = EntrySigner(secret)
        if self._copy and not os.path.isdir(self.path):
            raise _OpenFailed(
                "its directory does not exist on this machine: workers elsewhere need it on a "
                "shared file system at the same path, or use FsspecCache for a shared store"
            )
        for attempt in range(2):
            try:
                created = self._prepare()
                store = self._connect()
            except _STORE_ERRORS as exc:
                kind = _kind(exc)
                if kind == "locked":
                    raise self._timeout_error(exc) from exc
                if kind == "corrupt" and attempt == 0 and self._quarantine(exc):
                    continue
                read_only = self._open_read_only()
                if read_only is not None:
                    return read_only
                raise _OpenFailed(f"{type(exc).__name__}: {exc}") from exc
            if created is not None:
                # A new index: value files older than it belong to no entry (a deleted or
                # quarantined index, a killed process); reclaim them.
                with contextlib.suppress(*_STORE_ERRORS):
                    self._sweep(store, before=created)
            return store
        raise AssertionError("unreachable")  # pragma: no cover

    def _open_read_only(self) -> Any:
        """A store for a folder this process may read but not write, or ``None``."""
        db = os.path.join(self.path, _DB)
        if os.access(self.path, os.W_OK) or not os.access(db, os.R_OK):
            return None
        try:
            store = _ReadOnlyStore(self.path)
        except (sqlite3.Error, OSError):
            return None
        self._read_only = True
        warn_once(
            ("read-only", self.path),
            f"DiskCache({self.path!r}) is read-only {where()}: entries are read, new "
            "results are not stored",
        )
        return store

    def _prepare(self) -> float | None:
        """Create the directory (0700) and an empty index (0600) if missing.

        Returns the time the index was created by this call, else ``None``.  SQLite gives the
        ``-wal`` and ``-shm`` files the index's permissions.
        """
        os.makedirs(self.path, mode=0o700, exist_ok=True)
        db = os.path.join(self.path, _DB)
        if os.path.exists(db):
            return None
        for suffix in ("-wal", "-shm"):  # left over from an index that was deleted
            with contextlib.suppress(FileNotFoundError):
                os.unlink(db + suffix)
        created = time.time()
        try:
            os.close(os.open(db, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            return None
        return created

    def _connect(self) -> diskcache.Cache:
        settings: dict[str, Any] = {
            "statistics": 0,
            "tag_index": 0,
            "eviction_policy": "none" if self.size_limit is None else "least-recently-stored",
            "size_limit": _UNLIMITED if self.size_limit is None else self.size_limit,
        }
        return _Store(self.path, self.timeout, **settings)

    def _timeout_error(self, exc: BaseException) -> CacheTimeout:
        return CacheTimeout(
            f"DiskCache({self.path!r}): another process has held the cache's database lock for "
            f"more than timeout={self.timeout} s ({type(exc).__name__}: {exc}). Find that "
            "process (a stopped or hung run), or give DiskCache a larger timeout."
        )

    # -- an unreadable index ------------------------------------------------------------------

    def _quarantine(self, exc: BaseException) -> bool:
        """Move an unreadable index aside (``cache.db.corrupt-<time>``); False if it reads fine.

        The index is checked again first, so that a process that saw the old index does not
        move aside the fresh one another process has just built.
        """
        db = os.path.join(self.path, _DB)
        if not _unreadable(db):
            return True  # someone rebuilt it already: open again
        stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}"
        moved = []
        for suffix in ("", "-wal", "-shm"):
            target = f"{db}{suffix}.corrupt-{stamp}"
            try:
                os.replace(db + suffix, target)
            except FileNotFoundError:
                continue
            except OSError:
                return False
            moved.append(os.path.basename(target))
        warn_once(
            ("corrupt-index", self.path),
            f"DiskCache({self.path!r}): its index {_DB} is unreadable ({exc}); moved it aside "
            f"as {', '.join(moved) or 'nothing'} and started an empty cache (results are "
            "unaffected; earlier entries are recomputed)",
        )
        return True

    def _recover(self, store: diskcache.Cache, exc: BaseException) -> None:
        """After a query found the index corrupt: close, move it aside, reopen on next use."""
        with self._lock:
            if self._store is not store:
                return  # another thread recovered already
            self._store = None
            with contextlib.suppress(*_STORE_ERRORS):
                store.close()
            with contextlib.suppress(OSError):
                self._quarantine(exc)

    # -- orphaned value files -----------------------------------------------------------------

    def _sweep(self, store: diskcache.Cache, before: float | None) -> int:
        """Delete value files no entry points to (only those older than ``before`` if given)."""
        rows = store._sql("SELECT filename FROM Cache WHERE filename IS NOT NULL").fetchall()
        referenced = {os.path.normpath(name) for (name,) in rows}
        removed = 0
        for outer in _hex_dirs(self.path):
            for inner in _hex_dirs(outer.path):
                with os.scandir(inner.path) as entries:
                    files = [e for e in entries if e.name.endswith(".val") and e.is_file()]
                for entry in files:
                    if os.path.join(outer.name, inner.name, entry.name) in referenced:
                        continue
                    with contextlib.suppress(OSError):
                        if before is None or entry.stat().st_mtime < before:
                            os.unlink(entry.path)
                            removed += 1
                with contextlib.suppress(OSError):
                    os.rmdir(inner.path)
            with contextlib.suppress(OSError):
                os.rmdir(outer.path)
        return removed

    def reclaim(self, older_than: float = 60.0) -> int:
        """Delete value files that no entry points to and that are older than ``older_than``
        seconds (left by a process killed while writing); returns how many were deleted.

        Files younger than that may belong to a write another process has not committed yet.
        """
        store = self.store
        return self._sweep(store, before=time.time() - older_than)

    # -- the store protocol -----------------------------------------------------------------

    def get_many(self, keys: Sequence[bytes]) -> dict[bytes, Any]:
        """The values stored under those of ``keys`` that are present and authentic.

        Reads all of ``keys`` in one SQLite query on diskcache's own table (a warm map item then
        costs one round trip, not one per output).  A failed read is a miss with a warning; a
        corrupt index is moved aside (see :meth:`_quarantine`); only a lock held past
        ``timeout`` raises.
        """
        if not keys:
            return {}
        waiting: list[tuple[bytes, Any]] = []
        if self._pending or self._flushing:
            keys, waiting = self._waiting(keys)
            if not keys:
                return self._load(None, waiting)
        store = self._store
        if store is None:
            store = self._get()
            if store is None:
                return self._load(None, waiting)
        start = time.monotonic()
        while True:
            try:
                blobs = self._fetch(store, keys)
                break
            except _STORE_ERRORS as exc:
                kind = _kind(exc)
                if kind == "locked":
                    self._wait_or_raise(start, exc)
                    continue
                if kind == "corrupt":
                    self._recover(store, exc)
                    return self._load(None, waiting)
                warn_once(
                    ("read", self.path, type(exc)),
                    f"DiskCache({self.path!r}): read failed, treating it as a miss: {exc}",
                )
                return self._load(None, waiting)
        if waiting:
            blobs.extend(waiting)
        return self._load(store, blobs)

    def waiting(self, keys: Sequence[bytes]) -> dict[bytes, Any]:
        """The entries among ``keys`` still waiting in memory to be written (no disk read):
        what a batch of items read before wrote meanwhile."""
        if not (self._pending or self._flushing):
            return {}
        _, found = self._waiting(keys)
        return self._load(None, found)

    def _waiting(self, keys: Sequence[bytes]) -> tuple[list[bytes], list[tuple[bytes, Any]]]:
        """Split ``keys`` into those to read from disk and the entries still waiting in memory."""
        pending, flushing = self._pending, self._flushing
        rest: list[bytes] = []
        waiting: list[tuple[bytes, Any]] = []
        for key in keys:
            blob = pending.get(key)
            if blob is None and flushing is not None:
                blob = flushing.get(key)
            if blob is None:
                rest.append(key)
            else:
                waiting.append((key, blob))
        return rest, waiting

    def _load(self, store: Any, blobs: list[tuple[bytes, Any]]) -> dict[bytes, Any]:
        """Verify and unpickle entries; a corrupt one is dropped from ``store`` with a warning."""
        signer = self._signer
        found: dict[bytes, Any] = {}
        if not blobs:
            return found
        assert signer is not None
        for key, blob in blobs:
            try:
                found[key] = load_entry(blob, signer, key)
            except CorruptEntry as exc:
                warn_once(
                    ("corrupt", self.path),
                    refused_entry_message(f"DiskCache({self.path!r})", exc),
                )
                if store is not None and not self._read_only:
                    self._discard(store, key)
        return found

    def _wait_or_raise(self, start: float, exc: BaseException) -> None:
        """Between two attempts while another process holds the lock; raise past ``timeout``."""
        if time.monotonic() - start >= self.timeout:
            raise self._timeout_error(exc) from exc
        time.sleep(0.01)

    def _fetch(self, store: diskcache.Cache, keys: Sequence[bytes]) -> list[tuple[bytes, Any]]:
        if self._batched:
            try:
                if len(keys) <= _SELECT_CHUNK:
                    rows = store._sql(_BATCH_SELECT % ",".join("?" * len(keys)), keys).fetchall()
                else:
                    rows = []
                    for i in range(0, len(keys), _SELECT_CHUNK):
                        part = keys[i : i + _SELECT_CHUNK]
                        query = _BATCH_SELECT % ",".join("?" * len(part))
                        rows.extend(store._sql(query, part).fetchall())
                fetch = store._disk.fetch
            except AttributeError:  # a diskcache with another layout
                self._batched = False
            except sqlite3.OperationalError as exc:
                if "no such" not in str(exc):
                    raise
                self._batched = False
            else:
                blobs = []
                for key, mode, filename, value in rows:
                    if mode == _MODE_RAW and filename is None:  # inline: the value is the entry
                        blobs.append((key, value))
                        continue
                    try:
                        blobs.append((key, fetch(mode, filename, value, False)))
                    except OSError:  # its file was removed after the row was read: a miss
                        continue
                return blobs
        return [(k, b) for k in keys if (b := store.get(k, retry=False)) is not None]

    def set(self, key: bytes, value: Any) -> None:
        """Store ``value`` under ``key``.

        Raises :class:`CacheWriteError` for a value that cannot be pickled.  A write the disk
        refuses (full, I/O error) is a :class:`CacheWarning` and the value is simply not stored;
        a lock held past ``timeout`` raises :class:`CacheTimeout`.
        """
        store = self._store
        if store is None:
            store = self._get()
            if store is None:
                return
        signer = self._signer
        assert signer is not None
        blob = dump_entry(value, signer, key)
        if self._read_only:
            return
        if self._deferring and len(blob) < self._inline_limit:
            with self._pending_lock:
                pending = self._pending
                if not pending:
                    self._pending_since = time.monotonic()
                pending[key] = blob
                self._pending_bytes += len(blob)
                due = (
                    len(pending) >= FLUSH_ENTRIES
                    or self._pending_bytes >= FLUSH_BYTES
                    or time.monotonic() - self._pending_since >= FLUSH_SECONDS
                )
            if due:
                self.flush()
            return
        start = time.monotonic()
        try:
            store.set(key, blob, retry=False)
        except _STORE_ERRORS as exc:
            self._write_failed(store, key, blob, exc, start)

    # -- write-behind ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def defer(self) -> Iterator[None]:
        """Let writes wait in memory while the ``with`` block runs (a run or map), and write
        them in batches; everything waiting is written when the block ends, however it ends.

        Ending normally, a lock held past ``timeout`` raises :class:`CacheTimeout` (as a write
        would have); ending with an exception, a failed write is only a warning.
        """
        with self._pending_lock:
            self._deferring += 1
        ok = False
        try:
            yield
            ok = True
        finally:
            with self._pending_lock:
                self._deferring -= 1
            if ok:
                self.flush()
            else:
                try:
                    self.flush()
                except Exception as exc:  # never hide the error the run ends with
                    warn_once(
                        ("flush", self.path, type(exc)),
                        f"DiskCache({self.path!r}): results of the interrupted run were not "
                        f"all stored: {type(exc).__name__}: {exc}",
                    )

    def flush(self) -> None:
        """Write the entries waiting in memory, in one transaction."""
        if not self._pending:
            return
        with self._flush_lock:
            with self._pending_lock:
                batch = self._pending
                if not batch:
                    return
                self._flushing = batch
                self._pending = {}
                self._pending_bytes = 0
            try:
                self._write_batch(batch)
            finally:
                self._flushing = None

    def _write_batch(self, batch: dict[bytes, bytes]) -> None:
        """Write ``batch`` in one transaction; errors as :meth:`set` handles them."""
        store = self._get()
        if store is None:
            return
        start = time.monotonic()
        recovered = False
        while True:
            try:
                self._insert(store, batch)
                return
            except _STORE_ERRORS as exc:
                kind = _kind(exc)
                if kind == "locked":
                    self._wait_or_raise(start, exc)
                    continue
                if kind == "corrupt" and not recovered:
                    recovered = True
                    self._recover(store, exc)
                    fresh = self._get()
                    if fresh is None:
                        return
                    store = fresh
                    continue
                self._warn_write(kind, exc)
                return

    def _insert(self, store: diskcache.Cache, batch: dict[bytes, bytes]) -> None:
        """One transaction: the first entry through diskcache's own ``set`` (which also finds
        out whether writing works at all, and evicts for a size limit), the rest in bulk as rows
        of the same table."""
        entries = iter(batch.items())
        with store.transact(retry=False):
            key, blob = next(entries)
            store.set(key, blob, retry=False)
            if self._batched:
                now = time.time()
                rows = [(k, now, now, _MODE_RAW, b) for k, b in entries]
                try:
                    store._con.executemany(_BATCH_INSERT, rows)
                except AttributeError:  # a diskcache with another layout
                    self._batched = False
                except sqlite3.OperationalError as exc:
                    if "no such" not in str(exc) and "has no column" not in str(exc):
                        raise
                    self._batched = False
                else:
                    entries = iter(())
            for key, blob in entries:
                store.set(key, blob, retry=False)
        if self.size_limit is not None and len(batch) > 1:
            store.cull(retry=False)

    def _write_failed(
        self, store: diskcache.Cache, key: bytes, blob: bytes, exc: BaseException, start: float
    ) -> None:
        """A write begun at ``start`` raised ``exc``: wait out a lock (up to ``timeout``),
        rebuild a corrupt index once, and turn anything else (disk full, I/O error) into one
        warning."""
        recovered = False
        while True:
            kind = _kind(exc)
            if kind == "locked":
                self._wait_or_raise(start, exc)
            elif kind == "corrupt" and not recovered:
                recovered = True
                self._recover(store, exc)
                fresh = self._get()
                if fresh is None:
                    return
                store = fresh
            else:
                self._warn_write(kind, exc)
                return
            try:
                store.set(key, blob, retry=False)
                return
            except _STORE_ERRORS as again:
                exc = again

    def _warn_write(self, kind: str, exc: BaseException) -> None:
        what = "the disk is full" if kind == "full" else "a write failed"
        warn_once(
            ("write", self.path, kind),
            f"DiskCache({self.path!r}): {what}, so results are not being stored "
            f"(they are still returned): {type(exc).__name__}: {exc}",
        )

    def _discard(self, store: diskcache.Cache, key: bytes) -> None:
        with contextlib.suppress(*_STORE_ERRORS):
            store.delete(key, retry=False)

    # -- records (what explain_cache reads; not entries) -----------------------------------

    def _record_path(self, key: bytes) -> str:
        return os.path.join(self.path, "records", key.hex())

    def put_record(self, key: bytes, value: Any) -> None:
        """Keep ``value`` (a small record of what a node's key is made of) under ``key``: an
        authenticated file in ``records/``, replaced atomically; failures are ignored."""
        if self._get() is None:
            return
        assert self._signer is not None
        blob = dump_entry(value, self._signer, key)
        path = self._record_path(key)
        temporary = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        with contextlib.suppress(OSError):
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            with open(temporary, "wb", opener=_private_opener) as out:
                out.write(blob)
            os.replace(temporary, path)

    def get_record(self, key: bytes) -> Any:
        """The record under ``key``, or ``None`` (missing, unreadable or not authentic)."""
        if self._get() is None:
            return None
        assert self._signer is not None
        try:
            with open(self._record_path(key), "rb") as source:
                return load_entry(source.read(), self._signer, key)
        except (OSError, CorruptEntry):
            return None

    def clear(self) -> None:
        """Delete every entry, every value file no entry points to, and set-aside indexes."""
        with self._pending_lock:
            self._pending = {}
            self._pending_bytes = 0
        store = self.store
        try:
            store.clear(retry=False)
        except diskcache.Timeout as exc:
            raise self._timeout_error(exc) from exc
        self._sweep(store, before=None)
        shutil.rmtree(os.path.join(self.path, "records"), ignore_errors=True)
        self.records_epoch += 1
        with os.scandir(self.path) as entries:
            for entry in entries:
                if entry.name.startswith(_DB) and ".corrupt-" in entry.name:
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)

    def __len__(self) -> int:
        self.flush()
        return len(self.store)

    def volume(self) -> int:
        """Bytes the cache takes on disk (database plus value files)."""
        self.flush()
        return int(self.store.volume())

    @property
    def size_bytes(self) -> int:
        """Same as :meth:`volume`."""
        return self.volume()

    def export_writes(self) -> list[tuple[bytes, Any]]:
        """Nothing to relay: every process writes to the shared directory itself (what waits
        in memory is written now, at the end of a worker's chunk)."""
        self.flush()
        return []

    def import_writes(self, entries: list[tuple[bytes, Any]]) -> None:
        """Nothing to do: see :meth:`export_writes`."""

    def close(self) -> None:
        """Write what waits, and close this process's connections (the cache reopens on next
        use)."""
        try:
            self.flush()
        except Exception as exc:
            warn_once(
                ("flush", self.path, type(exc)),
                f"DiskCache({self.path!r}): results waiting to be stored were not: "
                f"{type(exc).__name__}: {exc}",
            )
        with self._lock:
            store, self._store = self._store, None
            self._retry_at = 0.0
        if store is not None:
            store.close()

    def __enter__(self) -> DiskCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- pickling: settings only; the child reopens the directory ------------------------------

    def __getstate__(self) -> dict[str, Any]:
        # The key file travels as a path (resolved here, so workers use this process's key);
        # a key given as bytes travels as bytes.  The folder is made here, so that a worker
        # finds it (a worker never makes one: see _open).
        if not self._copy:
            with contextlib.suppress(OSError):
                os.makedirs(self.path, mode=0o700, exist_ok=True)
        return {
            "path": self.path,
            "size_limit": self.size_limit,
            "timeout": self.timeout,
            "key": self._key,
            "key_file": self.key_file,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = state["path"]
        self.size_limit = state["size_limit"]
        self.timeout = state["timeout"]
        self._key = state.get("key")
        self.key_file = state.get("key_file")
        if self._key is None and self.key_file is None:
            self.key_file = default_key_file()
        self._reset()
        self._copy = True

    def __repr__(self) -> str:
        return f"DiskCache({self.path!r})"


def _hex_dirs(path: str) -> list[os.DirEntry[str]]:
    """The two-hex-digit folders diskcache spreads value files over."""
    try:
        with os.scandir(path) as entries:
            return [
                e
                for e in entries
                if len(e.name) == 2
                and all(c in "0123456789abcdef" for c in e.name)
                and e.is_dir(follow_symlinks=False)
            ]
    except OSError:
        return []


def _unreadable(db: str) -> bool:
    """Whether the SQLite file ``db`` exists and fails a quick integrity check."""
    if not os.path.exists(db):
        return False
    try:
        con = sqlite3.connect(db, timeout=1.0)
    except sqlite3.Error:
        return False  # cannot even open it (permissions): not ours to move
    try:
        rows = con.execute("PRAGMA quick_check(1)").fetchall()
        return rows != [("ok",)]
    except sqlite3.Error as exc:
        return _kind(exc) == "corrupt"
    finally:
        con.close()


__all__ = ["CacheTimeout", "CacheWriteError", "DiskCache"]
