"""Value files no entry points to (a writer killed with -9, a deleted index) are reclaimed."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from cache_faults import LockHolder

from hypernodes import DiskCache

pytestmark = pytest.mark.usefixtures("fresh_cache_warnings")

WRITER = textwrap.dedent(
    """
    import sys
    from hypernodes import DiskCache

    cache = DiskCache(sys.argv[1], timeout=60)
    cache.set(b"w" * 18, b"small")  # opened before the lock is taken
    print("open", flush=True)
    sys.stdin.readline()
    cache.set(b"b" * 18, bytes(200_000))  # its value file is written, then the row waits
    print("stored", flush=True)
    """
)


def _values(path: pathlib.Path) -> set[pathlib.Path]:
    return set(path.rglob("*.val"))


def _orphan_from_a_killed_writer(path: pathlib.Path) -> pathlib.Path:
    """A real writer process, killed with SIGKILL between writing a value file and committing
    the row that points to it (another process holds the lock, so the row has to wait)."""
    before = _values(path)
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdin is not None
        assert writer.stdout.readline().strip() == "open", writer.stderr.read()  # type: ignore[union-attr]
        with LockHolder(path / "cache.db"):
            writer.stdin.write("go\n")
            writer.stdin.flush()
            deadline = time.monotonic() + 30
            while not (_values(path) - before) and time.monotonic() < deadline:
                time.sleep(0.02)
            os.kill(writer.pid, signal.SIGKILL)
            writer.wait(timeout=30)
    finally:
        if writer.poll() is None:
            writer.kill()
        writer.communicate(timeout=30)
    orphans = _values(path) - before
    assert len(orphans) == 1, "the writer did not leave its value file"
    return orphans.pop()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["clear", "reclaim"])
def test_cache_orphan_left_by_kill_9_is_reclaimed(tmp_path: pathlib.Path, how: str):
    path = tmp_path / "cache"
    cache = DiskCache(path)
    cache.set(b"k" * 18, bytes(100_000))
    kept = _values(path)
    orphan = _orphan_from_a_killed_writer(path)
    if how == "reclaim":
        assert cache.reclaim(older_than=0) == 1
        assert _values(path) == kept  # the file an entry points to stays
        assert cache.get_many([b"k" * 18]) == {b"k" * 18: bytes(100_000)}
    else:
        cache.clear()
        assert _values(path) == set()
    assert not orphan.exists()


def test_cache_value_files_of_a_deleted_index_are_reclaimed_on_open(tmp_path: pathlib.Path):
    path = tmp_path / "cache"
    with DiskCache(path) as cache:
        for i in range(3):
            cache.set(bytes([i]) * 18, bytes(50_000))
    assert len(_values(path)) == 3
    for index_file in path.glob("cache.db*"):
        index_file.unlink()
    cache = DiskCache(path)
    assert len(cache) == 0
    assert _values(path) == set()
    cache.set(b"n" * 18, bytes(60_000))
    assert len(_values(path)) == 1
