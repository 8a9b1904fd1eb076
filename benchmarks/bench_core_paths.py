"""Workloads of the execution core: dataflow of an unequal diamond, imap of 1M items in bounded
memory, and what the retry and timeout layers cost when nothing goes wrong."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

from common import Result, Workload, best_of, fmt_s

from hypernodes import HypernodesEngine, Pipeline, node

SRC = str(Path(__file__).resolve().parents[1] / "src")


# ---------------------------------------------------------------------------------------------
# Unequal diamond: a 0.5 s branch beside a 0 s -> 0.5 s chain


@node(output_name="a")
def slow_branch(x: int) -> int:
    time.sleep(0.5)
    return x


@node(output_name="b")
def quick_start(x: int) -> int:
    return x


@node(output_name="c")
def slow_after_quick(b: int) -> int:
    time.sleep(0.5)
    return b


@node(output_name="d")
def join(a: int, c: int) -> int:
    return a + c


def unequal_diamond(quick: bool) -> Result:
    with HypernodesEngine(node_executor="threaded") as engine:
        pipeline = Pipeline([slow_branch, quick_start, slow_after_quick, join], engine=engine)
        pipeline.run({"x": 0})
        t_ours = best_of(lambda: pipeline.run({"x": 1}), 2 if quick else 3)
    critical = 0.5
    return Result(
        "unequal diamond, node_executor=threaded",
        fmt_s(t_ours),
        fmt_s(critical),
        f"{t_ours / critical:.3f} x critical path (by generations: 2 x)",
        "≤ 1.05 x critical path",
        t_ours <= 1.05 * critical,
    )


# ---------------------------------------------------------------------------------------------
# imap of 1M items from a generator: peak memory over the interpreter's baseline

IMAP_SCRIPT = textwrap.dedent(
    """
    import sys, time, tracemalloc
    from hypernodes import Pipeline, node

    @node(output_name="y")
    def inc(x):
        return x + 1

    @node(output_name="z")
    def dbl(y):
        return 2 * y

    n = int(sys.argv[1])
    pipeline = Pipeline([inc, dbl])
    pipeline.run({"x": 0})

    def stream():
        total = 0
        for _, row in pipeline.imap({"x": iter(range(n))}, map_over="x"):
            total += row["z"]
        assert total == sum(2 * (x + 1) for x in range(n))

    start = time.perf_counter()
    stream()
    took = time.perf_counter() - start
    tracemalloc.start()  # a second pass, traced: the peak of what Python allocated meanwhile
    stream()
    peak = tracemalloc.get_traced_memory()[1]
    print(took, peak / 2**20)
    """
)


def imap_million(quick: bool) -> Result:
    n = 200_000 if quick else 1_000_000
    done = subprocess.run(
        [sys.executable, "-c", IMAP_SCRIPT, str(n)],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": SRC, "PATH": ""},
    )
    took, grown_mib = (float(v) for v in done.stdout.split())
    return Result(
        f"imap {n // 1000}k items from a generator, 2 nodes",
        fmt_s(took),
        "-",
        f"{took / n * 1e6:.2f} µs/item, peak +{grown_mib:.2f} MiB allocated",
        "≤ 50 MiB over baseline",
        grown_mib <= 50,
    )


# ---------------------------------------------------------------------------------------------
# Retry and timeout layers when no retry happens


def _chain(**options: object) -> Pipeline:
    nodes = []
    for i in range(50):

        def step(v: int) -> int:
            return v + 1

        nodes.append(
            node(output_name=f"v{i + 1}", name=f"s{i}", **options)(step).with_inputs(v=f"v{i}")
        )
    return Pipeline(nodes)


def retry_overhead(quick: bool) -> Result:
    plain, retried = _chain(), _chain(retries=3)
    repeat, runs = (3, 2_000) if quick else (5, 10_000)

    def many(pipeline: Pipeline):
        def go() -> None:
            for _ in range(runs):
                pipeline.run({"v0": 0})

        return go

    t_plain = best_of(many(plain), repeat) / runs
    t_retry = best_of(many(retried), repeat) / runs
    per_node = (t_retry - t_plain) / 50
    return Result(
        "50-node chain with retries=3, no retry happens",
        fmt_s(t_retry),
        fmt_s(t_plain) + " (no retries)",
        f"{per_node * 1e6:.3f} µs/node for the retry layer",
        "≤ 0.1 µs/node",
        per_node <= 0.1e-6,
    )


def workloads() -> list[Workload]:
    return [
        Workload("unequal diamond", unequal_diamond),
        Workload("imap 1M", imap_million),
        Workload("retry layer overhead", retry_overhead),
    ]
