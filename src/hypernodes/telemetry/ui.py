"""The local web page of a run log: ``hypernodes ui FOLDER`` (needs ``pip install "hypernodes[ui]"``).

A small Starlette app, served by uvicorn on 127.0.0.1 only: ``/`` lists the runs, ``/runs/ID``
shows one run as the report does (graph, node table, failures, timeline), and both follow runs in
progress by polling ``/api/runs`` and ``/api/runs/ID`` once a second (a running map's progress
bar moves and the report below it is redrawn when the counts change).  Everything the pages need is
served by the app itself.
"""

from __future__ import annotations

import socket
import time
from html import escape
from typing import Any

from ..exceptions import HyperNodesError
from . import runlog_store as store
from .report import load, render_body, render_html, seconds_text

#: the only address the UI listens on
HOST = "127.0.0.1"

_LIST_SCRIPT = """
const esc = s => String(s).replace(/[&<>"']/g, c => "&#" + c.charCodeAt(0) + ";");
async function refresh() {
  const reply = await fetch("api/runs");
  if (!reply.ok) return;
  const runs = await reply.json();
  const rows = runs.map(r => `<tr data-run="${esc(r.run_id)}">
    <td><a href="runs/${esc(r.run_id)}">${esc(r.run_id)}</a></td><td>${esc(r.pipeline)}</td>
    <td>${esc(r.kind)}</td><td><span class="badge ${esc(r.status)}">${esc(r.status)}</span></td>
    <td class="n">${esc(r.items)}</td><td class="n">${esc(r.failed)}</td>
    <td>${esc(r.started_text)}</td><td class="n">${esc(r.duration_text)}</td></tr>`);
  document.getElementById("runs").innerHTML = rows.join("");
}
refresh(); setInterval(refresh, 1000);
"""

_RUN_SCRIPT = """
const runId = document.body.dataset.run;
let shown = null;
async function poll() {
  const reply = await fetch("../api/runs/" + runId);
  if (!reply.ok) return;
  const r = await reply.json();
  const bar = document.getElementById("bar");
  document.getElementById("progress-text").textContent = r.progress;
  if (r.total) { bar.max = r.total; bar.value = r.done; }
  const state = [r.status, r.done, r.failed].join("/");
  if (shown !== null && state !== shown) {
    const body = await fetch("../runs/" + runId + "/report");
    if (body.ok) document.getElementById("report").innerHTML = await body.text();
  }
  shown = state;
  document.body.dataset.status = r.status;
  if (r.status !== "running") clearInterval(timer);
}
const timer = document.body.dataset.status === "running" ? setInterval(poll, 1000) : null;
"""

_PAGE_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px; color: #1d2330; }
table { border-collapse: collapse; } th, td { padding: 3px 10px; border-bottom: 1px solid #e3e6eb;
text-align: left; } th { background: #f5f6f8; } td.n { text-align: right; }
.badge { padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; }
.ok { background: #d6f2d3; } .failed { background: #f8d0d0; } .running { background: #d9e8fb; }
.stopped, .abandoned { background: #f6e27f; } a { color: #2458a6; }
#live { margin: 8px 0 16px; } progress { width: 320px; }
"""


def run_summary(conn: Any, run: store.RunInfo) -> dict[str, Any]:
    """What the pages show of a run, JSON-ready."""
    counts = store.item_counts(conn, run)
    done = sum(counts.values())
    failed = store.failure_count(conn, run.run_id)
    if run.kind == "run":
        progress = f"{run.status}: one run, {failed} failed calls, {seconds_text(run.duration)}"
    else:
        total = run.total if run.total is not None else "?"
        progress = (
            f"{run.status}: {done}/{total} items, {counts.get('failed', 0)} failed, "
            f"{counts.get('cached', 0)} cached, {seconds_text(run.duration)}"
        )
    return {
        "run_id": run.run_id,
        "pipeline": run.pipeline,
        "kind": run.kind,
        "status": run.status,
        "items": "-" if run.kind == "run" else f"{done}/{run.total}",
        "done": done,
        "total": run.total,
        "failed": failed,
        "started": run.started,
        "started_text": _when(run.started),
        "duration_text": seconds_text(run.duration),
        "progress": progress,
    }


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def make_app(folder: str) -> Any:
    """The Starlette app serving ``folder``'s run log."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, JSONResponse
    from starlette.routing import Route

    def runs_json(request: Any) -> Any:
        try:
            with store.reading(folder) as conn:
                return JSONResponse([run_summary(conn, r) for r in store.list_runs(conn, 200)])
        except store.RunLogError:
            return JSONResponse([])

    def run_json(request: Any) -> Any:
        try:
            with store.reading(folder) as conn:
                run = store.find_run(conn, request.path_params["run_id"])
                return JSONResponse(run_summary(conn, run))
        except store.RunLogError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)

    def index(request: Any) -> Any:
        return HTMLResponse(_index_page(folder))

    def run_page(request: Any) -> Any:
        try:
            data = load(folder, request.path_params["run_id"])
        except store.RunLogError as exc:
            return HTMLResponse(f"<p>{escape(str(exc))}</p>", status_code=404)
        return HTMLResponse(_run_page(data))

    def run_report(request: Any) -> Any:
        try:
            return HTMLResponse(render_body(load(folder, request.path_params["run_id"])))
        except store.RunLogError as exc:
            return HTMLResponse(f"<p>{escape(str(exc))}</p>", status_code=404)

    return Starlette(
        routes=[
            Route("/", index),
            Route("/api/runs", runs_json),
            Route("/api/runs/{run_id}", run_json),
            Route("/runs/{run_id}", run_page),
            Route("/runs/{run_id}/report", run_report),
        ]
    )


def _index_page(folder: str) -> str:
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>HyperNodes runs</title><style>{_PAGE_CSS}</style></head><body>"
        f"<h1>Runs in {escape(folder)}</h1><table><thead><tr><th>run</th><th>pipeline</th>"
        "<th>kind</th><th>status</th><th>items</th><th>failed</th><th>started</th><th>time</th>"
        f"</tr></thead><tbody id='runs'></tbody></table><script>{_LIST_SCRIPT}</script>"
        "</body></html>"
    )


def _run_page(data: Any) -> str:
    run = data.run
    page = render_html(data)
    live = (
        f"<body data-run='{escape(run.run_id)}' data-status='{escape(run.status)}'>"
        f"<p><a href='../'>all runs</a></p><div id='live'><progress id='bar' "
        f"max='{run.total or 1}' value='{sum(data.items.values())}'></progress> "
        f"<span id='progress-text'>{escape(run.status)}</span></div><div id='report'>"
    )
    page = page.replace("<body>", live, 1)
    return page.replace("</body>", f"</div><script>{_RUN_SCRIPT}</script></body>", 1)


def bind(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1 (``port`` 0: any free one)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(folder: str, port: int = 8765, on_ready: Any = None) -> None:
    """Serve the UI of ``folder`` on 127.0.0.1:``port`` until interrupted; ``on_ready(url)`` is
    called once the socket listens."""
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise HyperNodesError(
            'the run log UI needs starlette and uvicorn: pip install "hypernodes[ui]"'
        ) from exc
    sock = bind(port)
    url = f"http://{HOST}:{sock.getsockname()[1]}/"
    config = uvicorn.Config(make_app(folder), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    if on_ready is not None:
        on_ready(url)
    server.run(sockets=[sock])
