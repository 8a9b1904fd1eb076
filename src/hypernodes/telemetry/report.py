"""One run of the run log as a self-contained HTML page: ``hypernodes report FOLDER RUN -o run.html``.

The page needs nothing at view time (no network, no script from elsewhere): its CSS is inline
and its pictures are inline SVG.  It shows the run's set-up, the pipeline's graph coloured by what
each node did (drawn by graphviz's ``dot`` from the structure the run log recorded), a table per
node, the failures with their inputs, the slowest items, and a timeline that aggregates calls by
node over time bins, so a map of 20,000 calls draws as a few rows of cells rather than 20,000 bars.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from ..exceptions import HyperNodesError
from . import runlog_store as store

#: fill colour per node status in the graph and tables
STATUS_COLORS = {
    "failed": "#f4a6a6",
    "timed_out": "#f7b98b",
    "retried": "#f6e27f",
    "ran": "#a8cdf0",
    "cached": "#b5e3b0",
    "pending": "#e6e6e6",
}
#: how many time bins the timeline has
TIMELINE_BINS = 120

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px;
       color: #1d2330; background: #fff; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 28px 0 8px; }
.meta { color: #5b6475; } .meta code { color: #1d2330; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px;
         font-weight: 600; }
.ok { background: #d6f2d3; } .failed { background: #f8d0d0; } .running { background: #d9e8fb; }
.stopped, .abandoned { background: #f6e27f; }
table { border-collapse: collapse; margin: 6px 0; }
th, td { padding: 3px 10px; border-bottom: 1px solid #e3e6eb; text-align: left;
         vertical-align: top; }
th { background: #f5f6f8; font-weight: 600; } td.n { text-align: right;
         font-variant-numeric: tabular-nums; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px;
          margin-right: 6px; }
.graph svg { max-width: 100%; height: auto; } .note { color: #8a6d00; }
pre { margin: 0; white-space: pre-wrap; font-size: 12px; }
"""


@dataclass
class ReportData:
    """What a report shows, read from the run log once."""

    run: store.RunInfo
    nodes: list[store.NodeStats]
    failures: list[Any]
    failure_total: int
    slowest: list[tuple[int | None, str, float]]
    items: dict[str, int]
    spans: list[store.Span]


def load(folder: str, run: str | None) -> ReportData:
    """Everything the report of ``run`` in ``folder``'s run log needs."""
    with store.reading(folder) as conn:
        info = store.find_run(conn, run)
        return ReportData(
            run=info,
            nodes=store.node_stats(conn, info.run_id),
            failures=[dict(row) for row in store.failures(conn, info.run_id, limit=200)],
            failure_total=store.failure_count(conn, info.run_id),
            slowest=store.slowest_items(conn, info, 10),
            items=store.item_counts(conn, info),
            spans=store.spans(conn, info.run_id),
        )


def render_html(data: ReportData) -> str:
    """The report page as one string of HTML."""
    run = data.run
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(run.pipeline)} · {escape(run.run_id)}</title>"
        f"<style>{_CSS}</style></head><body>{render_body(data)}</body></html>"
    )


def render_body(data: ReportData) -> str:
    """The report's content, without the page around it (the UI swaps it in as a run goes)."""
    run = data.run
    parts = [
        _header(data),
        "<h2>Graph</h2>",
        f"<div class='graph'>{graph_svg(data)}</div>",
        _legend(),
        "<h2>Nodes</h2>",
        node_table(data.nodes, node_seconds(data.nodes)),
        "<h2>Failures</h2>",
        failure_table(data.failures, data.failure_total),
    ]
    if data.slowest:
        parts += ["<h2>Slowest items</h2>", _slowest_table(data.slowest)]
    parts += [
        "<h2>Timeline</h2>",
        "<p class='meta'>Each row is a node; each cell a slice of the run, darker the more "
        "of it the node's calls filled (red ticks: failures). Hover a row for its totals.</p>",
        timeline_svg(data.spans, data.failures, run),
    ]
    return "".join(parts)


def write_report(folder: str, run: str | None, output: str) -> str:
    """Write the report of ``run`` to ``output``; returns the run id."""
    data = load(folder, run)
    with open(output, "w", encoding="utf-8") as fh:
        fh.write(render_html(data))
    return data.run.run_id


