"""Cache workloads: a warm DiskCache map, and what caching costs on a cold run."""

from __future__ import annotations

import shutil
import tempfile
import time

from bench_core import _a, _b, _c
from common import Result, Workload, best_of, fmt_s

from hypernodes import DiskCache, FsspecCache, MemoryCache, Pipeline, node

N = 2000
BIG = 100_000


def _pipeline(cache: object = None) -> Pipeline:
    return Pipeline([_a, _b, _c], cache=cache, name="three")


def _bare(xs: list[int]) -> None:
    out = []
    for x in xs:
        a = _a.func(x)
        b = _b.func(a)
        out.append({"a": a, "b": b, "c": _c.func(a, b)})


def _timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def disk_warm(quick: bool) -> Result:
    xs = list(range(N))
    path = tempfile.mkdtemp(prefix="hn-bench-")
    try:
        expected = _pipeline().map({"x": xs}, map_over="x")
        with DiskCache(path) as cache:
            _pipeline(cache).map({"x": xs}, map_over="x")  # fill

        def warm() -> None:
            # a fresh DiskCache object each time: nothing is served from this process's memory
            with DiskCache(path) as cache:
                assert _pipeline(cache).map({"x": xs}, map_over="x") == expected

        per_item = best_of(warm, 3 if quick else 7) / N
    finally:
        shutil.rmtree(path, ignore_errors=True)
    bare = best_of(lambda: _bare(xs), 5) / N
    return Result(
        "3 nodes, map 2000 items, DiskCache warm",
        fmt_s(per_item) + "/item",
        fmt_s(bare) + "/item",
        f"{per_item * 1e6:.1f} µs/item",
        "≤ 25 µs/item",
        per_item <= 25e-6,
    )


def memory_cold(quick: bool) -> Result:
    xs = list(range(N))
    pipeline = _pipeline()
    pipeline.map({"x": xs}, map_over="x")
    repeat = 5 if quick else 15
    uncached = best_of(lambda: pipeline.map({"x": xs}, map_over="x"), repeat)
    cached = min(
        _timed(lambda: _pipeline(MemoryCache()).map({"x": xs}, map_over="x")) for _ in range(repeat)
    )
    ratio = cached / uncached
    return Result(
        "3 nodes, map 2000 items, MemoryCache cold",
        fmt_s(cached / N) + "/item",
        fmt_s(uncached / N) + "/item uncached",
        f"{ratio:.2f}x uncached",
        "≤ 2x uncached",
        ratio <= 2.0,
    )


def memory_warm(quick: bool) -> Result:
    xs = list(range(N))
    cache = MemoryCache()
    pipeline = _pipeline(cache)
    pipeline.map({"x": xs}, map_over="x")
    per_item = best_of(lambda: pipeline.map({"x": xs}, map_over="x"), 5 if quick else 15) / N
    bare = best_of(lambda: _bare(xs), 5) / N
    return Result(
        "3 nodes, map 2000 items, MemoryCache warm",
        fmt_s(per_item) + "/item",
        fmt_s(bare) + "/item",
        f"{per_item * 1e6:.1f} µs/item",
        "-",
        None,
    )


def disk_cold(quick: bool) -> Result:
    xs = list(range(N))
    pipeline = _pipeline()
    uncached = best_of(lambda: pipeline.map({"x": xs}, map_over="x"), 5)
    best = float("inf")
    for _ in range(2 if quick else 3):
        path = tempfile.mkdtemp(prefix="hn-bench-")
        try:
            with DiskCache(path) as cache:
                best = min(best, _timed(lambda c=cache: _pipeline(c).map({"x": xs}, map_over="x")))
        finally:
            shutil.rmtree(path, ignore_errors=True)
    return Result(
        "3 nodes, map 2000 items, DiskCache cold",
        fmt_s(best / N) + "/item",
        fmt_s(uncached / N) + "/item uncached",
        f"{best / uncached:.0f}x uncached ({best / N / 3 * 1e6:.0f} µs/write)",
        "-",
        None,
    )


