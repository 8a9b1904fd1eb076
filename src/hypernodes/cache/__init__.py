"""Content-addressed caching of node results.

``Pipeline(cache=DiskCache(path))`` or ``Pipeline(cache=MemoryCache())`` stores each node's
outputs under a signature of its code, environment and inputs, per map item; see docs/caching.md.
``register_hasher(type, fn)`` teaches the cache to hash a type it does not know.
"""

from .base import Cache, CacheWarning, CacheWriteError
from .disk import DiskCache
from .keys import Unhashable, register_hasher, value_digest, value_token
from .memory import MemoryCache

__all__ = [
    "Cache",
    "CacheWarning",
    "CacheWriteError",
    "DiskCache",
    "MemoryCache",
    "Unhashable",
    "register_hasher",
    "value_digest",
    "value_token",
]
