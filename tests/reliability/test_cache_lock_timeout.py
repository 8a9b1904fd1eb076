"""A lock another process holds past ``DiskCache(timeout=...)`` raises after that timeout."""

from __future__ import annotations

import pathlib
import time

import pytest
from cache_faults import LockHolder

import hypernodes.cache as hn_cache
from hypernodes import DiskCache, Pipeline, node
from hypernodes.exceptions import HyperNodesError

pytestmark = pytest.mark.usefixtures("fresh_cache_warnings")


@node(output_name="y")
def _inc(x: int) -> int:
    return x + 1


def _filled(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "cache"
    with DiskCache(path) as cache:
        Pipeline([_inc], cache=cache).run({"x": 0})
    return path


@pytest.mark.timeout(40)  # on the old code, opening waited 60 s whatever the timeout
def test_cache_lock_held_past_timeout_raises_when_opening(tmp_path: pathlib.Path):
    path = _filled(tmp_path)
    with LockHolder(path / "cache.db"):
        pipeline = Pipeline([_inc], cache=DiskCache(path, timeout=1))
        start = time.monotonic()
        with pytest.raises(hn_cache.CacheTimeout, match=r"timeout=1 s") as caught:
            pipeline.run({"x": 5})
        elapsed = time.monotonic() - start
    assert isinstance(caught.value, HyperNodesError) and str(path) in str(caught.value)
    assert not getattr(caught.value, "__notes__", [])  # not blamed on a node
    assert 0.9 <= elapsed < 20, elapsed


@pytest.mark.timeout(40)  # on the old code, a write retried forever
def test_cache_lock_held_past_timeout_raises_when_writing(tmp_path: pathlib.Path):
    path = _filled(tmp_path)
    cache = DiskCache(path, timeout=1)
    pipeline = Pipeline([_inc], cache=cache)
    assert pipeline.run({"x": 0}) == {"y": 1}  # opened before the lock is taken
    with LockHolder(path / "cache.db"):
        assert pipeline.run({"x": 0}) == {"y": 1}  # reads still work beside a writer (WAL)
        start = time.monotonic()
        with pytest.raises(hn_cache.CacheTimeout) as caught:
            pipeline.run({"x": 7})  # a miss: its write waits for the lock
        assert not getattr(caught.value, "__notes__", [])  # not blamed on node '_inc'
        elapsed = time.monotonic() - start
    assert 0.9 <= elapsed < 20, elapsed
    assert pipeline.run({"x": 7}) == {"y": 8}  # the lock is gone: business as usual
    cache.close()
