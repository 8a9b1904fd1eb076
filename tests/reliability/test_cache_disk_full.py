"""A full disk never costs the caller its results: failed writes are one warning, rows return.

On a real 2 MiB tmpfs (skipped, with the reason, where this machine cannot mount one) under every
map executor, including worker processes that write to the cache themselves; and simulated.
"""

from __future__ import annotations

import errno
import pathlib
import sqlite3
from collections.abc import Iterator

import diskcache
import pytest
from cache_faults import cache_messages, fill_disk

from hypernodes import DiskCache, HypernodesEngine, Pipeline, node

EXECUTORS = ["sequential", "threaded", "async", "parallel"]
ITEMS = list(range(40))
BIG = 100_000  # each output is its own value file: 40 of them overflow 2 MiB

pytestmark = pytest.mark.usefixtures("fresh_cache_warnings")


@node(output_name="blob")
def _blob(x: int) -> bytes:
    return bytes([x % 251]) * BIG


@node(output_name="size")
def _size(blob: bytes) -> int:
    return len(blob) + blob[0]


EXPECTED = [{"size": BIG + x % 251} for x in ITEMS]


@pytest.fixture(scope="module")
def engines() -> Iterator[dict[str, HypernodesEngine]]:
    """One engine per map executor for the module (worker processes start once)."""
    made = {name: HypernodesEngine(map_executor=name, max_workers=2) for name in EXECUTORS}
    yield made
    for engine in made.values():
        engine.shutdown()


def _map(cache: DiskCache, engine: HypernodesEngine) -> list[dict[str, int]]:
    pipeline = Pipeline([_blob, _size], cache=cache, engine=engine)
    return pipeline.map({"x": ITEMS}, map_over="x", output_name="size")


@pytest.mark.parametrize("executor", EXECUTORS)
def test_cache_disk_fills_up_during_a_map(
    small_disk: pathlib.Path, engines: dict[str, HypernodesEngine], executor: str
):
    cache = DiskCache(small_disk / "cache")
    with pytest.warns() as record:
        rows = _map(cache, engines[executor])
    assert rows == EXPECTED  # every row, although most writes failed
    stored = list((small_disk / "cache").rglob("*.val"))
    # some entries made it before the disk filled; failed writes left no partial value files
    assert 0 < len(stored) < len(ITEMS)
    messages = cache_messages(record)  # worker processes' warnings are relayed with their rows
    assert 1 <= len(messages) <= 2 and all("disk is full" in m for m in messages), messages
    cache.close()


@pytest.mark.parametrize("executor", EXECUTORS)
@pytest.mark.parametrize("state", ["new", "existing"])
def test_cache_disk_already_full_when_the_cache_opens(
    small_disk: pathlib.Path, engines: dict[str, HypernodesEngine], executor: str, state: str
):
    path = small_disk / "cache"
    if state == "existing":
        with DiskCache(path) as cache:
            cache.set(b"k" * 18, 1)
    fill_disk(small_disk)
    cache = DiskCache(path)
    with pytest.warns() as record:
        rows = _map(cache, engines[executor])
    assert rows == EXPECTED
    messages = cache_messages(record)  # worker processes' warnings are relayed with their rows
    assert messages and all("disk" in m or "cannot be opened" in m for m in messages)
    assert len(messages) <= 2, messages  # once for opening (or writing), not per item


# -- simulated: no mount needed -----------------------------------------------------------------


def _full_sqlite(*args: object, **kwargs: object) -> None:
    raise sqlite3.OperationalError("database or disk is full")


def _full_os(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("executor", ["sequential", "threaded", "async"])
@pytest.mark.parametrize("failure", [_full_sqlite, _full_os], ids=["sqlite", "enospc"])
def test_cache_simulated_full_disk_on_write(
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    engines: dict[str, HypernodesEngine],
    executor: str,
    failure: object,
):
    cache = DiskCache(tmp_path / "cache")
    cache.set(b"x" * 18, 0)  # opened
    monkeypatch.setattr(diskcache.Cache, "set", failure)
    with pytest.warns() as record:
        assert _map(cache, engines[executor]) == EXPECTED
    messages = cache_messages(record)
    assert len(messages) == 1 and "disk is full" in messages[0], messages
    monkeypatch.undo()
    assert len(cache) == 1  # nothing was stored


@pytest.mark.parametrize("executor", ["sequential", "threaded", "async"])
def test_cache_simulated_full_disk_on_open(
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    engines: dict[str, HypernodesEngine],
    executor: str,
):
    monkeypatch.setattr(diskcache.Cache, "__init__", _full_sqlite)
    cache = DiskCache(tmp_path / "cache")
    with pytest.warns() as record:
        assert _map(cache, engines[executor]) == EXPECTED
    messages = cache_messages(record)
    assert len(messages) == 1 and "cannot be opened" in messages[0], messages
    monkeypatch.undo()
    with pytest.raises(OSError):  # the cache itself, asked directly, says what is wrong
        monkeypatch.setattr(diskcache.Cache, "__init__", _full_sqlite)
        len(DiskCache(tmp_path / "other"))
