"""Callback workloads: what a callback costs on the 3-node, 5000-item sequential map."""

from __future__ import annotations

from bench_core import _a, _b, _c
from common import Result, Workload, best_of, fmt_s

from hypernodes import Pipeline, PipelineCallback
from hypernodes.observe.callbacks import HOOKS

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


def workloads() -> list[Workload]:
    return [
        Workload("no-op callback, 3 nodes x 5000 items", no_op),
        Workload("callback handling all 13 hooks, 5000 items", every_hook),
    ]
