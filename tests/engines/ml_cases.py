"""Nodes, resources and pipelines for the resource, batch-node and hint tests.

They live in an importable module so that worker processes (``"parallel"``, Dask) import them by
reference, as they would a user's module.  A resource factory writes one line per build (and per
teardown) to a file named by its argument, so a test can count builds per process whatever
process built them.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from hypernodes import Pipeline, node, resource

# ---------------------------------------------------------------------------------------------
# A resource that reports its builds and teardowns


class Model:
    """A tiny stand-in for a model: a weight matrix and a mutable counter of calls."""

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self.pid = os.getpid()
        self.calls = 0

    def predict(self, x: float) -> float:
        self.calls += 1
        return x * self.scale


@resource
def counted_model(log: str, scale: float = 2.0):
    """Builds a :class:`Model`, writing ``build <pid>`` to ``log``; ``close <pid>`` at teardown."""
    with open(log, "a") as f:
        f.write(f"build {os.getpid()}\n")
    yield Model(scale)
    with open(log, "a") as f:
        f.write(f"close {os.getpid()}\n")


def log_lines(log: str | Path, kind: str) -> list[int]:
    """The pids of the ``kind`` lines (``"build"`` or ``"close"``) in ``log``."""
    path = Path(log)
    if not path.exists():
        return []
    lines = path.read_text().split()
    return [int(pid) for word, pid in zip(lines[::2], lines[1::2]) if word == kind]


@node(output_name="y")
def predict(x: float, model: Model) -> float:
    return model.predict(x)


@node(output_name="where")
def where(y: float, model: Model) -> tuple[int, int]:
    """The process this item ran in, and the pid the model was built in (they must match)."""
    return (os.getpid(), model.pid)


def model_pipeline() -> Pipeline:
    return Pipeline([predict, where], name="models")


# ---------------------------------------------------------------------------------------------
# Batch nodes and their per-item twins


@node(output_name="a")
def prepare(x: int) -> float:
    return float(x) + 0.5


@node(output_name="b", batch=True)
def scale_batch(a: list[float], factor: list[float]) -> list[float]:
    """A vectorised node: one numpy call for the whole batch."""
    return list(np.asarray(a) * np.asarray(factor))


@node(output_name="b")
def scale_item(a: float, factor: float) -> float:
    return a * factor


@node(output_name="c")
def finish(b: float, x: int) -> str:
    return f"{x}:{b:.2f}"


def batch_pipeline(factor: float = 3.0) -> Pipeline:
    return Pipeline([prepare, scale_batch, finish], name="batched").bind(factor=factor)


def item_pipeline(factor: float = 3.0) -> Pipeline:
    return Pipeline([prepare, scale_item, finish], name="per_item").bind(factor=factor)


@node(output_name=("lo", "hi"), batch=True)
def bounds_batch(a: list[float]) -> tuple[list[float], list[float]]:
    arr = np.asarray(a)
    return list(arr - 1), list(arr + 1)


@node(output_name="width")
def width(lo: float, hi: float) -> float:
    return hi - lo


@node(output_name="b")
def shifted(a: float, factor: float) -> float:
    return a + factor


@shifted.batch
def shifted_batch(a: list[float], factor: list[float]) -> list[float]:
    """The batch twin of ``shifted``: reports its batch sizes through the ``sizes`` list."""
    batch_sizes.append(len(a))
    return [value + f for value, f in zip(a, factor)]


batch_sizes: list[int] = []


@node(output_name="b", batch=True)
def fragile_batch(a: list[float], factor: list[float]) -> list[float]:
    """Fails the whole batch when it holds the item whose ``a`` is 4.5 (x == 4)."""
    if 4.5 in a:
        raise ValueError("a batch holding x=4 fails")
    return [value * f for value, f in zip(a, factor)]


@node(output_name="b", batch=True, resources={"batch_size": 4})
def sized_batch(a: list[float], factor: list[float], log: str) -> list[float]:
    """Writes each batch's size (and process) to the file ``log[0]``."""
    with open(log[0], "a") as f:
        f.write(f"{os.getpid()} {len(a)}\n")
    return [value * f for value, f in zip(a, factor)]


@node(output_name="emb", batch=True)
def embed_batch(a: list[float], model: Model) -> list[float]:
    """A batch node reading a resource: the model comes whole, the values as a list."""
    return [model.predict(value) for value in a]


# ---------------------------------------------------------------------------------------------
# A gauge of concurrent calls


class Gauge:
    """Counts calls in progress and remembers the most seen at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0

    def __enter__(self) -> Gauge:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        return self

    def __exit__(self, *exc: Any) -> None:
        with self.lock:
            self.now -= 1


GAUGE = Gauge()


@node(output_name="slow", resources={"max_concurrency": 2})
def limited_slow(x: int) -> int:
    with GAUGE:
        time.sleep(0.05)
    return x


@node(output_name="slow")
def unlimited_slow(x: int) -> int:
    with GAUGE:
        time.sleep(0.05)
    return x


@node(output_name="slow", resources={"max_concurrency": 2})
async def limited_async(x: int) -> int:
    import asyncio

    with GAUGE:
        await asyncio.sleep(0.05)
    return x


@node(output_name="pid", resources={"num_gpus": 1})
def on_gpu(x: int) -> int:
    """Pretends to use a GPU for a while; the process it ran in."""
    time.sleep(0.1)
    return os.getpid()


@node(output_name="pid")
def on_cpu(x: int) -> int:
    time.sleep(0.1)
    return os.getpid()
