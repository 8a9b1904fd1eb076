"""DiskCache: across processes, under concurrent writers, with corrupt entries on disk."""

from __future__ import annotations

import pathlib
import pickle
import subprocess
import sys
import textwrap

import diskcache
import pytest
from cache_helpers import subprocess_env

from hypernodes import DiskCache, MemoryCache, Pipeline, node
from hypernodes.cache import CacheWarning

NODES = """
import os
from hypernodes import node

LOG = os.environ["CALL_LOG"]

def _log(name):
    with open(LOG, "a") as f:
        f.write(name + "\\n")

@node(output_name="tags")
def tag(x, labels):
    _log("tag")
    return sorted(labels | {str(x)})

@node(output_name="count")
def count(tags, options):
    _log("count")
    return len(tags) * options["k"]
"""

SCRIPT = """
import sys
from hypernodes import DiskCache, Pipeline
import xproc_nodes as m

cache = DiskCache(sys.argv[1])
pipeline = Pipeline([m.tag, m.count], cache=cache)
out = pipeline.map(
    {"x": list(range(int(sys.argv[2]))), "labels": {"b", "a", "c"}, "options": {"k": 2, "j": {"z", "y"}}},
    map_over="x",
)
print(sum(r["count"] for r in out), len(cache))
"""


def test_a_second_process_sees_the_first_ones_entries(tmp_path: pathlib.Path):
    (tmp_path / "xproc_nodes.py").write_text(NODES)
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    log = tmp_path / "calls.log"

    def run(n: int, seed: str) -> tuple[str, list[str]]:
        env = subprocess_env(str(tmp_path), CALL_LOG=str(log), PYTHONHASHSEED=seed)
        done = subprocess.run(
            [sys.executable, str(script), str(tmp_path / "cache"), str(n)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        calls = log.read_text().split() if log.exists() else []
        log.unlink(missing_ok=True)
        return done.stdout.strip(), calls

    assert run(5, "1") == ("40 10", ["tag", "count"] * 5)
    assert run(5, "2") == ("40 10", [])  # other hash seed, same keys: sets/dicts hash by content
    out, calls = run(7, "3")
    assert out == "56 14" and sorted(calls) == ["count", "count", "tag", "tag"]


def test_disk_cache_pickles_as_its_path_and_reopens(tmp_path: pathlib.Path):
    cache = DiskCache(tmp_path / "c")
    cache.set(b"k" * 18, {"v": 1})
    clone = pickle.loads(pickle.dumps(cache))
    assert clone.path == cache.path and clone._store is None
    assert clone.get_many([b"k" * 18]) == {b"k" * 18: {"v": 1}}
    code = textwrap.dedent(
        f"""
        import pickle, sys
        cache = pickle.loads({pickle.dumps(cache)!r})
        cache.set(b"c" * 18, [1, 2, 3])
        print(cache.get_many([b"k" * 18])[b"k" * 18]["v"])
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "1"
    assert cache.get_many([b"c" * 18]) == {b"c" * 18: [1, 2, 3]}


HAMMER = """
import random, sys, threading
from hypernodes import DiskCache

path, worker = sys.argv[1], int(sys.argv[2])
cache = DiskCache(path, timeout=120)
KEYS = 60

def value_for(k):
    size = 40_000 if k % 3 == 0 else 50  # some in files, some inline in SQLite
    return {"k": k, "payload": bytes([k % 251]) * size}

bad = []

def work(t):
    rng = random.Random(worker * 100 + t)
    for _ in range(40):
        k = rng.randrange(KEYS)
        key = k.to_bytes(18, "big")
        cache.set(key, value_for(k))
        probe = rng.randrange(KEYS)
        got = cache.get_many([probe.to_bytes(18, "big")])
        for value in got.values():
            if value != value_for(probe):
                bad.append(probe)

threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print(len(bad))
"""


def test_threads_and_processes_hammering_one_cache_lose_nothing(tmp_path: pathlib.Path):
    script = tmp_path / "hammer.py"
    script.write_text(HAMMER)
    path = tmp_path / "cache"
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(path), str(w)],
            env=subprocess_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(4)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
    assert [out.strip() for out, _ in outs] == ["0"] * 4  # no torn or wrong value read

    # every key any writer wrote is there, whole
    written = set()
    import random

    for worker in range(4):
        for t in range(8):
            rng = random.Random(worker * 100 + t)
            for _ in range(40):
                written.add(rng.randrange(60))
                rng.randrange(60)
    cache = DiskCache(path)
    keys = [k.to_bytes(18, "big") for k in sorted(written)]
    got = cache.get_many(keys)
    assert len(got) == len(written) == len(cache)
    for k in written:
        value = got[k.to_bytes(18, "big")]
        assert value["k"] == k and value["payload"] == bytes([k % 251]) * len(value["payload"])


def _pipeline(tmp_path: pathlib.Path, calls: list, size: int) -> Pipeline:
    @node(output_name="blob")
    def blob(x):
        calls.append(x)
        return bytes([x]) * size

    return Pipeline([blob], cache=DiskCache(tmp_path / "cache"))


def test_a_truncated_value_file_is_recomputed(tmp_path: pathlib.Path):
    calls: list = []
    pipeline = _pipeline(tmp_path, calls, 100_000)  # large: stored in its own file
    assert pipeline.run({"x": 7})["blob"] == bytes([7]) * 100_000
    files = [p for p in (tmp_path / "cache").rglob("*.val")]
    assert len(files) == 1
    files[0].write_bytes(files[0].read_bytes()[:5000])
    with pytest.warns(CacheWarning, match="corrupt entry"):
        assert pipeline.run({"x": 7})["blob"] == bytes([7]) * 100_000
    assert calls == [7, 7]
    assert pipeline.run({"x": 7})["blob"] == bytes([7]) * 100_000
    assert calls == [7, 7]  # the recomputed entry replaced the corrupt one


def test_a_corrupted_inline_value_is_recomputed(tmp_path: pathlib.Path):
    calls: list = []
    pipeline = _pipeline(tmp_path, calls, 10)  # small: stored inline in SQLite
    pipeline.run({"x": 3})
    raw = diskcache.Cache(str(tmp_path / "cache"))
    for key in list(raw.iterkeys()):
        blob = raw[key]
        raw[key] = blob[:-3] + b"zzz"  # same length, flipped bytes
    raw.close()
    with pytest.warns(CacheWarning, match="checksum"):
        assert pipeline.run({"x": 3}) == {"blob": bytes([3]) * 10}
    assert calls == [3, 3]


def test_clear_len_and_volume(tmp_path: pathlib.Path):
    calls: list = []
    pipeline = _pipeline(tmp_path, calls, 1000)
    pipeline.map({"x": [1, 2, 3]}, map_over="x")
    cache = pipeline.cache
    assert len(cache) == 3
    assert cache.volume() > 3000 and cache.size_bytes == cache.volume()
    cache.clear()
    assert len(cache) == 0
    pipeline.map({"x": [1, 2, 3]}, map_over="x")
    assert calls == [1, 2, 3, 1, 2, 3]


def test_memory_cache_entries_written_in_a_worker_copy_come_back():
    cache = MemoryCache()
    cache.set(b"a" * 18, [1])
    worker = pickle.loads(pickle.dumps(cache))  # what a worker process receives
    assert worker.get_many([b"a" * 18]) == {b"a" * 18: [1]}
    worker.set(b"b" * 18, {"x": 2})
    worker.set(b"c" * 18, 3)
    cache.import_writes(pickle.loads(pickle.dumps(worker.export_writes())))
    assert cache.get_many([b"b" * 18, b"c" * 18]) == {b"b" * 18: {"x": 2}, b"c" * 18: 3}
    assert worker.export_writes() == []


SQUARES: list = []


@node(output_name="sq")
def _square(x):
    SQUARES.append(x)
    return x * x


@pytest.mark.parametrize("kind", ["disk", "memory"])
def test_items_run_in_a_worker_process_are_hits_in_the_parent(tmp_path: pathlib.Path, kind: str):
    """The parallel map path: plan, items and context pickled to a process, entries kept."""
    cloudpickle = pytest.importorskip("cloudpickle")
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from cache_helpers import run_pickled_items

    from hypernodes.cache.item import prepare_call
    from hypernodes.engines.hypernodes import default_engine
    from hypernodes.execution.context import RunContext

    cache = DiskCache(tmp_path / "c") if kind == "disk" else MemoryCache()
    pipeline = Pipeline([_square], cache=cache)
    plan = pipeline.plan(None, frozenset({"x"}))
    items = [{"x": x} for x in range(6)]
    ctx = RunContext(default_engine(), cache, path=("pipeline",), items=(None,))
    ctx = prepare_call(plan, {}, ctx)  # the map call's cache data travels in the context
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        reply = pool.submit(run_pickled_items, cloudpickle.dumps((plan, items, ctx))).result(60)
    results, writes = cloudpickle.loads(reply)
    assert results == [{"sq": x * x} for x in range(6)]
    cache.import_writes(writes)
    SQUARES.clear()
    assert pipeline.map({"x": list(range(8))}, map_over="x") == [{"sq": x * x} for x in range(8)]
    assert SQUARES == [6, 7]
