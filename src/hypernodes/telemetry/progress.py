"""``ProgressCallback``: progress bars for runs and maps, where people look at them.

One bar per map (items done/total, rate, elapsed time) with one row per node beneath it; nested
pipelines are indented under their parent and share one bar per nested map however many times it
runs; cache hits are counted on each row.  In a terminal it draws live bars with ``rich``; in a
Jupyter kernel it shows one cell output that is replaced as the run goes on and drawn a last time
at the end (IPython display, no ipywidgets); elsewhere (CI logs, files) it prints a plain line for
each map, nested or not, at every tenth of it and at the end.  The views are in
:mod:`hypernodes.telemetry.progress_views`.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import IO, Any, Literal

from ..observe.callbacks import CallbackContext, PipelineCallback
from .progress_views import NotebookView, PlainView, RichView, Row, in_notebook

Mode = Literal["auto", "rich", "notebook", "plain"]
MODES = ("auto", "rich", "notebook", "plain")


class ProgressCallback(PipelineCallback):
    """Shows how far runs and maps have come.

    ``mode="auto"`` picks the view: a Jupyter kernel gets an updated cell output (``"notebook"``),
    a terminal gets rich bars (``"rich"``, needs ``pip install "hypernodes[progress]"``; plain lines
    without rich), anything else plain log lines (``"plain"``).  A mode given by name is used as
    is.  ``file`` defaults to stderr (the notebook view writes to the cell instead).
    ``show_nodes=False`` keeps only the map bars.  ``enable=False`` turns the callback off: it
    receives no events and costs nothing, so it can stay in the code (``enable=not quiet``).
    """

    def __init__(
        self,
        mode: Mode = "auto",
        file: IO[str] | None = None,
        show_nodes: bool = True,
        enable: bool = True,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
        self.mode = mode
        self.file = file
        self.show_nodes = show_nodes
        self.enabled = bool(enable)
        self._lock = threading.RLock()
        self._view: Any = None
        self._rows: dict[tuple[Any, ...], Row] = {}
        self._active = 0  # top-level calls in flight
        #: (path, items) of the map items a node failed in, until their item ends
        self._failed: set[tuple[Any, ...]] = set()

    # -- lifecycle of the display -------------------------------------------------------------

    def _pick(self) -> str:
        if self.mode != "auto":
            return self.mode
        if self.file is None and in_notebook():
            return "notebook"
        stream = self.file if self.file is not None else sys.stderr
        try:
            import rich  # noqa: F401
        except ImportError:
            return "plain"
        from rich.console import Console

        console = Console(file=stream)
        return "rich" if console.is_terminal and not console.is_jupyter else "plain"

    def _open(self) -> None:
        self._active += 1
        if self._active > 1:
            return
        self._rows = {}
        stream = self.file if self.file is not None else sys.stderr
        view = self._pick()
        if view == "rich":
            self._view = RichView(stream, force_terminal=True if self.mode == "rich" else None)
        elif view == "notebook":
            self._view = NotebookView()
        else:
            self._view = PlainView(stream)

    def _close(self) -> None:
        self._active -= 1
        if self._active > 0 or self._view is None:
            return
        now = time.perf_counter()
        for key, row in self._rows.items():
            row.stop = now
            if key[0] == "node" and row.done < row.total:  # items failed before reaching it
                row.skipped = row.total - row.done
        self._failed.clear()
        self._view.close([row for key, row in self._rows.items() if key[0] != "runs"])
        self._view = None

    # -- rows ---------------------------------------------------------------------------------

    def _row(self, key: tuple[Any, ...], label: str, indent: int, where: str, is_map: bool) -> Row:
        row = self._rows.get(key)
        if row is None:
            row = self._rows[key] = Row(label, indent, where, is_map)
            if self._view is not None:
                self._view.add(row)
        return row

    def _refresh(self, row: Row) -> None:
        if self._view is not None:
            self._view.update(row)

    # -- hooks --------------------------------------------------------------------------------

    def on_pipeline_start(
        self, *, pipeline: str, inputs: Any, context: CallbackContext, **kwargs: Any
    ) -> None:
        with self._lock:
            if context.depth == 0:
                self._open()
                row = self._row(("run", context.path), f"{pipeline} (run)", 0, pipeline, False)
                row.total += 1
                self._refresh(row)
            self._bump_nodes(context, 1)

    def on_pipeline_end(
        self, *, pipeline: str, outputs: Any, duration: float, context: CallbackContext, **kw: Any
    ) -> None:
        with self._lock:
            if context.depth == 0:
                row = self._rows.get(("run", context.path))
                if row is not None:
                    row.done += 1
                    self._refresh(row)
                self._close()

    def on_map_start(
        self, *, pipeline: str, total: int, context: CallbackContext, **kwargs: Any
    ) -> None:
        with self._lock:
            if context.depth == 0:
                self._open()
            where = " > ".join(context.path)
            row = self._row(
                ("map", context.path), f"{pipeline} (map)", context.depth, where, is_map=True
            )
            row.total += total or 0  # None: a stream of unknown length (imap of an iterator)
            self._bump_nodes(context, total or 0)
            self._refresh(row)

    def on_map_end(
        self, *, pipeline: str, total: int, duration: float, context: CallbackContext, **kw: Any
    ) -> None:
        with self._lock:
            row = self._rows.get(("map", context.path))
            if row is not None:
                self._refresh(row)
            if context.depth == 0:
                self._close()

    def on_map_item_end(
        self, *, index: int, duration: float, context: CallbackContext, **kwargs: Any
    ) -> None:
        with self._lock:
            row = self._rows.get(("map", context.path))
            if row is not None:
                row.done += 1
                if self._failed and (context.path, context.items) in self._failed:
                    self._failed.discard((context.path, context.items))
                    row.failed += 1
                self._refresh(row)

    def on_map_item_cached(self, *, index: int, context: CallbackContext, **kwargs: Any) -> None:
        with self._lock:
            row = self._rows.get(("map", context.path))
            if row is not None:
                row.cached += 1

    def on_node_end(
        self, *, node: str, outputs: Any, duration: float, context: CallbackContext, **kw: Any
    ) -> None:
        self._node_done(node, context, cached=False)

    def on_node_cached(
        self, *, node: str, signature: str, context: CallbackContext, **kwargs: Any
    ) -> None:
        self._node_done(node, context, cached=True)

    def on_error(
        self, *, node: str | None, error: BaseException, context: CallbackContext, **kwargs: Any
    ) -> None:
        with self._lock:
            if context.items and context.items[-1] is not None:
                self._failed.add((context.path, context.items))
        if node is not None:
            self._node_done(node, context, cached=False, failed=True)

    # -- node rows ----------------------------------------------------------------------------

    def _bump_nodes(self, context: CallbackContext, count: int) -> None:
        """``count`` more runs of the pipeline at this path: each node row expects that many more."""
        runs = self._rows.get(("runs", context.path))
        if runs is None:
            runs = self._rows[("runs", context.path)] = Row("runs", context.depth)
        runs.total += count
        for key, row in self._rows.items():
            if key[0] == "node" and key[1] == context.path:
                row.total = runs.total
                self._refresh(row)

    def on_node_retry(
        self,
        *,
        node: str,
        attempt: int,
        error: BaseException,
        delay: float,
        context: CallbackContext,
        **kwargs: Any,
    ) -> None:
        if not self.show_nodes:
            return
        with self._lock:
            row = self._rows.get(("node", context.path, node))
            if row is None:
                runs = self._rows.get(("runs", context.path))
                where = " > ".join(context.path)
                row = self._row(
                    ("node", context.path, node), node, context.depth + 1, where, is_map=False
                )
                row.total = runs.total if runs is not None else 1
            row.retries += 1
            self._refresh(row)

    def _node_done(
        self, node: str, context: CallbackContext, cached: bool, failed: bool = False
    ) -> None:
        if not self.show_nodes:
            return
        with self._lock:
            key = ("node", context.path, node)
            row = self._rows.get(key)
            if row is None:
                runs = self._rows.get(("runs", context.path))
                where = " > ".join(context.path)
                row = self._row(key, node, context.depth + 1, where, is_map=False)
                row.total = runs.total if runs is not None else 1
            row.done += 1
            row.cached += cached
            row.failed += failed
            self._refresh(row)
