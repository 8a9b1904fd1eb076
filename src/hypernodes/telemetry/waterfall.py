"""A timeline (waterfall) of spans recorded by ``TelemetryCallback``, drawn with plotly.

By default spans are grouped: one row per node (and per map, map items and pipeline run) at
each nesting level, every call of that node a bar on its row, so a map of thousands of items
stays a handful of rows (``group_by="node"``).  ``group_by="item"`` gives one row per map item
with its nodes' bars side by side; ``group_by="span"`` the old one row per span.  The time axis
is drawn at the top, where it stays in view, and bar data goes as typed arrays, so 20,000 spans
make a figure of a few MB at most.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

COLORS = {
    "pipeline": "#4C78A8",
    "map": "#72B7B2",
    "item": "#B0B0B0",
    "nested": "#9D755D",
    "node": "#F58518",
}
CACHED_COLOR = "#54A24B"
ERROR_COLOR = "#E45756"
#: how ``waterfall_figure`` can put spans on rows
GROUPINGS = ("node", "item", "span")
#: the tallest figure (px); more rows than fit share the height (zoom to read them)
MAX_HEIGHT = 900


def _plotly() -> Any:
    try:
        import plotly.graph_objects as go
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            'the waterfall chart needs plotly: pip install "hypernodes[telemetry]"'
        ) from exc
    return go


def _category(rec: Any) -> str:
    if "hypernodes.error" in rec.attributes:
        return "error"
    if rec.attributes.get("hypernodes.cached"):
        return "cached"
    return rec.kind


def _level(rec: Any) -> int:
    """How far a row is indented: runs and maps, then their items, then the nodes in them."""
    level = 2 * rec.depth
    if rec.kind == "item":
        return level + 1
    if rec.kind in ("node", "nested"):
        return level + (2 if rec.attributes.get("hypernodes.item_index") is not None else 1)
    return level


def _row(rec: Any, group_by: str, index: int) -> str:
    """The row a span goes on."""
    indent = "\u2003" * _level(rec)
    if group_by == "span":
        return f"{index:>3} {indent}{rec.name}"
    if rec.kind == "item":
        return f"{indent}items of {rec.attributes.get('hypernodes.path', '')}"
    if group_by == "item" and rec.kind in ("node", "nested"):
        item = rec.attributes.get("hypernodes.item_index")
        where = rec.attributes.get("hypernodes.path", "")
        return f"{indent}{where} item {item}" if item is not None else f"{indent}{rec.name}"
    return f"{indent}{rec.name}"


def waterfall_figure(
    records: Sequence[Any], title: str = "HyperNodes run", group_by: str = "node"
) -> Any:
    """Horizontal bars from each span's start to its end, in ms from the first start, on rows
    chosen by ``group_by`` (``"node"``, ``"item"`` or ``"span"``; see the module docstring)."""
    if group_by not in GROUPINGS:
        raise ValueError(
            f"group_by must be one of {', '.join(map(repr, GROUPINGS))}, got {group_by!r}"
        )
    go = _plotly()
    import numpy as np

    ordered = sorted(records, key=lambda r: (r.start, r.depth))
    origin = ordered[0].start if ordered else 0.0
    rows: list[str] = []  # in first-seen order
    seen: set[str] = set()
    series: dict[str, tuple[list[str], list[float], list[float], list[float]]] = {}
    for i, rec in enumerate(ordered):
        row = _row(rec, group_by, i)
        if row not in seen:
            seen.add(row)
            rows.append(row)
        ys, starts, widths, items = series.setdefault(_category(rec), ([], [], [], []))
        ys.append(row)
        starts.append(round((rec.start - origin) * 1e3, 4))
        widths.append(round(max((rec.end - rec.start) * 1e3, 0.001), 4))
        item = rec.attributes.get("hypernodes.item_index")
        items.append(-1 if item is None else item)
    traces = [
        go.Bar(
            y=ys,
            x=np.asarray(widths),
            base=np.asarray(starts),
            customdata=np.asarray(items, dtype=np.int32),
            orientation="h",
            name=category,
            marker_color=_color(category),
            hovertemplate="%{y} (item %{customdata})<br>from %{base:.3f} ms, %{x:.3f} ms"
            "<extra>%{fullData.name}</extra>",
        )
        for category, (ys, starts, widths, items) in series.items()
    ]
    figure = go.Figure(traces)
    figure.update_layout(
        title=title,
        barmode="overlay",
        xaxis={"title": "ms since start", "side": "top"},
        yaxis={
            "autorange": "reversed",
            "categoryorder": "array",
            "categoryarray": rows,
            "type": "category",
        },
        height=min(max(300, 22 * len(rows) + 140), MAX_HEIGHT),
        showlegend=len(series) > 1,
        margin={"t": 110},
    )
    return figure


def _color(category: str) -> str:
    if category == "error":
        return ERROR_COLOR
    if category == "cached":
        return CACHED_COLOR
    return COLORS.get(category, "#888888")
