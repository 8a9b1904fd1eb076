"""ML workloads: a numpy-vectorised batch node against its per-item twin, and a large model held as
a resource under ``map_executor="parallel"`` (built once per worker, never shipped per item)
against the same model passed as a plain input."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
from common import Result, Workload, best_of, fmt_s

from hypernodes import HypernodesEngine, Pipeline, node, resource

# ---------------------------------------------------------------------------------------------
# A two-layer "model" scored per item, or for a batch of items at once

_RNG = np.random.default_rng(0)
W1 = _RNG.standard_normal((8, 16))
B1 = _RNG.standard_normal(16)
W2 = _RNG.standard_normal((16, 4))


def _features(v: np.ndarray) -> np.ndarray:
    """Eight features per value (rows: values)."""
    return np.stack([v, v * v, np.ones_like(v), v / 3, -v, np.sin(v), v + 1, v - 1], axis=-1)


@node(output_name="score")
def score(x: float) -> float:
    """The per-item version: a handful of small numpy calls for one value."""
    hidden = np.tanh(_features(np.asarray(x)) @ W1 + B1)
    return float((hidden @ W2).sum())


@score.batch
def score(x: list[float]) -> list[float]:  # the dual node keeps the name
    """The batch twin: the same numpy calls, once for the whole batch."""
    hidden = np.tanh(_features(np.asarray(x)) @ W1 + B1)
    return (hidden @ W2).sum(axis=1).tolist()


@node(output_name="score")
def score_item(x: float) -> float:
    hidden = np.tanh(_features(np.asarray(x)) @ W1 + B1)
    return float((hidden @ W2).sum())


BATCH = 4096


def batch_vs_per_item(quick: bool) -> Result:
    n = 20_000 if quick else 100_000
    xs = (np.arange(n) / n).tolist()
    per_item = Pipeline([score_item])
    batched = Pipeline([score])  # the dual node: its batch twin in maps
    repeat = 2 if quick else 3
    engine = HypernodesEngine(batch_size=BATCH)
    batched = batched.with_engine(engine)
    t_item = best_of(lambda: per_item.map({"x": xs}, map_over="x"), repeat)
    t_batch = best_of(lambda: batched.map({"x": xs}, map_over="x"), 3 * repeat)
    a = per_item.map({"x": xs[:1000]}, map_over="x", output_name="score")
    b = batched.map({"x": xs[:1000]}, map_over="x", output_name="score")
    assert np.allclose([r["score"] for r in a], [r["score"] for r in b])

    def bare() -> None:
        scores = (np.tanh(_features(np.asarray(xs)) @ W1 + B1) @ W2).sum(axis=1).tolist()
        [{"score": s} for s in scores]

    t_bare = best_of(bare, 3 * repeat)
    speedup = t_item / t_batch
    return Result(
        f"batch node vs per-item twin, {n // 1000}k items (batch {BATCH})",
        f"{fmt_s(t_batch)} (per item: {fmt_s(t_item)})",
        fmt_s(t_bare),
        f"{speedup:.0f}x faster, {t_batch / n * 1e6:.2f} µs/item",
        "≥ 20x",
        speedup >= 20,
    )


# ---------------------------------------------------------------------------------------------
# A 200 MB model under "parallel"

MODEL_FLOATS = 25_000_000  # 200 MB of float64


@resource
def big_model(log: str, size: int = MODEL_FLOATS) -> np.ndarray:
    with open(log, "a") as f:
        f.write(f"{os.getpid()}\n")
    return np.random.default_rng(1).standard_normal(size)


@node(output_name="y")
def apply_model(x: int, model: np.ndarray) -> float:
    return float(model[x % len(model)] * x)


def _sent_bytes(run) -> tuple[float, int]:
    """Seconds of ``run()`` and the bytes of items it sent to worker processes."""
    from hypernodes.execution.remote import PlanSpec

    original = PlanSpec.dump_items
    sent = [0]

    def counting(self, chunk, start, tokens=None):
        blob = original(self, chunk, start, tokens)
        sent[0] += len(blob)
        return blob

    PlanSpec.dump_items = counting  # type: ignore[method-assign]
    try:
        start = time.perf_counter()
        run()
        return time.perf_counter() - start, sent[0]
    finally:
        PlanSpec.dump_items = original  # type: ignore[method-assign]


def model_resource(quick: bool) -> Result:
    items = list(range(1000))
    size = MODEL_FLOATS // 10 if quick else MODEL_FLOATS
    with tempfile.TemporaryDirectory() as folder:
        log = str(Path(folder) / "builds.log")
        with HypernodesEngine(map_executor="parallel", max_workers=2) as engine:
            pipeline = Pipeline([apply_model], engine=engine)
            warm = Pipeline([score_item], engine=engine)
            warm.map({"x": [0.0, 1.0]}, map_over="x")  # the worker processes are started
            as_resource = pipeline.bind(model=big_model(log, size))
            t_res, b_res = _sent_bytes(lambda: as_resource.map({"x": items}, map_over="x"))
            builds = len(Path(log).read_text().split())
            t_again, _ = _sent_bytes(lambda: as_resource.map({"x": items}, map_over="x"))
            builds_after = len(Path(log).read_text().split())
            array = np.random.default_rng(1).standard_normal(size)
            as_input = pipeline.bind(model=array)
            t_in, b_in = _sent_bytes(lambda: as_input.map({"x": items}, map_over="x"))
    mb = size * 8 / 1e6
    return Result(
        f"{mb:.0f} MB model resource, parallel (2 workers), 1000 items",
        f"{fmt_s(t_res)} first, {fmt_s(t_again)} again; {b_res / 1e3:.0f} kB sent",
        f"as a plain input: {fmt_s(t_in)}, {b_in / 1e6:.0f} MB sent",
        f"built {builds}x (then {builds_after - builds} more)",
        "built 2x, not shipped",
        builds == 2 and builds_after == builds and b_res < 1e6,
    )


def workloads() -> list[Workload]:
    return [
        Workload("batch node vs per-item twin", batch_vs_per_item),
        Workload("200 MB model resource under parallel", model_resource),
    ]
