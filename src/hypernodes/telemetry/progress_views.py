"""Where ``ProgressCallback`` draws: rich bars in a terminal, an updated display in Jupyter, plain
log lines elsewhere.  Each view is told when a display opens, when a row changes and when the
display closes; the rows (:class:`Row`) are counted by the callback.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from html import escape
from typing import IO, Any

#: a notebook display is redrawn at most this often while a run goes on (seconds)
NOTEBOOK_REFRESH = 0.2
_BAR_WIDTH = 30


@dataclass
class Row:
    """Counts behind one bar: a map (items) or a node (calls and cache hits)."""

    label: str
    indent: int
    #: the pipeline path of the row, for log lines (``outer > each``)
    where: str = ""
    is_map: bool = False
    total: int = 0
    done: int = 0
    cached: int = 0
    #: calls made again after an error (``@node(retries=...)``)
    retries: int = 0
    #: items (a map row) or calls (a node row) that failed (``on_error="continue"``)
    failed: int = 0
    #: calls that never came because their item failed upstream (counted when the display closes)
    skipped: int = 0
    task: Any = None
    logged_tenth: int = -1
    start: float = field(default_factory=time.perf_counter)
    #: when the display closed (the elapsed time stops there)
    stop: float | None = None

    @property
    def settled(self) -> int:
        """Items or calls that are over: done (a failure included) or skipped after one."""
        return self.done + self.skipped

    def notes(self) -> list[str]:
        """``3 cached``, ``2 failed``, ``2 skipped``, ``1 retries``: the counts that are not 0."""
        counts = (
            (self.cached, "cached"),
            (self.failed, "failed"),
            (self.skipped, "skipped"),
            (self.retries, "retries"),
        )
        return [f"{n} {what}" for n, what in counts if n]

    @property
    def elapsed(self) -> float:
        return (self.stop if self.stop is not None else time.perf_counter()) - self.start

    @property
    def rate(self) -> str:
        """Items or calls per second; empty for a single step, where a rate says nothing."""
        elapsed = self.elapsed
        if self.total <= 1 or not self.done or elapsed <= 0:
            return ""
        return f"{self.done / elapsed:,.1f}/s"


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (an IPython shell with a kernel attached)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class RichView:
    """Live rich bars on a terminal (``pip install "hypernodes[progress]"``)."""

    def __init__(self, stream: IO[str], force_terminal: bool | None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=_BAR_WIDTH),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=Console(file=stream, force_terminal=force_terminal),
            transient=False,
            refresh_per_second=8,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self.progress.start()

    def add(self, row: Row) -> None:
        row.task = self.progress.add_task(self._describe(row), total=None, rate="")

    def update(self, row: Row) -> None:
        if row.task is not None:
            self.progress.update(
                row.task,
                description=self._describe(row),
                total=row.total or None,
                completed=row.settled,
                rate=row.rate,
            )

    def close(self, rows: Iterable[Row]) -> None:
        for row in rows:
            self.update(row)
        self.progress.stop()

    @staticmethod
    def _describe(row: Row) -> str:
        marks = "".join(
            f" [red]({note})[/red]"
            if note.endswith(("failed", "skipped"))
            else f" [dim]({note})[/dim]"
            for note in row.notes()
        )
        cross = " [red]\u2717[/red]" if row.failed or row.skipped else ""
        return "  " * row.indent + row.label + cross + marks


class NotebookView:
    """One output in a Jupyter cell, replaced as the run goes on and drawn once more when it ends.

    Uses IPython's display with a display id (no ipywidgets, no terminal codes): the kernel sends
    the final picture as the cell's output, so a saved notebook shows the counts the run ended with.
    The output has an HTML table and a plain-text version of the same bars.
    """

    def __init__(self) -> None:
        from IPython.display import display

        self.rows: list[Row] = []
        self._last = 0.0
        self.handle = display(self._bundle(), raw=True, display_id=True)

    def add(self, row: Row) -> None:
        self.rows.append(row)

    def update(self, row: Row) -> None:
        now = time.perf_counter()
        if now - self._last >= NOTEBOOK_REFRESH:
            self._last = now
            self.handle.update(self._bundle(), raw=True)

    def close(self, rows: Iterable[Row]) -> None:
        self.handle.update(self._bundle(), raw=True)

    def _bundle(self) -> dict[str, str]:
        return {"text/plain": text_bars(self.rows), "text/html": html_bars(self.rows)}


class PlainView:
    """Log lines for CI logs and files: each map, nested or not, at every tenth and at the end."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.rows: list[Row] = []

    def add(self, row: Row) -> None:
        self.rows.append(row)

    def update(self, row: Row) -> None:
        if not row.is_map or not row.total:
            return
        tenth = 10 * row.settled // row.total
        if tenth > row.logged_tenth and row.settled < row.total:
            row.logged_tenth = tenth
            self._log(row, final=False)

    def close(self, rows: Iterable[Row]) -> None:
        for row in self.rows:
            if row.is_map:
                self._log(row, final=True)

    def _log(self, row: Row, final: bool) -> None:
        elapsed = row.elapsed
        pct = 100 * row.done / row.total if row.total else 100.0
        speed = row.done / elapsed if elapsed > 0 else 0.0
        eta = (row.total - row.done) / speed if speed > 0 else 0.0
        cached = "".join(f", {note}" for note in row.notes() if not note.endswith("retries"))
        tail = f"done in {elapsed:.1f}s" if final else f"{speed:,.1f} items/s, eta {eta:.0f}s"
        count = f"{row.done}/{row.total} items ({pct:.0f}%)" if row.total else f"{row.done} items"
        print(
            f"[hypernodes] {row.where} (map): {count}{cached}, {tail}",
            file=self.stream,
            flush=True,
        )


