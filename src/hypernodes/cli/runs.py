"""``hypernodes runs list/show/watch`` and ``hypernodes report``: reading the run log.

``FOLDER`` is the folder a :class:`~hypernodes.telemetry.runlog.RunLog` (or
``HYPERNODES_RUN_LOG``) writes to; ``RUN`` is a run id, a unique prefix of one, ``last`` (the
default) or ``last-N`` (N runs before the newest).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import click

from ..telemetry import runlog_store as store
from ..telemetry.report import inputs_text, seconds_text, write_report
from ..telemetry.ui import serve

_RUNS_EXAMPLES = """\b
Examples:
  hypernodes runs list runs/
  hypernodes runs show runs/ last
  hypernodes runs watch runs/
  hypernodes report runs/ last -o run.html
"""

#: seconds without a write after which a run whose process is gone is called abandoned
STALE_AFTER = 10.0


def register(cli: click.Group) -> None:
    """Add ``runs`` and ``report`` to the ``hypernodes`` command."""
    cli.add_command(runs)
    cli.add_command(report)
    cli.add_command(ui)


@click.group(epilog=_RUNS_EXAMPLES)
def runs() -> None:
    """List, show and watch the runs a run log recorded (RunLog or HYPERNODES_RUN_LOG)."""


def _folder_argument(func: Any) -> Any:
    return click.argument("folder", type=click.Path(file_okay=False, path_type=Path))(func)


@runs.command("list")
@_folder_argument
@click.option("--limit", "-n", type=int, default=20, show_default=True, help="How many runs.")
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table")
def list_runs(folder: Path, limit: int, output_format: str) -> None:
    """The runs of FOLDER's run log, newest first."""
    with store.reading(folder) as conn:
        rows = []
        for run in store.list_runs(conn, limit):
            rows.append(_run_summary(conn, run))
    if output_format == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    header = ["run", "pipeline", "kind", "status", "items", "failed", "started", "time"]
    table = [
        [
            r["run_id"],
            r["pipeline"],
            r["kind"],
            r["status"],
            r["items"],
            str(r["failed"]),
            _when(r["started"]),
            seconds_text(r["duration"]),
        ]
        for r in rows
    ]
    _echo_table(header, table)


def _run_summary(conn: Any, run: store.RunInfo) -> dict[str, Any]:
    counts = store.item_counts(conn, run)
    done = sum(counts.values())
    items = "-" if run.kind == "run" else f"{done}/{run.total if run.total is not None else '?'}"
    return {
        "run_id": run.run_id,
        "pipeline": run.pipeline,
        "kind": run.kind,
        "status": _status(run),
        "items": items,
        "items_done": counts,
        "failed": store.failure_count(conn, run.run_id),
        "started": run.started,
        "ended": run.ended,
        "duration": run.duration,
    }


def _status(run: store.RunInfo) -> str:
    """``running``, unless its process is gone on this host and it stopped writing."""
    if run.status != "running" or time.time() - run.updated < STALE_AFTER:
        return run.status
    if run.host == socket.gethostname() and not _alive(run.pid):
        return "abandoned"
    return run.status


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@runs.command("show")
@_folder_argument
@click.argument("run", required=False, default="last")
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table")
def show_run(folder: Path, run: str, output_format: str) -> None:
    """One run: set-up, per-node counts and time, failures with their inputs, slowest items."""
    with store.reading(folder) as conn:
        info = store.find_run(conn, run)
        summary = _run_summary(conn, info)
        nodes = store.node_stats(conn, info.run_id)
        failed = [dict(row) for row in store.failures(conn, info.run_id, limit=20)]
        slowest = store.slowest_items(conn, info, 5)
    if output_format == "json":
        summary.update(
            engine=info.engine,
            versions=info.versions,
            nodes=[vars(s) for s in nodes],
            failures=failed,
            slowest_items=[{"item": i, "status": s, "duration": d} for i, s, d in slowest],
        )
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(
        f"run {info.run_id}: {info.pipeline} ({info.kind}) {summary['status']}, "
        f"{'' if info.kind == 'run' else summary['items'] + ' items, '}"
        f"{summary['failed']} failed calls, {seconds_text(info.duration)}, "
        f"started {_when(info.started)}"
    )
    click.echo(f"engine: {info.engine.get('repr', '?')}")
    click.echo("versions: " + ", ".join(f"{k} {v}" for k, v in info.versions.items()))
    click.echo("")
    _echo_table(
        ["node", "ran", "cached", "failed", "retried", "timed out", "time", "mean", "slowest"],
        [_node_cells(s) for s in nodes],
    )
    if failed:
        click.echo("\nfailures:")
        for f in failed:
            item = (
                ""
                if f["item"] is None
                else f" item {f['item']}" + (f"/{f['sub']}" if f["sub"] else "")
            )
            click.echo(
                f"  {f['path']} > {f['node']}{item}: {f['error_type']}: {f['error_message']}"
                f"\n      inputs: {inputs_text(f['inputs'])}"
            )
    if slowest:
        click.echo(
            "\nslowest items: " + ", ".join(f"{i} ({seconds_text(d)})" for i, _, d in slowest)
        )


