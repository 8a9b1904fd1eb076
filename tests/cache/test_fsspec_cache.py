"""FsspecCache: one store for many machines - file://, memory:// and a real S3 server.

The conformance cases shared with DiskCache (results, hits, defaults, uncached nodes, threads)
run against every store through the ``make_cache`` fixture (tests/cache/conftest.py); this file
holds what is particular to FsspecCache: the key, write-once entries, tampered entries, errors
when the store cannot be reached, and worker processes writing directly.
"""

from __future__ import annotations

import os
import pathlib
import pickle
import subprocess
import sys
import textwrap
import warnings

import pytest
from cache_helpers import KEY, subprocess_env

import hypernodes
import hypernodes.cache
from hypernodes import FsspecCache, HypernodesEngine, Pipeline, node
from hypernodes.cache import CacheWarning
from hypernodes.cache.fsspec_store import KEY_ENV
from hypernodes.exceptions import CacheStoreError

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(params=["file", "memory", "s3"])
def store(request, tmp_path):
    """A factory ``store(key=KEY) -> FsspecCache`` on one fresh URL of one kind."""
    if request.param == "file":
        url, options = (tmp_path / "store").as_uri(), {}
    elif request.param == "memory":
        url, options = f"memory://{tmp_path.name}/store", {}
    else:
        server = request.getfixturevalue("s3_server")
        url, options = server.bucket_url(tmp_path.name), server.options
    return lambda key=KEY: FsspecCache(url, key=key, storage_options=options)


def test_exported_from_the_package_and_the_cache_package():
    assert hypernodes.FsspecCache is hypernodes.cache.FsspecCache is FsspecCache


def test_entries_are_write_once(store):
    cache = store()
    key = b"\x07" * 18
    cache.set(key, "first")
    cache.set(key, "second")  # the same key is the same result: never rewritten
    assert cache.get_many([key]) == {key: "first"}
    assert len(cache) == 1


class Boom:
    """Unpickling one of these creates the file ``marker``."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def _entry_path(cache: FsspecCache, key: bytes) -> str:
    return cache._path(key)


def test_a_tampered_entry_is_never_unpickled(store, tmp_path):
    marker = tmp_path / "unpickled"
    cache = store()
    key = b"\x08" * 18
    cache.set(key, "honest")
    path = _entry_path(cache, key)
    blob = cache._fs.cat_file(path)
    forged = blob[:19] + pickle.dumps(Boom(marker))  # a valid header, a payload not signed
    cache._fs.rm(path)
    cache._fs.pipe_file(path, forged)
    with pytest.warns(CacheWarning, match="authentication failed"):
        assert cache.get_many([key]) == {}
    assert not marker.exists()


def test_an_entry_written_with_another_key_says_so_and_how_to_share(store):
    key = b"\x09" * 18
    store(key=b"machine-a-secret-0123456789").set(key, 1)
    with pytest.warns(CacheWarning, match=r"different key.*HYPERNODES_CACHE_KEY"):
        assert store(key=b"machine-b-secret-0123456789").get_many([key]) == {}


def test_the_key_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "shared-by-every-machine-0123")
    first = FsspecCache(tmp_path.as_uri())
    first.set(b"\x01" * 18, "v")
    assert first.key_source == f"${KEY_ENV}"
    assert FsspecCache(str(tmp_path)).get_many([b"\x01" * 18]) == {b"\x01" * 18: "v"}


def test_construction_errors_are_named(tmp_path, s3_server):
    with pytest.raises(CacheStoreError, match="fewer than 16"):
        FsspecCache(tmp_path.as_uri(), key=b"short")
    with pytest.raises(CacheStoreError, match="not both"):
        FsspecCache(tmp_path.as_uri(), key=KEY, key_file=tmp_path / "k")
    with pytest.raises(CacheStoreError, match="cannot be reached"):
        FsspecCache("s3://no-such-bucket/cache", key=KEY, storage_options=s3_server.options)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(CacheStoreError, match="cannot be reached"):
        FsspecCache((blocker / "cache").as_uri(), key=KEY)
    with pytest.raises(CacheStoreError):
        FsspecCache("nosuchprotocol://x", key=KEY)


def test_a_failing_write_is_a_warning_and_the_result_is_returned(store, monkeypatch):
    cache = store()

    def refuse(*args, **kwargs):
        raise OSError("the store refuses writes")

    monkeypatch.setattr(cache, "_write_once", refuse)

    @node(output_name="y")
    def double(x):
        return 2 * x

    with pytest.warns(CacheWarning, match="a write failed"):
        assert Pipeline([double], cache=cache).run({"x": 4}) == {"y": 8}


def test_a_pickled_cache_reopens_its_store(store):
    cache = store()
    cache.set(b"\x02" * 18, [1, 2])
    copy = pickle.loads(pickle.dumps(cache))
    assert copy.get_many([b"\x02" * 18]) == {b"\x02" * 18: [1, 2]}


@node(output_name="pid")
def worker_pid(x: int) -> int:
    return os.getpid()


def test_parallel_workers_write_and_the_caller_hits(store):
    """Worker processes write their entries themselves (memory:// relays them); a later run in
    this process loads every item, so each item's pid is a worker's."""
    cache = store()
    with HypernodesEngine(map_executor="parallel", max_workers=2) as engine:
        first = Pipeline([worker_pid], cache=cache, engine=engine).map(
            {"x": list(range(12))}, map_over="x"
        )
    assert all(row["pid"] != os.getpid() for row in first)
    again = Pipeline([worker_pid], cache=store()).map({"x": list(range(12))}, map_over="x")
    assert again == first


HAMMER = """
import sys
from hypernodes import FsspecCache, Pipeline, node

@node(output_name="y")
def square(x):
    return {"x": x, "sq": x * x, "pad": bytes([x % 251]) * 2000}

options = eval(sys.argv[2])
cache = FsspecCache(sys.argv[1], key=b"conformance-key-" * 2, storage_options=options)
rows = Pipeline([square], cache=cache).map({"x": list(range(40))}, map_over="x")
bad = [r for r in rows if r["y"]["sq"] != r["y"]["x"] ** 2]
print(len(bad), len(rows))
"""


@pytest.mark.parametrize("kind", ["file", "s3"])
def test_processes_writing_the_same_keys_at_once_lose_nothing(kind, tmp_path, request):
    if kind == "file":
        url, options = (tmp_path / "shared").as_uri(), {}
    else:
        server = request.getfixturevalue("s3_server")
        url, options = server.bucket_url(tmp_path.name), server.options
    script = tmp_path / "hammer.py"
    script.write_text(textwrap.dedent(HAMMER))
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), url, repr(options)],
            env=subprocess_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=150) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in outs]
    assert [out.strip() for out, _ in outs] == ["0 40"] * 3
    cache = FsspecCache(url, key=KEY, storage_options=options)
    assert len(cache) == 40
    entries = [p for p in cache._fs.find(cache._root) if "/records/" not in p]
    keys = [bytes.fromhex(p.rsplit("/", 1)[1]) for p in entries]
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)  # every entry is whole and verifies
        found = cache.get_many(keys)
    assert sorted(v["x"] for v in found.values()) == list(range(40))


def test_file_url_and_plain_path_are_one_store(tmp_path: pathlib.Path):
    FsspecCache(tmp_path.as_uri(), key=KEY).set(b"\x03" * 18, "v")
    assert FsspecCache(str(tmp_path), key=KEY).get_many([b"\x03" * 18]) == {b"\x03" * 18: "v"}
