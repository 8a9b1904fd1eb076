"""Content-addressed caching of node results.

``Pipeline(cache=DiskCache(path))``, ``Pipeline(cache=FsspecCache(url))`` (one store for many
machines) or ``Pipeline(cache=MemoryCache())`` stores each node's
outputs under a signature of its code, environment and inputs, per map item; see docs/caching.md.
``register_hasher(type, fn)`` teaches the cache to hash a type it does not know.
"""

from . import code  # noqa: F401  (registers code digests as the tokens of callables)
from .base import Cache, CacheTimeout, CacheWarning, CacheWriteError
from .disk import DiskCache
from .explain import CacheReport, CacheRow
from .fsspec_store import FsspecCache
from .keyfile import default_key_file
from .keys import Unhashable, register_hasher, value_digest, value_token
from .memory import MemoryCache

__all__ = [
    "Cache",
    "CacheTimeout",
    "CacheWarning",
    "CacheReport",
    "CacheRow",
    "CacheWriteError",
    "DiskCache",
    "FsspecCache",
    "MemoryCache",
    "Unhashable",
    "default_key_file",
    "register_hasher",
    "value_digest",
    "value_token",
]
