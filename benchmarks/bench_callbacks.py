"""Callback workloads: what a callback costs on the 3-node, 5000-item sequential map."""

from __future__ import annotations

import gc
import tempfile
import time

from bench_core import _a, _b, _c
from common import Result, Workload, best_of, fmt_s

from hypernodes import Pipeline, PipelineCallback
from hypernodes.observe.callbacks import HOOKS
from hypernodes.telemetry.runlog import RunLog

N = 5000


class Quiet(PipelineCallback):
    """A callback that overrides nothing: it handles no event."""


# A callback that handles every event and does nothing with it.
Listening = type("Listening", (PipelineCallback,), {h: lambda self, **kw: None for h in HOOKS})


def _per_item(callbacks: list[PipelineCallback] | None, quick: bool) -> float:
    pipeline = Pipeline([_a, _b, _c], callbacks=callbacks)
    xs = list(range(N))
    return best_of(lambda: pipeline.map({"x": xs}, map_over="x"), 3 if quick else 7) / N


def no_op(quick: bool) -> Result:
    bare = _per_item(None, quick)
    ours = _per_item([Quiet()], quick)
    ratio = ours / bare
    return Result(
        "no-op callback, 3 nodes x 5000 items",
        fmt_s(ours) + "/item",
        fmt_s(bare) + "/item (no callback)",
        f"{ratio:.2f}x callback-free",
        "≤ 3x",
        ratio <= 3,
    )


def every_hook(quick: bool) -> Result:
    bare = _per_item(None, quick)
    ours = _per_item([Listening()], quick)
    events = 2 + 2 * 3  # item start/end, node start/end per node
    return Result(
        "callback handling all 13 hooks, 5000 items",
        fmt_s(ours) + "/item",
        fmt_s(bare) + "/item (no callback)",
        f"{ours / bare:.1f}x, {(ours - bare) / events * 1e6:.2f} µs/event",
        "-",
        None,
    )


class SameHooks(PipelineCallback):
    """A callback on the hooks the run log handles, doing nothing: what the events cost."""

    def on_map_start(self, **kwargs):
        pass

    def on_map_end(self, **kwargs):
        pass

    def on_node_end(self, **kwargs):
        pass

    def on_map_item_end(self, **kwargs):
        pass


def _cpu_of(fn) -> float:
    """The CPU time of this process (every thread: the run log's writer too) during ``fn()``;
    other processes on a busy machine do not count, as they would in wall time."""
    gc.collect()
    gc.disable()
    try:
        start = time.process_time()
        fn()
        return time.process_time() - start
    finally:
        gc.enable()


def run_log(quick: bool) -> Result:
    """The run log's own cost per event, in CPU time of the process: a map with ``RunLog``
    (rows written to SQLite by its writer thread, the final write inside the timing) against the
    same map with a no-op callback on the same hooks (so the events both need are not counted);
    also shown against no callback at all."""
    xs = list(range(N))
    with tempfile.TemporaryDirectory() as folder:
        log = RunLog(folder)
        maps = {
            "logged": Pipeline([_a, _b, _c], callbacks=[log]),
            "same": Pipeline([_a, _b, _c], callbacks=[SameHooks()]),
            "bare": Pipeline([_a, _b, _c]),
        }
        best = dict.fromkeys(maps, float("inf"))
        for _ in range(3 if quick else 9):  # interleaved, so a busy machine hits all alike
            for name, pipeline in maps.items():
                spent = _cpu_of(lambda p=pipeline: p.map({"x": xs}, map_over="x"))
                best[name] = min(best[name], spent / N)
        log.close()
    per_event = (best["logged"] - best["same"]) / 4  # 3 on_node_end, 1 on_map_item_end per item
    over_bare = (best["logged"] - best["bare"]) / 4
    return Result(
        "run log (SQLite), 3 nodes x 5000 items",
        fmt_s(best["logged"]) + "/item (CPU)",
        fmt_s(best["same"]) + "/item (CPU, no-op on the same hooks)",
        f"{per_event * 1e6:.2f} µs/event ({over_bare * 1e6:.2f} over no callback)",
        "≤ 3 µs/event",
        per_event <= 3e-6,
    )


def workloads() -> list[Workload]:
    return [
        Workload("no-op callback, 3 nodes x 5000 items", no_op),
        Workload("callback handling all 13 hooks, 5000 items", every_hook),
        Workload("run log (SQLite), 3 nodes x 5000 items", run_log),
    ]
