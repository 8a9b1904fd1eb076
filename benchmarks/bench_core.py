"""Core workloads: the sequential hot path of ``run`` and ``map``, huge maps and huge graphs."""

from __future__ import annotations

import time
import tracemalloc

from common import Result, Workload, best_of, fmt_s

from hypernodes import Pipeline, node


def _inc(x: int) -> int:
    return x + 1


def chain(length: int) -> Pipeline:
    """``v0 -> v1 -> ... -> v{length}``: one trivial node per link."""
    base = node(_inc, output_name="v1")
    nodes = [base.with_inputs(x=f"v{i}").with_output(f"v{i + 1}") for i in range(length)]
    return Pipeline(nodes, name=f"chain{length}")


def chain_run(quick: bool) -> Result:
    length, calls = 50, 2000 if quick else 20000
    pipeline = chain(length)
    inputs = {"v0": 0}
    last = f"v{length}"
    pipeline.run(inputs, output_name=last)  # compile once

    def ours() -> None:
        for _ in range(calls):
            pipeline.run(inputs, output_name=last)

    def bare() -> None:
        for _ in range(calls):
            v = 0
            for _ in range(length):
                v = _inc(v)

    t_ours = best_of(ours, 5) / calls
    t_bare = best_of(bare, 5) / calls
    per_node = (t_ours - t_bare) / length
    return Result(
        "50-node chain, run",
        fmt_s(t_ours) + "/run",
        fmt_s(t_bare) + "/run",
        f"{per_node * 1e6:.2f} µs/node overhead",
        "≤ 1.5 µs/node",
        per_node <= 1.5e-6,
    )


@node(output_name="a")
def _a(x: int) -> int:
    return x + 1


@node(output_name="b")
def _b(a: int) -> int:
    return a * 2


@node(output_name="c")
def _c(a: int, b: int) -> int:
    return a + b


def three_node_map(quick: bool) -> Result:
    n = 5000
    pipeline = Pipeline([_a, _b, _c], name="three")
    xs = list(range(n))

    def ours() -> None:
        pipeline.map({"x": xs}, map_over="x")

    def bare() -> None:
        out = []
        for x in xs:
            a = _a.func(x)
            b = _b.func(a)
            out.append({"a": a, "b": b, "c": _c.func(a, b)})

    t_ours = best_of(ours, 3 if quick else 10) / n
    t_bare = best_of(bare, 3 if quick else 10) / n
    return Result(
        "3 nodes, map 5000 items, sequential",
        fmt_s(t_ours) + "/item",
        fmt_s(t_bare) + "/item",
        f"{t_ours * 1e6:.2f} µs/item",
        "≤ 6 µs/item",
        t_ours <= 6e-6,
    )


@node(output_name="sq")
def _sq(x: int) -> int:
    return x * x


@node(output_name="half")
def _half(sq: int) -> float:
    return sq / 2


def big_map(quick: bool) -> Result:
    n = 200_000
    pipeline = Pipeline([_sq, _half], name="big")
    xs = list(range(n))

    def ours() -> None:
        pipeline.map({"x": xs}, map_over="x")

    def bare() -> None:
        out = []
        for x in xs:
            sq = x * x
            out.append({"sq": sq, "half": sq / 2})

    t_ours = best_of(ours, 1 if quick else 3)
    t_bare = best_of(bare, 1 if quick else 3)
    tracemalloc.start()
    pipeline.map({"x": xs}, map_over="x")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    mib = peak / 2**20
    return Result(
        "200k-item map, 2 nodes",
        fmt_s(t_ours),
        fmt_s(t_bare),
        f"{t_ours:.2f} s, {mib:.0f} MiB peak",
        "≤ 1.5 s, ≤ 120 MiB",
        t_ours <= 1.5 and mib <= 120,
    )


def huge_chain(quick: bool) -> Result:
    length = 100_000
    start = time.perf_counter()
    pipeline = chain(length)
    result = pipeline.run({"v0": 0}, output_name=f"v{length}")
    elapsed = time.perf_counter() - start
    assert result == {f"v{length}": length}

    def bare() -> None:
        v = 0
        for _ in range(length):
            v = _inc(v)

    return Result(
        "100k-node chain, build + run",
        fmt_s(elapsed),
        fmt_s(best_of(bare, 3)),
        f"{elapsed:.2f} s",
        "≤ 2 s, no RecursionError",
        elapsed <= 2.0,
    )


def workloads() -> list[Workload]:
    return [
        Workload("50-node chain, run", chain_run),
        Workload("3 nodes, map 5000 items, sequential", three_node_map),
        Workload("200k-item map, 2 nodes", big_map),
        Workload("100k-node chain, build + run", huge_chain),
    ]
