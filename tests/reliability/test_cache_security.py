"""Cache entries are authenticated with a key kept outside the cache; cache files are private."""

from __future__ import annotations

import os
import pathlib
import pickle
import stat
import subprocess
import sys
import textwrap
import time
from types import ModuleType

import diskcache
import pytest
import xxhash

from hypernodes import DiskCache, HypernodesEngine, MemoryCache, Pipeline, node
from hypernodes.cache import CacheWarning, base

pytestmark = pytest.mark.usefixtures("fresh_cache_warnings")


def _keyfile() -> ModuleType:
    from hypernodes.cache import keyfile

    return keyfile


class _Evil:
    """Unpickling this creates the file ``marker``: what an attacker's row would run."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, ...]:
        return (pathlib.Path.touch, (self.marker,))


def _forge(how: str, key: bytes, payload: bytes) -> bytes:
    if how == "checksum_only":  # the old entry format: an unkeyed checksum anyone can compute
        return b"HN1" + xxhash.xxh3_128_digest(payload) + payload
    if how == "wrong_key":  # the current format, signed without this machine's key
        return b"HN2" + base.EntrySigner(b"the attacker's own key!").tag(key, payload) + payload
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["checksum_only", "wrong_key"])
def test_cache_forged_entry_is_not_unpickled_and_is_recomputed(tmp_path: pathlib.Path, how: str):
    calls: list[int] = []

    @node(output_name="y")
    def triple(x: int) -> int:
        calls.append(x)
        return 3 * x

    path = tmp_path / "cache"
    pipeline = Pipeline([triple], cache=DiskCache(path))
    assert pipeline.run({"x": 2}) == {"y": 6}

    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Evil(marker))
    raw = diskcache.Cache(str(path))  # someone who can write the cache directory
    for key in list(raw.iterkeys()):
        raw[key] = _forge(how, key, payload)
    raw.close()

    pipeline = Pipeline([triple], cache=DiskCache(path))  # a later process
    with pytest.warns(CacheWarning, match="corrupt entry"):
        assert pipeline.run({"x": 2}) == {"y": 6}
    assert not marker.exists()  # the attacker's pickle never ran
    assert calls == [2, 2]  # a miss: recomputed ...
    assert pipeline.run({"x": 2}) == {"y": 6}
    assert calls == [2, 2]  # ... and the forged row replaced


def test_cache_entries_written_with_another_key_are_misses(tmp_path: pathlib.Path):
    ours = DiskCache(tmp_path / "cache", key=b"k" * 32)
    ours.set(b"a" * 18, {"v": 1})
    assert ours.get_many([b"a" * 18]) == {b"a" * 18: {"v": 1}}
    theirs = DiskCache(tmp_path / "cache", key=b"j" * 32)
    with pytest.warns(CacheWarning, match="authentication"):
        assert theirs.get_many([b"a" * 18]) == {}
    with pytest.raises(ValueError, match="at least 16 bytes"):
        DiskCache(tmp_path / "c2", key=b"short")


def test_cache_key_file_location_mode_and_override(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv(_keyfile().KEY_FILE_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    DiskCache(tmp_path / "c1").set(b"a" * 18, 1)
    made = tmp_path / "xdg" / "hypernodes" / "cache.key"
    assert stat.S_IMODE(made.stat().st_mode) == 0o600
    assert stat.S_IMODE(made.parent.stat().st_mode) == 0o700
    assert len(made.read_bytes().strip()) == 64  # 32 random bytes, hex

    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert _keyfile().default_key_file() == str(tmp_path / "home" / ".config/hypernodes/cache.key")

    monkeypatch.setenv(_keyfile().KEY_FILE_ENV, str(tmp_path / "shared.key"))
    (tmp_path / "shared.key").write_bytes(b"a secret shared by several machines\n")
    shared = DiskCache(tmp_path / "c2")
    shared.set(b"s" * 18, 2)
    same = DiskCache(tmp_path / "c2", key=b"a secret shared by several machines")
    assert same.get_many([b"s" * 18]) == {b"s" * 18: 2}
    assert not (tmp_path / "home").exists()  # nothing written to the home folder


RACE = textwrap.dedent(
    """
    import importlib.util, os, sys, time
    spec = importlib.util.spec_from_file_location("keyfile", sys.argv[1])
    keyfile = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(keyfile)
    while not os.path.exists(sys.argv[3]):
        time.sleep(0.001)
    print(keyfile.load_key(sys.argv[2]).decode())
    """
)


def test_cache_key_file_made_once_by_processes_starting_together(tmp_path: pathlib.Path):
    key_path = tmp_path / "cfg" / "hypernodes" / "cache.key"
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, _keyfile().__file__, str(key_path), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    time.sleep(0.3)
    go.touch()
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
    keys = {out.strip() for out, _ in outs}
    assert keys == {key_path.read_text().strip()}  # every process uses the one key
    assert sorted(p.name for p in key_path.parent.iterdir()) == ["cache.key"]  # no temp files


def test_cache_files_and_folders_are_private(tmp_path: pathlib.Path):
    old = os.umask(0o022)  # the usual umask, which would make them world-readable
    try:
        cache = DiskCache(tmp_path / "cache")
        cache.set(b"s" * 18, b"small")
        cache.set(b"b" * 18, bytes(100_000))  # its own value file, in new subfolders
        found = {
            p.relative_to(tmp_path / "cache"): p.stat().st_mode
            for p in (tmp_path / "cache").rglob("*")
        }
        top = stat.S_IMODE((tmp_path / "cache").stat().st_mode)
    finally:
        os.umask(old)
    assert top == 0o700
    names = {str(p) for p in found}
    assert {"cache.db", "cache.db-wal", "cache.db-shm"} <= names
    assert any(name.endswith(".val") for name in names)
    for rel, mode in found.items():
        expected = 0o700 if stat.S_ISDIR(mode) else 0o600
        assert stat.S_IMODE(mode) == expected, (rel, oct(mode))
    cache.close()


def test_cache_unusable_key_file_runs_uncached(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
):
    (tmp_path / "a_file").write_text("not a folder")
    monkeypatch.setenv(_keyfile().KEY_FILE_ENV, str(tmp_path / "a_file" / "cache.key"))
    calls: list[int] = []

    @node(output_name="y")
    def inc(x: int) -> int:
        calls.append(x)
        return x + 1

    pipeline = Pipeline([inc], cache=DiskCache(tmp_path / "cache"))
    with pytest.warns(CacheWarning, match="cache key file"):
        assert pipeline.run({"x": 1}) == {"y": 2}
    assert pipeline.run({"x": 1}) == {"y": 2}
    assert calls == [1, 1]


def test_cache_memory_cache_needs_no_key(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))

    @node(output_name="y")
    def inc(x: int) -> int:
        return x + 1

    pipeline = Pipeline([inc], cache=MemoryCache())
    assert pipeline.map({"x": [1, 2]}, map_over="x") == [{"y": 2}, {"y": 3}]
    assert not (tmp_path / "xdg").exists()


SQUARES: list[int] = []


@node(output_name="sq")
def _square(x: int) -> int:
    SQUARES.append(x)
    return x * x


def test_cache_worker_processes_sign_with_the_callers_key(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
):
    """Workers started with another environment still use the key this process resolved."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    cache = DiskCache(tmp_path / "cache")
    with HypernodesEngine(map_executor="parallel", max_workers=2) as engine:
        rows = Pipeline([_square], cache=cache, engine=engine).map({"x": [1, 2, 3]}, map_over="x")
    assert rows == [{"sq": 1}, {"sq": 4}, {"sq": 9}]
    SQUARES.clear()
    assert Pipeline([_square], cache=cache).map({"x": [1, 2, 3]}, map_over="x") == rows
    assert SQUARES == []  # every entry a worker wrote verifies here
