"""A timeline (waterfall) of spans recorded by ``TelemetryCallback``, drawn with plotly."""

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


def waterfall_figure(records: Sequence[Any], title: str = "HyperNodes run") -> Any:
    """Horizontal bars from each span's start to its end, in ms from the first start."""
    try:
        import plotly.graph_objects as go
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            'the waterfall chart needs plotly: pip install "hypernodes[telemetry]"'
        ) from exc

    ordered = sorted(records, key=lambda r: (r.start, r.depth))
    origin = ordered[0].start if ordered else 0.0
    labels, starts, widths, colors, hover = [], [], [], [], []
    for i, rec in enumerate(ordered):
        labels.append(f"{i:>3} " + "\u2003" * rec.depth + rec.name)
        starts.append((rec.start - origin) * 1e3)
        widths.append(max((rec.end - rec.start) * 1e3, 0.001))
        if "hypernodes.error" in rec.attributes:
            colors.append(ERROR_COLOR)
        elif rec.attributes.get("hypernodes.cached"):
            colors.append(CACHED_COLOR)
        else:
            colors.append(COLORS.get(rec.kind, "#888888"))
        hover.append(f"{rec.kind} {rec.name}<br>{widths[-1]:.3f} ms")
    figure = go.Figure(
        go.Bar(
            y=labels,
            x=widths,
            base=starts,
            orientation="h",
            marker_color=colors,
            hovertext=hover,
            hoverinfo="text",
        )
    )
    figure.update_layout(
        title=title,
        xaxis_title="ms since start",
        yaxis={"autorange": "reversed"},
        height=max(300, 22 * len(ordered) + 120),
        showlegend=False,
    )
    return figure