def _node_cells(s: store.NodeStats) -> list[str]:
    name = s.node if "/" not in s.path else f"{s.path.split('/', 1)[1]} > {s.node}"
    mean = s.seconds / s.ran if s.ran else 0.0
    counts = [str(getattr(s, k)) for k in ("ran", "cached", "failed", "retried", "timed_out")]
    return [name, *counts, seconds_text(s.seconds), seconds_text(mean), seconds_text(s.slowest)]


@runs.command("watch")
@_folder_argument
@click.argument("run", required=False)
@click.option(
    "--interval", type=float, default=0.5, show_default=True, help="Seconds between looks."
)
@click.option(
    "--wait",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds to wait for a run to appear when FOLDER has none yet.",
)
def watch_run(folder: Path, run: str | None, interval: float, wait: float) -> None:
    """Follow a run as it goes (default: the newest), from any terminal, until it ends."""
    info = _first_run(folder, run, wait)
    tty = sys.stdout.isatty()
    last = ""
    while True:
        with store.reading(folder) as conn:
            info = store.find_run(conn, info.run_id)
            line = _progress_line(conn, info)
        if line != last:
            click.echo(("\r\x1b[2K" + line) if tty else line, nl=not tty)
            last = line
        if _status(info) != "running":
            if tty:
                click.echo("")
            return
        time.sleep(interval)


def _first_run(folder: Path, run: str | None, wait: float) -> store.RunInfo:
    deadline = time.monotonic() + wait
    while True:
        try:
            with store.reading(folder) as conn:
                return store.find_run(conn, run)
        except store.RunLogError:
            if run is not None or time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def _progress_line(conn: Any, info: store.RunInfo) -> str:
    summary = _run_summary(conn, info)
    counts = summary["items_done"]
    nodes = store.node_stats(conn, info.run_id)
    calls = sum(s.ran for s in nodes)
    cached = sum(s.cached for s in nodes)
    parts = [f"{info.run_id} {info.pipeline} ({info.kind}): {summary['status']}"]
    if info.kind != "run":
        parts.append(
            f"{summary['items']} items, {counts.get('failed', 0)} failed, "
            f"{counts.get('cached', 0)} cached"
        )
    parts.append(f"{calls} node calls, {cached} cached, {summary['failed']} failed")
    parts.append(seconds_text(info.duration))
    return " · ".join(parts)


@click.command(epilog=_RUNS_EXAMPLES)
@_folder_argument
@click.argument("run", required=False, default="last")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("run.html"),
    show_default=True,
    help="The HTML file to write.",
)
def report(folder: Path, run: str, output: Path) -> None:
    """Write one run of FOLDER's run log as a self-contained HTML page (graph by status, node
    table, failures with inputs, timeline); it needs no network to view."""
    run_id = write_report(os.fspath(folder), run, os.fspath(output))
    click.echo(f"wrote {output} (run {run_id})")


@click.command(epilog="\b\nExamples:\n  hypernodes ui runs/\n  hypernodes ui runs/ --port 0\n")
@_folder_argument
@click.option(
    "--port",
    type=int,
    default=8765,
    show_default=True,
    help="The port on 127.0.0.1 (0: any free one).",
)
def ui(folder: Path, port: int) -> None:
    """Serve a local web page (127.0.0.1 only) that lists FOLDER's runs and shows each one as the
    report does, following runs in progress.  Needs pip install "hypernodes[ui]"."""

    def ready(url: str) -> None:
        click.echo(f"serving the run log of {folder} on {url} (Ctrl-C to stop)")

    serve(os.fspath(folder), port, on_ready=ready)


def _when(stamp: float | None) -> str:
    return "-" if stamp is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def _echo_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]
    click.echo("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