# -- sections ----------------------------------------------------------------------------------


def _when(stamp: float | None) -> str:
    return "-" if stamp is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def seconds_text(seconds: float) -> str:
    """``1.23 s``, ``45.6 ms``, ``789 µs``."""
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"


def _header(data: ReportData) -> str:
    run = data.run
    done = sum(data.items.values())
    items = f"{done}/{run.total} items" if run.total is not None else f"{done} items"
    if run.kind == "run":
        items = "one run"
    engine = run.engine.get("repr", run.engine.get("engine", "?"))
    versions = ", ".join(f"{k} {v}" for k, v in run.versions.items())
    return (
        f"<h1>{escape(run.pipeline)} <span class='badge {escape(run.status)}'>"
        f"{escape(run.status)}</span></h1>"
        f"<div class='meta'>run <code>{escape(run.run_id)}</code> · {escape(run.kind)} · "
        f"{escape(items)} · {data.failure_total} failed calls · started {_when(run.started)} · "
        f"{seconds_text(run.duration)}<br>engine <code>{escape(str(engine))}</code><br>"
        f"{escape(versions)} · host {escape(run.host or '?')} pid {run.pid}</div>"
    )


def _legend() -> str:
    cells = "".join(
        f"<span class='swatch' style='background:{color}'></span>{escape(name)} &nbsp; "
        for name, color in STATUS_COLORS.items()
    )
    return (
        f"<p class='meta'>{cells}(share: of the time of all node calls; thicker border: "
        "a larger share)</p>"
    )


def node_seconds(nodes: Sequence[store.NodeStats]) -> float:
    """The time of every node call of the run, added up (what a node's share is of)."""
    return sum(s.seconds for s in nodes)


