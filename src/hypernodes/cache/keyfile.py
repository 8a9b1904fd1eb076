"""The secret that authenticates ``DiskCache`` entries: where it lives and how it is made.

The key lives outside any cache directory, in a per-user file: ``$HYPERNODES_CACHE_KEY_FILE`` if
set, else ``$XDG_CONFIG_HOME/hypernodes/cache.key``, else ``~/.config/hypernodes/cache.key``.  The
file is created on first use (32 random bytes, hex, mode 0600, in a 0700 folder) atomically, so
processes that start together agree on one key.
"""

from __future__ import annotations

import contextlib
import os
import uuid

#: environment variable naming the key file (overrides the per-user default)
KEY_FILE_ENV = "HYPERNODES_CACHE_KEY_FILE"
#: shortest secret accepted, in bytes
MIN_KEY_BYTES = 16


class KeyFileError(OSError):
    """The key file cannot be read or created, or holds too short a secret."""


def default_key_file() -> str:
    """The key file this process uses when a ``DiskCache`` is given no key of its own."""
    named = os.environ.get(KEY_FILE_ENV)
    if named:
        return os.path.abspath(os.path.expanduser(named))
    base = os.environ.get("XDG_CONFIG_HOME")
    if not base or not os.path.isabs(base):  # the XDG spec ignores relative paths
        base = os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "hypernodes", "cache.key")


def load_key(path: str) -> bytes:
    """The secret in the key file ``path``, creating the file first if it does not exist."""
    try:
        try:
            secret = _read(path)
        except FileNotFoundError:
            _create(path)
            secret = _read(path)
    except KeyFileError:
        raise
    except OSError as exc:
        raise KeyFileError(f"cannot read the cache key file {path!r}: {exc}") from exc
    if len(secret) < MIN_KEY_BYTES:
        raise KeyFileError(
            f"the cache key file {path!r} holds {len(secret)} bytes, fewer than "
            f"{MIN_KEY_BYTES}; delete it to have a new one made"
        )
    return secret


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read().strip()


def _create(path: str) -> None:
    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        # Write the whole key to a private temporary file, then link it into place: a reader
        # never sees a half-written key, and of two processes racing, the first link wins.
        tmp = os.path.join(folder, f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(os.urandom(32).hex().encode() + b"\n")
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another process made it first: use theirs
            except OSError:  # a file system without hard links
                if not os.path.exists(path):
                    os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    except OSError as exc:
        raise KeyFileError(
            f"cannot create the cache key file {path!r} ({exc}); set {KEY_FILE_ENV} to a "
            "writable path or pass DiskCache(key=...)"
        ) from exc


__all__ = ["KEY_FILE_ENV", "KeyFileError", "default_key_file", "load_key"]
