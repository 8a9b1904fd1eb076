"""``ProfileCallback``: wall time, CPU time and (when asked) peak memory of each node, summed over
every call of a run or a map, printed as a table.

CPU time is the calling thread's (``time.thread_time``) between the node's start and end events,
so it is measured where a node runs in the caller's process (sequential, threaded and async
executors).  Calls that ran in worker processes (``parallel``, Dask) arrive as relayed events:
they count for wall time and calls, and their CPU time is shown as unknown.  Peak memory uses
``tracemalloc`` (started for the call and stopped after it, unless it was already on): the most a
call allocated above what was allocated when it started; with nodes running at once in threads
their peaks overlap, so read it with a sequential node executor.
"""

from __future__ import annotations

import threading
import time
import tracemalloc
from dataclasses import dataclass
from typing import Any

from ..observe.callbacks import CallbackContext, PipelineCallback


@dataclass
class NodeProfile:
    """What one node cost over a call: ``calls``, ``wall`` and ``cpu`` seconds in all (``cpu``
    over ``cpu_calls``, the calls it could be measured for), and ``peak`` bytes (the largest
    of any call; None unless memory was asked for)."""

    node: str
    calls: int = 0
    wall: float = 0.0
    slowest: float = 0.0
    cpu: float = 0.0
    cpu_calls: int = 0
    peak: int | None = None

    @property
    def mean(self) -> float:
        """Mean wall time of a call."""
        return self.wall / self.calls if self.calls else 0.0


class ProfileCallback(PipelineCallback):
    """Adds up what each node costs (see the module docstring); ``memory=True`` also tracks peak
    memory.  ``stats`` maps ``"path > node"`` (the node's name at the top level) to its
    :class:`NodeProfile`; ``table()`` formats it; ``print_table()`` prints it."""

    def __init__(self, memory: bool = False) -> None:
        self.memory = memory
        self.stats: dict[str, NodeProfile] = {}
        self._open: dict[tuple[Any, ...], tuple[float, int]] = {}
        self._started_tracing = False
        self._depth = 0

    def _key(self, node: str, context: CallbackContext) -> str:
        return node if context.depth == 0 else " > ".join((*context.path[1:], node))

    def _enter(self, context: CallbackContext) -> None:
        if context.depth == 0:
            self._depth += 1
            if self.memory and self._depth == 1 and not tracemalloc.is_tracing():
                tracemalloc.start()
                self._started_tracing = True

    def _leave(self, context: CallbackContext) -> None:
        if context.depth == 0:
            self._depth -= 1
            if self._depth == 0 and self._started_tracing:
                tracemalloc.stop()
                self._started_tracing = False

    def on_pipeline_start(self, *, context: CallbackContext, **kwargs: Any) -> None:
        self._enter(context)

    def on_pipeline_end(self, *, context: CallbackContext, **kwargs: Any) -> None:
        self._leave(context)

    def on_map_start(self, *, context: CallbackContext, **kwargs: Any) -> None:
        self._enter(context)

    def on_map_end(self, *, context: CallbackContext, **kwargs: Any) -> None:
        self._leave(context)

    def on_node_start(self, *, node: str, context: CallbackContext, **kwargs: Any) -> None:
        if context.timestamp is not None:
            return  # relayed from a worker: its CPU time is not ours to measure
        base = 0
        if self.memory and tracemalloc.is_tracing():
            base = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
        key = (threading.get_ident(), context.path, context.items, node)
        self._open[key] = (time.thread_time(), base)

    def on_node_end(
        self, *, node: str, duration: float, context: CallbackContext, **kwargs: Any
    ) -> None:
        entry = self.stats.get(self._key(node, context))
        if entry is None:
            entry = self.stats[self._key(node, context)] = NodeProfile(self._key(node, context))
        entry.calls += 1
        entry.wall += duration
        entry.slowest = max(entry.slowest, duration)
        if context.timestamp is not None:
            return
        opened = self._open.pop((threading.get_ident(), context.path, context.items, node), None)
        if opened is None:
            return
        cpu_start, base = opened
        # the thread's CPU time cannot pass the call's wall time; what does is the events' own
        entry.cpu += min(time.thread_time() - cpu_start, duration)
        entry.cpu_calls += 1
        if self.memory and tracemalloc.is_tracing():
            peak = max(tracemalloc.get_traced_memory()[1] - base, 0)
            entry.peak = max(entry.peak or 0, peak)

    def on_error(self, *, node: str | None, context: CallbackContext, **kwargs: Any) -> None:
        if node is not None:
            self._open.pop((threading.get_ident(), context.path, context.items, node), None)

    def table(self) -> str:
        """The stats as a text table, the node that took longest first."""
        header = ["node", "calls", "wall", "mean", "slowest", "cpu", "cpu/wall"]
        if self.memory:
            header.append("peak memory")
        rows = []
        for p in sorted(self.stats.values(), key=lambda p: p.wall, reverse=True):
            measured = p.cpu_calls == p.calls and p.calls > 0
            cpu = _seconds(p.cpu) if measured else "-"
            share = f"{100 * p.cpu / p.wall:.0f}%" if measured and p.wall > 0 else "-"
            row = [p.node, str(p.calls), _seconds(p.wall), _seconds(p.mean), _seconds(p.slowest)]
            row += [cpu, share]
            if self.memory:
                row.append(_bytes(p.peak))
            rows.append(row)
        widths = [
            max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
            for i, h in enumerate(header)
        ]
        lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        return "\n".join(lines)

    def print_table(self) -> None:
        """Print :meth:`table`."""
        print(self.table())


def _seconds(value: float) -> str:
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.1f} ms"
    return f"{value * 1e6:.0f} µs"


def _bytes(value: int | None) -> str:
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{value} B"
