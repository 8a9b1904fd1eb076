"""Timing helpers shared by the benchmark modules."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """The fastest of ``repeat`` timed calls of ``fn``, in seconds (garbage collector paused)."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - start)
        finally:
            gc.enable()
    return best


@dataclass
class Result:
    """One row of the table: our number, bare Python's, the derived metric and its target."""

    name: str
    ours: str
    bare: str
    metric: str
    target: str
    ok: bool | None

    def cells(self) -> tuple[str, ...]:
        verdict = {True: "yes", False: "NO", None: "-"}[self.ok]
        return (self.name, self.ours, self.bare, self.metric, self.target, verdict)


@dataclass
class Workload:
    """A named measurement; ``measure(quick)`` returns its :class:`Result`."""

    name: str
    run: Callable[[bool], Result]

    def measure(self, quick: bool = False) -> Result:
        return self.run(quick)


def fmt_s(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"
