"""RayEngine on a local Ray (2 CPUs, loopback): 100k trivial items beside
``map_executor="parallel"`` in the same run."""

from __future__ import annotations

import os
import time

from common import Result, Workload, best_of, fmt_s

from hypernodes import HypernodesEngine, Pipeline, node


@node(output_name="a")
def inc(x: int) -> int:
    return x + 1


@node(output_name="b")
def dbl(a: int) -> int:
    return a * 2


@node(output_name="c")
def add(a: int, b: int) -> int:
    return a + b


def ray_vs_parallel(quick: bool) -> Result:
    name = "RayEngine 100k trivial items (local Ray, 2 CPUs) vs parallel"
    try:
        import ray  # noqa: F401
    except ImportError:
        return Result(name, "-", "-", "ray not installed (pip install -e '.[ray]')", "-", None)
    from hypernodes.engines import RayEngine

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    items = list(range(100_000))
    repeat = 2 if quick else 5
    with (
        RayEngine(num_cpus=2) as ray_engine,
        HypernodesEngine(map_executor="parallel", max_workers=2) as parallel,
    ):
        ours = Pipeline([inc, dbl, add], engine=ray_engine)
        theirs = Pipeline([inc, dbl, add], engine=parallel)
        start = time.perf_counter()
        ours.map({"x": items}, map_over="x")
        t_cold = time.perf_counter() - start  # includes starting Ray
        theirs.map({"x": items}, map_over="x")
        t_ray = t_parallel = float("inf")
        for _ in range(repeat):
            t_ray = min(t_ray, best_of(lambda: ours.map({"x": items}, map_over="x"), 1))
            t_parallel = min(t_parallel, best_of(lambda: theirs.map({"x": items}, map_over="x"), 1))
    ratio = t_ray / t_parallel
    return Result(
        name,
        fmt_s(t_ray),
        fmt_s(t_parallel) + " (parallel)",
        f"{ratio:.2f} x parallel (first map with Ray start: {fmt_s(t_cold)})",
        "≤ 1.5 x parallel",
        ratio <= 1.5,
    )


def workloads() -> list[Workload]:
    return [Workload("RayEngine 100k trivial items vs parallel", ray_vs_parallel)]
