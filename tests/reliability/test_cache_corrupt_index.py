"""An unreadable ``cache.db`` is a cold cache: moved aside, rebuilt, one warning, results intact."""

from __future__ import annotations

import os
import pathlib

import pytest
from cache_faults import cache_messages

from hypernodes import DiskCache, Pipeline, node

ITEMS = list(range(300))

pytestmark = pytest.mark.usefixtures("fresh_cache_warnings")


def _pipeline(cache: DiskCache, calls: list[int]) -> Pipeline:
    @node(output_name="y")
    def double(x: int) -> int:
        calls.append(x)
        return 2 * x

    return Pipeline([double], cache=cache)


def _damage(data: bytes, how: str) -> bytes:
    if how == "garbage":
        return os.urandom(len(data))
    if how == "truncated":
        return data[: len(data) // 3]
    if how == "bad_header":
        return b"NOT AN SQLITE DB" + data[16:]
    if how == "damaged_pages":  # the header reads fine; table pages are garbage
        half = len(data) // 2
        return data[:half] + os.urandom(len(data) - half)
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["garbage", "truncated", "bad_header", "damaged_pages"])
def test_cache_corrupt_index_is_moved_aside_and_rebuilt(tmp_path: pathlib.Path, how: str):
    path = tmp_path / "cache"
    calls: list[int] = []
    with DiskCache(path) as cache:
        _pipeline(cache, calls).map({"x": ITEMS}, map_over="x")
    db = path / "cache.db"
    damaged = _damage(db.read_bytes(), how)
    db.write_bytes(damaged)

    calls.clear()
    cache = DiskCache(path)
    with pytest.warns() as record:
        rows = _pipeline(cache, calls).map({"x": ITEMS}, map_over="x")
    assert rows == [{"y": 2 * x} for x in ITEMS]  # the run is not lost, no node is blamed
    assert calls == ITEMS  # a cold cache: everything recomputed
    messages = cache_messages(record)
    assert len(messages) == 1 and "unreadable" in messages[0], messages
    aside = sorted(p.name for p in path.glob("cache.db.corrupt-*"))
    assert aside and aside[0] in messages[0]
    kept = (path / aside[0]).read_bytes()  # kept for inspection, not deleted
    if how == "damaged_pages":  # opening it checkpointed a few pages before the damage showed
        assert len(kept) == len(damaged)
    else:
        assert kept == damaged

    calls.clear()
    assert _pipeline(DiskCache(path), calls).map({"x": ITEMS}, map_over="x") == rows
    assert calls == []  # the rebuilt index holds the recomputed entries

    cache.clear()  # clear() also removes the set-aside index
    assert not list(path.glob("cache.db.corrupt-*"))