def disk_cold_big(quick: bool) -> Result:
    n = 20_000 if quick else BIG
    xs = list(range(n))
    best = float("inf")
    for _ in range(1 if quick else 2):
        path = tempfile.mkdtemp(prefix="hn-bench-")
        try:
            with DiskCache(path) as cache:
                best = min(best, _timed(lambda c=cache: _pipeline(c).map({"x": xs}, map_over="x")))
        finally:
            shutil.rmtree(path, ignore_errors=True)
    per_item = best / n
    uncached = best_of(lambda: _pipeline().map({"x": xs}, map_over="x"), 3) / n
    return Result(
        f"3 nodes, map {n // 1000}k items, DiskCache cold",
        fmt_s(per_item) + "/item",
        fmt_s(uncached) + "/item uncached",
        f"{per_item * 1e6:.1f} µs/item",
        "≤ 30 µs/item",
        per_item <= 30e-6,
    )


def disk_warm_big(quick: bool) -> Result:
    n = 20_000 if quick else BIG
    xs = list(range(n))
    path = tempfile.mkdtemp(prefix="hn-bench-")
    try:
        expected = _pipeline().map({"x": xs}, map_over="x")
        with DiskCache(path) as cache:
            _pipeline(cache).map({"x": xs}, map_over="x")  # fill

        def warm() -> None:
            with DiskCache(path) as cache:  # a fresh object: nothing served from memory
                assert _pipeline(cache).map({"x": xs}, map_over="x") == expected

        per_item = best_of(warm, 2 if quick else 5) / n
    finally:
        shutil.rmtree(path, ignore_errors=True)
    bare = best_of(lambda: _bare(xs), 3) / n
    return Result(
        f"3 nodes, map {n // 1000}k items, DiskCache warm",
        fmt_s(per_item) + "/item",
        fmt_s(bare) + "/item",
        f"{per_item * 1e6:.1f} µs/item",
        "≤ 6 µs/item",
        per_item <= 6e-6,
    )


def fsspec_warm_big(quick: bool) -> Result:
    """FsspecCache on a local folder (``file://``): one file per entry, read back warm."""
    n = 20_000 if quick else BIG
    xs = list(range(n))
    path = tempfile.mkdtemp(prefix="hn-bench-")
    key = b"benchmark-secret" * 2
    try:
        expected = _pipeline().map({"x": xs}, map_over="x")
        _pipeline(FsspecCache(f"file://{path}", key=key)).map({"x": xs}, map_over="x")  # fill

        def warm() -> None:  # a fresh object each time: nothing served from memory
            cache = FsspecCache(f"file://{path}", key=key)
            assert _pipeline(cache).map({"x": xs}, map_over="x") == expected

        per_item = best_of(warm, 2 if quick else 3) / n
    finally:
        shutil.rmtree(path, ignore_errors=True)
    bare = best_of(lambda: _bare(xs), 3) / n
    return Result(
        f"3 nodes, map {n // 1000}k items, FsspecCache file:// warm",
        fmt_s(per_item) + "/item",
        fmt_s(bare) + "/item",
        f"{per_item * 1e6:.1f} µs/item",
        "≤ 30 µs/item",
        per_item <= 30e-6,
    )


def memory_cold_overhead(quick: bool) -> Result:
    n = 20_000
    xs = list(range(n))
    pipeline = _pipeline()
    pipeline.map({"x": xs}, map_over="x")
    repeat = 3 if quick else 10
    uncached = best_of(lambda: pipeline.map({"x": xs}, map_over="x"), repeat)
    cached = best_of(lambda: _pipeline(MemoryCache()).map({"x": xs}, map_over="x"), repeat)
    per_node = (cached - uncached) / n / 3
    return Result(
        "MemoryCache cold overhead, 3 nodes x 20k items",
        fmt_s(cached / n) + "/item",
        fmt_s(uncached / n) + "/item uncached",
        f"{per_node * 1e6:.2f} µs/node",
        "≤ 1.0 µs/node",
        per_node <= 1.0e-6,
    )


