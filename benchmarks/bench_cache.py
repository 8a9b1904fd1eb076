"""Cache workloads: a warm DiskCache map, and what caching costs on a cold run."""

from __future__ import annotations

import shutil
import tempfile
import time

from bench_core import _a, _b, _c
from common import Result, Workload, best_of, fmt_s

from hypernodes import DiskCache, MemoryCache, Pipeline

N = 2000


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


def workloads() -> list[Workload]:
    return [
        Workload("3 nodes, map 2000 items, DiskCache warm", disk_warm),
        Workload("3 nodes, map 2000 items, DiskCache cold", disk_cold),
        Workload("3 nodes, map 2000 items, MemoryCache cold", memory_cold),
        Workload("3 nodes, map 2000 items, MemoryCache warm", memory_warm),
    ]
