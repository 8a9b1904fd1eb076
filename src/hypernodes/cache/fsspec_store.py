"""``FsspecCache``: node results on any fsspec file system - a local or shared folder
(``file://``), an object store (``s3://`` with s3fs, ``gs://`` with gcsfs) - so that many
machines share one store.

Each entry is one object, ``<root>/<2 hex>/<key hex>``, holding a pickle behind a MAC (the same
entry format as :class:`~hypernodes.cache.disk.DiskCache`): only a holder of the secret key can
make an entry that verifies, and nothing is unpickled unless it verifies.  Every machine must
use the same key: ``key=``, or the ``HYPERNODES_CACHE_KEY`` environment variable, or the same
``key_file``.

Entries are write-once: keys are content addresses (the same key always means the same result),
so an entry that exists is never written again, and a key's bytes never change once visible.
On a local file system an entry is written to a private temporary file and hard-linked into
place (the first writer wins); on object stores with conditional writes (S3's
``If-None-Match``) it is created only if absent, and an object store shows an object whole or
not at all.

Every process writes what it computes itself (worker processes of a ``"parallel"`` map, Dask,
Ray and Daft workers): nothing is relayed through the caller, except for ``memory://``, whose
file system lives in one process (its workers' writes are sent back like MemoryCache's).

An unreachable store is a :class:`~hypernodes.exceptions.CacheStoreError` when the cache is
built; a read or write that fails later is a warning and a miss - never a lost result.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from ..exceptions import CacheStoreError
from .base import (
    CorruptEntry,
    EntrySigner,
    dump_entry,
    load_entry,
    refused_entry_message,
    warn_once,
)
from .keyfile import MIN_KEY_BYTES, KeyFileError, default_key_file, load_key

#: environment variable holding the secret shared by every machine (at least 16 characters)
KEY_ENV = "HYPERNODES_CACHE_KEY"


def resolve_secret(
    owner: str, key: bytes | str | None, key_file: str | os.PathLike[str] | None
) -> tuple[bytes, str]:
    """The secret and where it came from: ``key=``, ``$HYPERNODES_CACHE_KEY``, ``key_file``,
    or the per-user key file.  Raises :class:`CacheStoreError` naming ``owner``."""
    if key is not None and key_file is not None:
        raise CacheStoreError(f"{owner}: give key= or key_file=, not both")
    source = "key="
    if key is None and key_file is None and os.environ.get(KEY_ENV):
        key, source = os.environ[KEY_ENV], f"${KEY_ENV}"
    if key is not None:
        secret = key.encode() if isinstance(key, str) else bytes(key)
        if len(secret) < MIN_KEY_BYTES:
            raise CacheStoreError(
                f"{owner}: the key ({source}) has {len(secret)} bytes, fewer than "
                f'{MIN_KEY_BYTES}: use a longer random secret (e.g. `python -c "import secrets; '
                'print(secrets.token_hex(32))"`)'
            )
        return secret, source
    path = os.path.abspath(os.fspath(key_file or default_key_file()))
    try:
        return load_key(path), f"key file {path}"
    except KeyFileError as exc:
        raise CacheStoreError(f"{owner}: {exc}") from exc


class FsspecCache:
    """A persistent cache at ``url`` on any fsspec file system, shared by processes and machines.

    ``url`` is a folder: ``"file:///shared/cache"``, ``"s3://bucket/cache"``,
    ``"memory://cache"`` (one process only; for tests), or a plain path.  ``storage_options``
    go to the file system (``{"endpoint_url": ..., "key": ..., "secret": ...}`` for s3fs).
    ``key=`` (bytes or text, at least 16 bytes) is the secret that authenticates entries; without
    it, ``$HYPERNODES_CACHE_KEY``, else ``key_file=``, else the per-user key file (fine for one
    machine; machines that share a store must share the key).

    Raises :class:`~hypernodes.exceptions.CacheStoreError` when the store cannot be reached or
    the key cannot be had.
    """

    #: map loops read the keys of a batch of items in one call (object stores fetch them at once)
    batch_reads = True

    def __init__(
        self,
        url: str | os.PathLike[str],
        *,
        key: bytes | str | None = None,
        key_file: str | os.PathLike[str] | None = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.url = os.fspath(url)
        self.storage_options = dict(storage_options or {})
        secret, self.key_source = resolve_secret(f"FsspecCache({self.url!r})", key, key_file)
        self._secret = secret
        self._open()
        #: entries written in this process copy of a one-process store (``memory://``), to relay
        self._journal: list[tuple[bytes, bytes]] | None = None

    def _open(self) -> None:
        import fsspec  # an optional dependency: needed only by this cache

        try:
            fs, root = fsspec.core.url_to_fs(self.url, **self.storage_options)
        except (ImportError, ValueError) as exc:
            raise CacheStoreError(
                f"FsspecCache({self.url!r}): {exc} (the s3:// store needs `pip install "
                "'hypernodes[s3]'`; gs:// needs gcsfs)"
            ) from exc
        self._fs = fs
        self._root = root.rstrip("/")
        self._local = type(fs).__name__ == "LocalFileSystem"
        if self._local:  # a relative path, resolved once, here: workers use the same folder
            self.url = fs.unstrip_protocol(self._root)
        self._relay = "memory" in _protocols(fs)
        self._signer = EntrySigner(self._secret)
        self._lock = threading.Lock()
        #: how many times :meth:`clear` ran (explain's records are written again after one)
        self.records_epoch = 0
        try:
            if self._local or self._relay:  # folders; an object store makes no bucket here
                fs.makedirs(self._root, exist_ok=True)
            try:
                fs.ls(self._root, detail=False)
            except FileNotFoundError:  # an object store's empty "folder": its bucket must exist
                fs.ls(self._root.split("/")[0], detail=False)
        except Exception as exc:
            raise CacheStoreError(
                f"FsspecCache({self.url!r}): the store cannot be reached ({type(exc).__name__}: "
                f"{exc}); check the URL, the credentials in storage_options and the network"
            ) from exc

    # -- paths -----------------------------------------------------------------------------

    def _path(self, key: bytes) -> str:
        name = key.hex()
        return f"{self._root}/{name[:2]}/{name}"

    # -- the store protocol -----------------------------------------------------------------

    def get_many(self, keys: Sequence[bytes]) -> dict[bytes, Any]:
        """The values stored under those of ``keys`` that are present and authentic."""
        if not keys:
            return {}
        paths = {self._path(k): k for k in keys}
        try:
            blobs = self._read(list(paths))
        except Exception as exc:  # a store that went away: a miss, said once
            warn_once(
                ("fsspec-read", self.url, type(exc)),
                f"FsspecCache({self.url!r}): read failed, treating it as a miss: "
                f"{type(exc).__name__}: {exc}",
            )
            return {}
        found: dict[bytes, Any] = {}
        signer = self._signer
        for path, blob in blobs.items():
            key = paths[path]
            try:
                found[key] = load_entry(blob, signer, key)
            except CorruptEntry as exc:
                warn_once(
                    ("fsspec-corrupt", self.url),
                    refused_entry_message(f"FsspecCache({self.url!r})", exc),
                )
        return found

    def _read(self, paths: list[str]) -> dict[str, bytes]:
        if self._local:
            found = {}
            for path in paths:
                blob = _read_file(path)
                if blob is not None:
                    found[path] = blob
            return found
        if len(paths) == 1:
            try:
                return {paths[0]: self._fs.cat_file(paths[0])}
            except FileNotFoundError:
                return {}
        read: dict[str, bytes] = self._fs.cat(paths, on_error="omit")
        return read

    def waiting(self, keys: Sequence[bytes]) -> dict[bytes, Any]:
        """Nothing waits in memory: every write goes to the store at once."""
        return {}

    def set(self, key: bytes, value: Any) -> None:
        """Store ``value`` under ``key`` unless an entry is there already (write-once).

        Raises :class:`CacheWriteError` for a value that cannot be pickled; a write the store
        refuses is a warning (the result is still returned).
        """
        blob = dump_entry(value, self._signer, key)
        try:
            self._write_once(self._path(key), blob)
        except Exception as exc:
            warn_once(
                ("fsspec-write", self.url, type(exc)),
                f"FsspecCache({self.url!r}): a write failed, so results are not being stored "
                f"(they are still returned): {type(exc).__name__}: {exc}",
            )
            return
        if self._journal is not None:
            with self._lock:
                self._journal.append((key, blob))

    def _write_once(self, path: str, blob: bytes) -> None:
        if self._local:
            _link_into_place(path, blob)
            return
        fs = self._fs
        try:
            fs.pipe_file(path, blob, mode="create")
        except FileExistsError:
            return  # another writer got there first: its bytes stay
        except (NotImplementedError, TypeError, ValueError):  # no conditional create here
            if not fs.exists(path):
                fs.pipe_file(path, blob)

    def clear(self) -> None:
        """Delete every entry (and the records :meth:`Pipeline.explain_cache` reads)."""
        with contextlib.suppress(FileNotFoundError):
            self._fs.rm(self._root, recursive=True)
        self._fs.makedirs(self._root, exist_ok=True)
        self.records_epoch += 1

    def __len__(self) -> int:
        try:
            files = self._fs.find(self._root)
        except FileNotFoundError:
            return 0
        return sum(1 for f in files if "/records/" not in f and not f.endswith(".tmp"))

    def export_writes(self) -> list[tuple[bytes, Any]]:
        """Entries to relay to the caller: only for a one-process store (``memory://``)."""
        if self._journal is None:
            return []
        with self._lock:
            journal, self._journal = self._journal, []
        return list(journal)

    def import_writes(self, entries: list[tuple[bytes, Any]]) -> None:
        """Write entries a worker of a one-process store computed (already signed)."""
        for key, blob in entries:
            with contextlib.suppress(Exception):
                self._write_once(self._path(key), blob)

    # -- records (what explain_cache reads; not entries) -----------------------------------

    def put_record(self, key: bytes, value: Any) -> None:
        """Keep ``value`` under ``key`` in ``records/`` (replaced; failures ignored)."""
        blob = dump_entry(value, self._signer, key)
        path = f"{self._root}/records/{key.hex()}"
        with contextlib.suppress(Exception):
            if self._local:  # replaced atomically: a reader sees the old record or the new
                os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
                temporary = f"{path}.{uuid.uuid4().hex}.tmp"
                with open(temporary, "wb") as out:
                    out.write(blob)
                os.replace(temporary, path)
            else:
                self._fs.pipe_file(path, blob)

    def get_record(self, key: bytes) -> Any:
        """The record under ``key``, or ``None``."""
        try:
            blob = self._fs.cat_file(f"{self._root}/records/{key.hex()}")
            return load_entry(blob, self._signer, key)
        except Exception:
            return None

    def close(self) -> None:
        """Nothing to close (kept for symmetry with DiskCache)."""

    # -- pickling: settings and the secret; the child opens the store itself ----------------

    def __getstate__(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "storage_options": self.storage_options,
            "secret": self._secret,
            "key_source": self.key_source,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.url = state["url"]
        self.storage_options = state["storage_options"]
        self._secret = state["secret"]
        self.key_source = state["key_source"]
        self._open()
        self._journal = [] if self._relay else None

    def __repr__(self) -> str:
        return f"FsspecCache({self.url!r})"


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def _read_file(path: str) -> bytes | None:
    """The bytes of the file ``path`` (``None`` if missing), with the fewest system calls."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        chunks = [os.read(fd, _CHUNK)]
        while len(chunks[-1]) == _CHUNK:
            chunks.append(os.read(fd, _CHUNK))
    finally:
        os.close(fd)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


_CHUNK = 1 << 16


def _link_into_place(path: str, blob: bytes) -> None:
    """Write ``blob`` to ``path`` unless it exists: a private temporary file, hard-linked into
    place (of two writers the first wins; a reader never sees a part of an entry)."""
    if os.path.exists(path):
        return
    folder = os.path.dirname(path)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    temporary = os.path.join(folder, f".{uuid.uuid4().hex}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(blob)
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links: rename (last writer wins)
            if not os.path.exists(path):
                os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
