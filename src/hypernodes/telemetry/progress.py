"""``ProgressCallback``: live progress bars for runs and maps, or plain log lines off a terminal.

One bar per map (items done/total, rate, ETA) with one row per node beneath it; nested pipelines
are indented under their parent and share one bar per nested map however many times it runs; cache
hits are counted on each row.  In a terminal or Jupyter it draws with ``rich``; when the output is
not a terminal (CI logs, files) it prints a plain line at every tenth of a map and at the end.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from typing import IO, Any, Literal

from ..callbacks import CallbackContext, PipelineCallback

Mode = Literal["auto", "rich", "plain"]


@dataclass
class _Row:
    """Counts behind one bar: a map (items) or a node (calls and cache hits)."""

    label: str
    indent: int
    total: int = 0
    done: int = 0
    cached: int = 0
    task: Any = None
    logged_tenth: int = -1
    start: float = field(default_factory=time.perf_counter)


class ProgressCallback(PipelineCallback):
    """Shows how far runs and maps have come.

    ``mode="auto"`` draws bars with rich where the output is a terminal or a notebook and prints
    plain lines elsewhere; ``"rich"`` and ``"plain"`` force one.  ``file`` defaults to stderr.
    ``show_nodes=False`` keeps only the map bars.
    """

    def __init__(
        self, mode: Mode = "auto", file: IO[str] | None = None, show_nodes: bool = True
    ) -> None:
        if mode not in ("auto", "rich", "plain"):
            raise ValueError(f"mode must be 'auto', 'rich' or 'plain', got {mode!r}")
        self.mode = mode
        self.file = file
        self.show_nodes = show_nodes
        self._lock = threading.RLock()
        self._progress: Any = None
        self._rows: dict[tuple[Any, ...], _Row] = {}
        self._active = 0  # top-level calls in flight

    # -- lifecycle of the display -------------------------------------------------------------

    def _open(self) -> None:
        self._active += 1
        if self._active > 1:
            return
        self._rows = {}
        stream = self.file if self.file is not None else sys.stderr
        use_rich = self.mode == "rich"
        if self.mode == "auto":
            from rich.console import Console

            console = Console(file=stream)
            use_rich = console.is_terminal or console.is_jupyter
        if use_rich:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            console = Console(file=stream, force_terminal=self.mode == "rich" or None)
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(bar_width=30),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                console=console,
                transient=False,
                refresh_per_second=8,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._progress.start()
        else:
            self._progress = None
            self._stream = stream

    def _close(self) -> None:
        self._active -= 1
        if self._active > 0:
            return
        if self._progress is not None:
            self._refresh_all()
            self._progress.stop()
            self._progress = None
        else:
            for key, row in self._rows.items():
                if key[0] == "map" and row.indent == 0:
                    self._log(row, final=True)

    # -- rows ---------------------------------------------------------------------------------

    def _row(self, key: tuple[Any, ...], label: str, indent: int) -> _Row:
        row = self._rows.get(key)
        if row is None:
            row = self._rows[key] = _Row(label, indent)
            if self._progress is not None:
                row.task = self._progress.add_task(self._describe(row), total=None, rate="")
        return row

    def _describe(self, row: _Row) -> str:
        cached = f" [dim]({row.cached} cached)[/dim]" if row.cached else ""
        return "  " * row.indent + row.label + cached

    def _refresh(self, row: _Row) -> None:
        if self._progress is not None and row.task is not None:
            elapsed = time.perf_counter() - row.start
            rate = f"{row.done / elapsed:,.1f}/s" if elapsed > 0 and row.done else ""
            self._progress.update(
                row.task,
                description=self._describe(row),
                total=row.total or None,
                completed=row.done,
                rate=rate,
            )

    def _refresh_all(self) -> None:
        for row in self._rows.values():
            self._refresh(row)

    def _log(self, row: _Row, final: bool = False) -> None:
        elapsed = time.perf_counter() - row.start
        pct = 100 * row.done / row.total if row.total else 100.0
        rate = row.done / elapsed if elapsed > 0 else 0.0
        eta = (row.total - row.done) / rate if rate > 0 else 0.0
        cached = f", {row.cached} cached" if row.cached else ""
        tail = f"done in {elapsed:.1f}s" if final else f"{rate:,.1f} items/s, eta {eta:.0f}s"
        print(
            f"[hypernodes] {row.label}: {row.done}/{row.total} items ({pct:.0f}%){cached}, {tail}",
            file=self._stream,
            flush=True,
        )

    @staticmethod
    def _shape(context: CallbackContext) -> tuple[str, ...]:
        return context.path

    # -- hooks --------------------------------------------------------------------------------

    def on_pipeline_start(self, *, pipeline: str, inputs: Any, context: CallbackContext) -> None:
        with self._lock:
            if context.depth == 0:
                self._open()
            self._bump_nodes(context, 1)

    def on_pipeline_end(
        self, *, pipeline: str, outputs: Any, duration: float, context: CallbackContext
    ) -> None:
        with self._lock:
            if context.depth == 0:
                self._close()

    def on_map_start(self, *, pipeline: str, total: int, context: CallbackContext) -> None:
        with self._lock:
            if context.depth == 0:
                self._open()
            row = self._row(("map", context.path), f"{pipeline} (map)", context.depth)
            row.total += total
            self._bump_nodes(context, total)
            self._refresh(row)

    def on_map_end(
        self, *, pipeline: str, total: int, duration: float, context: CallbackContext
    ) -> None:
        with self._lock:
            row = self._rows.get(("map", context.path))
            if row is not None:
                self._refresh(row)
            if context.depth == 0:
                self._close()

    def on_map_item_end(self, *, index: int, duration: float, context: CallbackContext) -> None:
        with self._lock:
            row = self._rows.get(("map", context.path))
            if row is None:
                return
            row.done += 1
            self._refresh(row)
            if self._progress is None and row.indent == 0 and row.total:
                tenth = 10 * row.done // row.total
                if tenth > row.logged_tenth and row.done < row.total:
                    row.logged_tenth = tenth
                    self._log(row)

    def on_map_item_cached(self, *, index: int, context: CallbackContext) -> None:
        with self._lock:
            row = self._rows.get(("map", context.path))
            if row is not None:
                row.cached += 1

    def on_node_end(
        self, *, node: str, outputs: Any, duration: float, context: CallbackContext
    ) -> None:
        self._node_done(node, context, cached=False)

    def on_node_cached(self, *, node: str, signature: str, context: CallbackContext) -> None:
        self._node_done(node, context, cached=True)

    def on_error(self, *, node: str | None, error: BaseException, context: CallbackContext) -> None:
        if node is not None:
            self._node_done(node, context, cached=False)

    # -- node rows ----------------------------------------------------------------------------

    def _bump_nodes(self, context: CallbackContext, count: int) -> None:
        """``count`` more runs of the pipeline at this path: each node row expects that many more."""
        runs = self._rows.get(("runs", context.path))
        if runs is None:
            runs = self._rows[("runs", context.path)] = _Row("runs", context.depth)
        runs.total += count
        for key, row in self._rows.items():
            if key[0] == "node" and key[1] == context.path:
                row.total = runs.total
                self._refresh(row)

    def _node_done(self, node: str, context: CallbackContext, cached: bool) -> None:
        if not self.show_nodes:
            return
        with self._lock:
            key = ("node", context.path, node)
            row = self._rows.get(key)
            if row is None:
                runs = self._rows.get(("runs", context.path))
                row = self._row(key, node, context.depth + 1)
                row.total = runs.total if runs is not None else 1
            row.done += 1
            row.cached += cached
            self._refresh(row)
