"""Core workloads: the sequential hot path of ``run`` and ``map``, huge maps and huge graphs."""

from __future__ import annotations

import gc
import time
import tracemalloc
import types

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
        "≤ 0.2 µs/node",
        per_node <= 0.2e-6,
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
        "≤ 1 µs/item",
        t_ours <= 1e-6,
    )


@node(output_name="sq")
def _sq(x: int) -> int:
    return x * x


@node(output_name="half")
def _half(sq: int) -> float:
    return sq / 2


def big_map(quick: bool) -> Result:
    n = 200_000 if quick else 1_000_000
    pipeline = Pipeline([_sq, _half], name="big")
    xs = list(range(n))

    def ours() -> list:
        return pipeline.map({"x": xs}, map_over="x")

    def bare() -> list:
        out = []
        for x in xs:
            sq = x * x
            out.append({"sq": sq, "half": sq / 2})
        return out

    t_ours = best_of(ours, 1 if quick else 3)
    t_bare = best_of(bare, 1 if quick else 3)
    peaks = []
    for fn in (ours, bare):
        tracemalloc.start()
        rows = fn()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        del rows
        peaks.append(peak / 2**20)
    mib, bare_mib = peaks
    per_item = t_ours / n
    return Result(
        f"{n // 1000}k-item map, 2 nodes",
        fmt_s(t_ours),
        fmt_s(t_bare),
        f"{per_item * 1e6:.2f} µs/item; peak {mib:.0f} MiB (bare rows {bare_mib:.0f} MiB)",
        "≤ 1 µs/item, memory ≈ bare (≤ 1.2x)",
        per_item <= 1e-6 and mib <= 1.2 * bare_mib,
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


def _distinct_functions(length: int) -> list[types.FunctionType]:
    """``f{i}(v{i}) -> v{i} + 1``: ``length`` distinct function objects, each with its own code
    (made by renaming the code of one template, so that making them is not what is timed)."""
    code = _inc.__code__
    made = []
    for i in range(length):
        name = f"f{i}"
        renamed = code.replace(co_varnames=(f"v{i}",), co_name=name, co_qualname=name)
        made.append(types.FunctionType(renamed, globals(), name))
    return made


def _build_and_run(functions: list[types.FunctionType]) -> float:
    length = len(functions)
    gc.collect()
    start = time.perf_counter()
    nodes = [node(f, output_name=f"v{i + 1}") for i, f in enumerate(functions)]
    result = Pipeline(nodes).run({"v0": 0}, output_name=f"v{length}")
    elapsed = time.perf_counter() - start
    assert result == {f"v{length}": length}
    return elapsed


def distinct_chain(quick: bool) -> Result:
    small, big = 10_000, 100_000
    t_small = min(_build_and_run(_distinct_functions(small)) for _ in range(3))
    functions = _distinct_functions(big)
    t_big = min(_build_and_run(functions) for _ in range(1 if quick else 2))
    growth = (t_big / big) / (t_small / small)

    def bare() -> None:
        v = 0
        for f in functions:
            v = f(v)

    return Result(
        "100k-node chain of distinct functions, build + run",
        fmt_s(t_big),
        fmt_s(best_of(bare, 3)),
        f"{t_big:.2f} s; per node {t_big / big * 1e6:.1f} µs, {growth:.2f}x that at 10k",
        "≤ 1.5 s, linear (≤ 1.15x)",
        t_big <= 1.5 and growth <= 1.15,
    )


def workloads() -> list[Workload]:
    return [
        Workload("50-node chain, run", chain_run),
        Workload("3 nodes, map 5000 items, sequential", three_node_map),
        Workload("1M-item map, 2 nodes", big_map),
        Workload("100k-node chain, build + run", huge_chain),
        Workload("100k-node chain of distinct functions, build + run", distinct_chain),
    ]