# ---------------------------------------------------------------------------------------------
# A retrieval evaluation, three levels deep: eval maps over queries, each query maps over docs.


@node(output_name="score")
def _score(query: str, doc: str) -> float:
    counts: dict[str, int] = {}
    for word in doc.split():
        counts[word] = counts.get(word, 0) + 1
    return sum(counts.get(word, 0) / (1 + counts.get(word, 0)) for word in query.split())


@node(output_name="ranked")
def _rank(scores: list[float]) -> list[int]:
    return sorted(range(len(scores)), key=scores.__getitem__, reverse=True)[:10]


@node(output_name="hit")
def _hit(ranked: list[int], relevant: int) -> float:
    return float(relevant in ranked)


@node(output_name="recall")
def _recall(hits: list[float]) -> float:
    return sum(hits) / len(hits)


def retrieval_eval(cache: object = None) -> Pipeline:
    """``recall`` of 20 queries over 300 docs: eval > per query (map) > per doc (map)."""
    per_doc = Pipeline([_score], name="per_doc")
    per_query = Pipeline(
        [
            per_doc.as_node(
                input_mapping={"docs": "doc"},
                output_mapping={"score": "scores"},
                map_over="docs",
                name="score_docs",
            ),
            _rank,
            _hit,
        ],
        name="per_query",
    )
    each = per_query.as_node(
        input_mapping={"queries": "query", "relevants": "relevant"},
        output_mapping={"hit": "hits"},
        map_over=["queries", "relevants"],
        name="each_query",
    )
    return Pipeline([each, _recall], cache=cache, name="eval")


def retrieval_inputs() -> dict[str, list]:
    words = [f"w{i}" for i in range(500)]
    docs = [" ".join(words[(d * 7 + k * k) % 500] for k in range(40)) for d in range(300)]
    queries = [" ".join(words[(q * 5 + k * 3) % 500] for k in range(5)) for q in range(20)]
    return {"queries": queries, "relevants": [(q * 13) % 300 for q in range(20)], "docs": docs}


def nested_warm(quick: bool) -> Result:
    inputs = retrieval_inputs()
    expected = retrieval_eval().run(inputs, output_name="recall")
    repeat = 3 if quick else 7
    uncached = best_of(lambda: retrieval_eval().run(inputs, output_name="recall"), repeat)
    path = tempfile.mkdtemp(prefix="hn-bench-")
    try:
        with DiskCache(path) as cache:
            retrieval_eval(cache).run(inputs, output_name="recall")  # fill

        def warm() -> None:
            with DiskCache(path) as cache:  # a fresh object: nothing served from memory
                assert retrieval_eval(cache).run(inputs, output_name="recall") == expected

        t_warm = best_of(warm, repeat)
    finally:
        shutil.rmtree(path, ignore_errors=True)
    ratio = t_warm / uncached
    return Result(
        "nested retrieval eval (20 q x 300 docs, 3 levels), DiskCache warm",
        fmt_s(t_warm),
        fmt_s(uncached) + " (no cache)",
        f"{ratio:.2f}x the no-cache run",
        "≤ 0.5x no cache",
        ratio <= 0.5,
    )


def workloads() -> list[Workload]:
    return [
        Workload("3 nodes, map 2000 items, DiskCache warm", disk_warm),
        Workload("3 nodes, map 2000 items, DiskCache cold", disk_cold),
        Workload("3 nodes, map 2000 items, MemoryCache cold", memory_cold),
        Workload("3 nodes, map 2000 items, MemoryCache warm", memory_warm),
        Workload("MemoryCache cold overhead, 3 nodes x 20k items", memory_cold_overhead),
        Workload("3 nodes, map 100k items, DiskCache cold", disk_cold_big),
        Workload("3 nodes, map 100k items, DiskCache warm", disk_warm_big),
        Workload("3 nodes, map 100k items, FsspecCache file:// warm", fsspec_warm_big),
        Workload("nested retrieval eval, DiskCache warm", nested_warm),
    ]