def node_table(nodes: Sequence[store.NodeStats], total: float) -> str:
    """The per-node table: counts by status, time, its share of all node time (``total``),
    mean and slowest call."""
    head = (
        "<tr><th>node</th><th>ran</th><th>cached</th><th>failed</th><th>retried</th>"
        "<th>timed out</th><th>time</th><th>share</th><th>mean</th><th>slowest</th></tr>"
    )
    rows = []
    for s in nodes:
        name = s.node if "/" not in s.path else f"{s.path.split('/', 1)[1]} > {s.node}"
        mean = s.seconds / s.ran if s.ran else 0.0
        share = f"{100 * s.seconds / total:.0f}%" if total > 0 else "-"
        color = STATUS_COLORS.get(s.status, "#eee")
        rows.append(
            f"<tr><td><span class='swatch' style='background:{color}'></span>{escape(name)}</td>"
            f"<td class='n'>{s.ran}</td><td class='n'>{s.cached}</td><td class='n'>{s.failed}</td>"
            f"<td class='n'>{s.retried}</td><td class='n'>{s.timed_out}</td>"
            f"<td class='n'>{seconds_text(s.seconds)}</td><td class='n'>{share}</td>"
            f"<td class='n'>{seconds_text(mean)}</td><td class='n'>{seconds_text(s.slowest)}</td></tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def inputs_text(inputs: str | None) -> str:
    """``x=3, y='a'`` from the JSON of input reprs a failure row holds."""
    if not inputs:
        return "(not known)"
    return ", ".join(f"{k}={v}" for k, v in json.loads(inputs).items())


def failure_table(failures: Sequence[dict[str, Any]], total: int) -> str:
    """The failures: node, item, error and the inputs it was called with."""
    if not failures:
        return "<p>No node failed.</p>"
    head = "<tr><th>node</th><th>item</th><th>error</th><th>inputs</th></tr>"
    rows = []
    for f in failures:
        item = "-" if f["item"] is None else str(f["item"])
        if f["sub"]:
            item += f" / {f['sub']}"
        kind = " (timed out)" if f["status"] == "timed_out" else ""
        rows.append(
            f"<tr><td>{escape(f['path'])} &gt; <b>{escape(f['node'])}</b></td><td>{escape(item)}</td>"
            f"<td><pre>{escape(f['error_type'] or '')}{kind}: {escape(f['error_message'] or '')}"
            f"</pre></td><td><pre>{escape(inputs_text(f['inputs']))}</pre></td></tr>"
        )
    more = (
        f"<p class='meta'>{total - len(failures)} more not shown.</p>"
        if total > len(failures)
        else ""
    )
    return f"<table>{head}{''.join(rows)}</table>{more}"


def _slowest_table(slowest: Sequence[tuple[int | None, str, float]]) -> str:
    rows = "".join(
        f"<tr><td class='n'>{item}</td><td>{escape(status)}</td>"
        f"<td class='n'>{seconds_text(duration)}</td></tr>"
        for item, status, duration in slowest
    )
    return f"<table><tr><th>item</th><th>status</th><th>time</th></tr>{rows}</table>"


# -- graph -------------------------------------------------------------------------------------


def graph_svg(data: ReportData) -> str:
    """The pipeline's graph as inline SVG, nodes filled by status; a note if it cannot be drawn."""
    structure = data.run.structure
    if not structure:
        return "<p class='note'>The run log has no structure for this run's pipeline.</p>"
    try:
        from ..viz.graphviz import import_graphviz, render

        graphviz = import_graphviz()
        stats = {(s.path, s.node): s for s in data.nodes}
        digraph = graphviz.Digraph(graph_attr={"rankdir": "TB", "fontname": "Helvetica"})
        digraph.attr("node", fontname="Helvetica", fontsize="11")
        _draw(digraph, structure, structure["name"], stats, node_seconds(data.nodes), "")
        svg = render(digraph, "svg").decode("utf-8")
    except HyperNodesError as exc:
        return f"<p class='note'>Graph not drawn: {escape(str(exc))}</p>"
    return svg[svg.index("<svg") :]


def _draw(
    graph: Any,
    structure: dict[str, Any],
    path: str,
    stats: dict[tuple[str, str], store.NodeStats],
    total: float,
    prefix: str,
) -> dict[str, str]:
    """Draw ``structure``'s nodes into ``graph``; returns which graph node produces each output."""
    producers: dict[str, str] = {}
    for name in structure["inputs"]:
        producers[name] = f"{prefix}in__{name}"
        graph.node(producers[name], name, shape="ellipse", style="dashed", color="#8a93a6")
    for entry in structure["nodes"]:
        node_id = f"{prefix}node__{entry['name']}"
        if "pipeline" in entry:
            s = _inner_stats(stats, f"{path}/{entry['name']}", entry["name"])
            label = _node_label(f"{entry['name']} (pipeline)", s, total)
        else:
            s = stats.get((path, entry["name"]))
            label = _node_label(entry["name"], s, total)
        status = s.status if s is not None else "pending"
        width = 1 + 4 * (s.seconds / total if s is not None and total > 0 else 0.0)
        graph.node(
            node_id,
            label,
            shape="box",
            style="rounded,filled",
            fillcolor=STATUS_COLORS.get(status, "#eee"),
            penwidth=f"{width:.2f}",
        )
        for name in entry["inputs"]:
            source = producers.get(name)
            if source is None:
                source = producers[name] = f"{prefix}in__{name}"
                graph.node(source, name, shape="ellipse", style="dashed", color="#8a93a6")
            graph.edge(source, node_id)
        for name in entry["outputs"]:
            producers[name] = node_id
    return producers


_RANK = ("failed", "timed_out", "retried", "ran", "cached")


def _inner_stats(
    stats: dict[tuple[str, str], store.NodeStats], inner: str, name: str
) -> store.NodeStats | None:
    """A nested pipeline's nodes summed: counts, the time of its slowest node, worst status."""
    found = [s for (path, _), s in stats.items() if path == inner or path.startswith(inner + "/")]
    if not found:
        return None
    total = store.NodeStats(inner, name)
    for s in found:
        for key in _RANK:
            setattr(total, key, getattr(total, key) + getattr(s, key))
    total.seconds = max(s.seconds for s in found)
    return total


def _node_label(name: str, s: store.NodeStats | None, total: float) -> str:
    if s is None:
        return f"{name}\nnot run"
    counts = [f"{getattr(s, k)} {k.replace('_', ' ')}" for k in _RANK if getattr(s, k)]
    share = f" ({100 * s.seconds / total:.0f}%)" if total > 0 else ""
    return f"{name}\n{' · '.join(counts)}\n{seconds_text(s.seconds)}{share}"


# -- timeline ----------------------------------------------------------------------------------


def timeline_svg(
    spans: Sequence[store.Span],
    failures: Sequence[dict[str, Any]],
    run: store.RunInfo,
    bins: int = TIMELINE_BINS,
) -> str:
    """Rows of cells: per node, how busy its calls kept each slice of the run (aggregated, so the
    size depends on nodes x bins, not on the number of calls), with a time axis."""
    if not spans and not failures:
        return "<p>No node call recorded.</p>"
    origin = run.started
    end = max([run.ended or run.updated] + [s.end for s in spans])
    width_s = max(end - origin, 1e-9)
    step = width_s / bins
    rows: dict[tuple[str, str], list[float]] = {}
    counts: dict[tuple[str, str], int] = {}
    for s in spans:
        key = (s.path, s.node)
        busy = rows.setdefault(key, [0.0] * bins)
        counts[key] = counts.get(key, 0) + 1
        _spread(busy, (s.start - origin) / step, (s.end - origin) / step)
    for f in failures:
        rows.setdefault((f["path"], f["node"]), [0.0] * bins)
    return _timeline_picture(rows, counts, failures, origin, width_s, bins)


def _spread(busy: list[float], first: float, last: float) -> None:
    """Add the part of [first, last) (in bins) that falls in each bin."""
    bins = len(busy)
    first, last = max(first, 0.0), min(max(last, first), float(bins))
    i = int(first)
    while i < bins and i < last:
        busy[i] += min(last, i + 1) - max(first, i)
        i += 1
    if last <= first and int(first) < bins:  # a zero-length call still shows
        busy[int(first)] += 1e-3


def _timeline_picture(
    rows: dict[tuple[str, str], list[float]],
    counts: dict[tuple[str, str], int],
    failures: Sequence[dict[str, Any]],
    origin: float,
    width_s: float,
    bins: int,
) -> str:
    label_w, cell, row_h = 200, 6, 18
    width = label_w + bins * cell + 20
    height = 30 + row_h * len(rows) + 30
    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"font-family='sans-serif' font-size='11'>"
    ]
    for r, ((path, node), busy) in enumerate(rows.items()):
        y = 20 + r * row_h
        peak = max(busy) or 1.0
        name = node if "/" not in path else f"{path.split('/', 1)[1]} > {node}"
        total = sum(busy) * width_s / bins
        out.append(
            f"<g><title>{escape(name)}: {counts.get((path, node), 0)} calls, "
            f"{seconds_text(total)} in all</title>"
            f"<text x='{label_w - 6}' y='{y + 12}' text-anchor='end'>{escape(name)}</text>"
            f"<rect x='{label_w}' y='{y}' width='{bins * cell}' height='{row_h - 4}' fill='#f3f4f6'/>"
        )
        for i, value in enumerate(busy):
            if value > 0:
                alpha = 0.15 + 0.85 * min(value / peak, 1.0)
                out.append(
                    f"<rect x='{label_w + i * cell}' y='{y}' width='{cell}' height='{row_h - 4}' "
                    f"fill='#3b78c2' fill-opacity='{alpha:.2f}'/>"
                )
        for f in failures:
            if (f["path"], f["node"]) == (path, node) and f["ended"] is not None:
                x = label_w + (f["ended"] - origin) / width_s * bins * cell
                out.append(
                    f"<rect x='{x - 1:.1f}' y='{y - 1}' width='2' height='{row_h - 2}' "
                    "fill='#d62728'/>"
                )
        out.append("</g>")
    axis_y = 24 + row_h * len(rows)
    for k in range(6):
        x = label_w + k * bins * cell / 5
        out.append(
            f"<line x1='{x}' y1='{axis_y - 4}' x2='{x}' y2='{axis_y}' stroke='#555'/>"
            f"<text x='{x}' y='{axis_y + 12}' text-anchor='middle'>"
            f"{seconds_text(width_s * k / 5) if k else '0'}</text>"
        )
    out.append("</svg>")
    return "".join(out)