def text_bars(rows: Iterable[Row]) -> str:
    """The bars as plain text (no terminal codes): label, bar, done/total, cached, rate, time."""
    rows = list(rows)
    if not rows:
        return "hypernodes: starting..."
    labels = ["  " * row.indent + row.label for row in rows]
    width = max(len(label) for label in labels)
    lines = []
    for label, row in zip(labels, rows):
        share = row.settled / row.total if row.total else 0.0
        filled = round(_BAR_WIDTH * min(share, 1.0))
        bar = "\u2501" * filled + "\u2574" * (filled < _BAR_WIDTH) + " " * (_BAR_WIDTH - filled - 1)
        count = f"{row.settled}/{row.total}" if row.total else f"{row.settled}"
        parts = [label.ljust(width), bar[:_BAR_WIDTH], count.rjust(9)]
        if row.failed or row.skipped:
            parts.append("\u2717")
        parts.extend(f"({note})" for note in row.notes())
        if row.rate:
            parts.append(row.rate)
        parts.append(_clock(row.elapsed))
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _colour(row: Row) -> str:
    """Red for a row with failures, green once complete, blue while it runs."""
    if row.failed or row.skipped:
        return "#cf222e"
    return "#1a7f37" if row.total and row.done >= row.total else "#0969da"


def html_bars(rows: Iterable[Row]) -> str:
    """The bars as a small HTML table for notebooks."""
    body = []
    for row in rows:
        share = row.settled / row.total if row.total else 0.0
        pct = f"{100 * min(share, 1.0):.1f}%"
        colour = _colour(row)
        count = f"{row.settled}/{row.total}" if row.total else f"{row.settled}"
        cached = "".join(f" ({note})" for note in row.notes())
        cached = (" \u2717" if row.failed or row.skipped else "") + cached
        weight = "bold" if row.is_map else "normal"
        body.append(
            "<tr>"
            f'<td style="text-align:left;padding-left:{0.3 + 1.2 * row.indent:.1f}em;'
            f'font-weight:{weight}">{escape(row.label)}</td>'
            '<td style="width:14em"><div style="background:#d0d7de;height:0.8em;width:100%">'
            f'<div style="background:{colour};height:100%;width:{pct}"></div></div></td>'
            f'<td style="text-align:right">{escape(count)}{escape(cached)}</td>'
            f'<td style="text-align:right">{escape(row.rate)}</td>'
            f'<td style="text-align:right">{_clock(row.elapsed)}</td>'
            "</tr>"
        )
    if not body:
        body.append("<tr><td>hypernodes: starting...</td></tr>")
    return (
        '<table class="hypernodes-progress" style="font-family:monospace;font-size:0.9em">'
        + "".join(body)
        + "</table>"
    )
