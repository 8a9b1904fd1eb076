"""``pipeline.visualize(engine="widget")``: an interactive graph for notebooks and web pages.

The graph is drawn in the browser by ``widget.js`` (shipped inside the package, inlined in the
output, so nothing is fetched): drag to pan, scroll to zoom, click a nested pipeline to expand
or collapse it, click any node for its inputs, outputs, types and options; a button switches
between the light and dark themes.  In Jupyter the widget shows as HTML output (no ipywidgets
needed); ``to_html()`` gives a page of its own and ``save(path)`` writes it.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any

from ..model.node import Node
from ..model.pipeline_node import PipelineNode
from .hints import TypeHints

#: the ``visualize(engine=...)`` names of this widget (``"js"`` is the original HyperNodes' name)
ENGINES = ("widget", "js")
THEMES = ("light", "dark")

_ids = itertools.count()

_CSS = """
.hn-graph { font: 13px system-ui, sans-serif; border: 1px solid #d5d9e0; border-radius: 6px;
  position: relative; overflow: hidden; }
.hn-graph .hn-stage { width: 100%; height: 100%; cursor: grab; }
.hn-graph .hn-bar { position: absolute; top: 6px; right: 6px; z-index: 2; }
.hn-graph .hn-bar button { font: 12px system-ui; margin-left: 4px; border-radius: 4px;
  border: 1px solid #b8bfcc; background: #fff; cursor: pointer; }
.hn-graph .hn-details { display: none; position: absolute; left: 6px; top: 6px; z-index: 2;
  max-width: 320px; padding: 6px 10px; border-radius: 6px; font-size: 12px; }
.hn-graph .hn-details h4 { margin: 2px 0 4px; } .hn-graph .hn-details ul { margin: 0 0 4px;
  padding-left: 16px; }
.hn-graph .hn-node { cursor: pointer; } .hn-graph .hn-edge { fill: none; stroke-width: 1.4; }
.hn-graph .hn-group { cursor: pointer; } .hn-graph .hn-group rect { stroke-dasharray: 5 3; }
.hn-light { background: #ffffff; color: #1d2330; }
.hn-light .hn-function rect { fill: #dbe9fb; stroke: #3b6fb6; }
.hn-light .hn-pipeline rect { fill: #f3e6d8; stroke: #9d755d; stroke-width: 2; }
.hn-light .hn-input ellipse { fill: #fff; stroke: #8a93a6; stroke-dasharray: 4 2; }
.hn-light text { fill: #1d2330; } .hn-light .hn-edge { stroke: #6b7385; }
.hn-light .hn-arrowhead { fill: #6b7385; }
.hn-light .hn-group rect { fill: #faf6f1; stroke: #9d755d; }
.hn-light .hn-details { background: #f5f6f8; border: 1px solid #d5d9e0; }
.hn-dark { background: #1b1e24; color: #e4e7ec; }
.hn-dark .hn-function rect { fill: #24415f; stroke: #7fb0ea; }
.hn-dark .hn-pipeline rect { fill: #4a3a2c; stroke: #d2a27c; stroke-width: 2; }
.hn-dark .hn-input ellipse { fill: #1b1e24; stroke: #9aa3b5; stroke-dasharray: 4 2; }
.hn-dark text { fill: #e4e7ec; } .hn-dark .hn-edge { stroke: #9aa3b5; }
.hn-dark .hn-arrowhead { fill: #9aa3b5; }
.hn-dark .hn-group rect { fill: #262a31; stroke: #d2a27c; }
.hn-dark .hn-details { background: #262a31; border: 1px solid #3a404b; }
.hn-dark .hn-bar button { background: #262a31; color: #e4e7ec; border-color: #3a404b; }
"""


def script() -> str:
    """The widget's JavaScript, as shipped in the package."""
    return resources.files(__package__).joinpath("widget.js").read_text(encoding="utf-8")


def graph_data(pipeline: Any) -> dict[str, Any]:
    """The pipeline as the widget draws it: nodes with the global names of what they read and
    produce (a nested pipeline's inner names mapped to the outer ones), their details, and the
    children of nested pipelines."""
    return {"name": pipeline.label, "nodes": _nodes(pipeline, lambda name: name, "", TypeHints())}


def _nodes(
    pipeline: Any, rename: Callable[[str], str], prefix: str, hints: TypeHints
) -> list[dict[str, Any]]:
    nodes = []
    for item in pipeline.pgraph.nodes:
        entry: dict[str, Any] = {
            "id": prefix + item.name,
            "name": item.name,
            "kind": "pipeline" if isinstance(item, PipelineNode) else "function",
            "inputs": [rename(n) for n in item.inputs],
            "outputs": [rename(n) for n in item.outputs],
            "details": _details(item, hints),
        }
        if isinstance(item, PipelineNode):
            entry["children"] = _nodes(
                item.pipeline, _inner_names(item, rename, prefix), f"{prefix}{item.name}/", hints
            )
        nodes.append(entry)
    return nodes


def _inner_names(
    pn: PipelineNode, rename: Callable[[str], str], prefix: str
) -> Callable[[str], str]:
    """How a nested pipeline's names read outside: its mapped inputs and outputs by the outer
    names, the rest under the nested step's path."""

    def inner(name: str) -> str:
        if name in pn.input_to_outer:
            return rename(pn.input_to_outer[name])
        if name in pn.output_to_outer:
            return rename(pn.output_to_outer[name])
        return f"{prefix}{pn.name}/{name}"

    return inner


def _details(item: Any, hints: TypeHints) -> dict[str, Any]:
    types_in, types_out = hints.inputs(item), hints.outputs(item)
    options: dict[str, Any] = {}
    if isinstance(item, Node):
        for key in ("retries", "timeout", "cache_version"):
            value = getattr(item, key, None)
            if value:
                options[key] = value
        if item.cache is False:
            options["cache"] = False
        if item.is_async:
            options["async"] = True
        if item.batch_func is not None:
            options["batch"] = True
        doc = (item.__doc__ or "").strip().split("\n\n")[0]
    else:
        if item.map_over:
            options["map_over"] = ", ".join(item.map_over)
            options["map_mode"] = item.map_mode
        doc = ""
    return {
        "inputs": [{"name": n, "type": types_in.get(n)} for n in item.inputs],
        "outputs": [{"name": n, "type": types_out.get(n)} for n in item.outputs],
        "options": {
            k: (v if isinstance(v, int | float | str | bool) else repr(v))
            for k, v in options.items()
        },
        "doc": " ".join(doc.split())[:300],
    }


class GraphWidget:
    """An interactive graph of a pipeline (see the module docstring).  ``theme`` is ``"light"``
    or ``"dark"``; ``expanded`` names nested pipeline steps to show open at first (``True``:
    all); ``height`` is in pixels."""

    def __init__(
        self,
        pipeline: Any,
        theme: str = "light",
        expanded: bool | list[str] = False,
        height: int = 480,
    ) -> None:
        if theme not in THEMES:
            raise ValueError(f"theme must be one of {', '.join(map(repr, THEMES))}, got {theme!r}")
        self.data = graph_data(pipeline)
        self.theme = theme
        self.height = height
        if expanded is True:
            self.data["expanded"] = _all_pipelines(self.data["nodes"])
        elif expanded:
            self.data["expanded"] = list(expanded)

    def _repr_html_(self) -> str:
        return self.fragment()

    def fragment(self) -> str:
        """The widget as an HTML fragment (style, markup and script) to put in a page."""
        root = f"hn-graph-{next(_ids)}"
        payload = json.dumps(self.data).replace("</", "<\\/")
        return (
            f"<style>{_CSS}</style>"
            f"<div id='{root}' class='hn-graph hn-{self.theme}' style='height:{int(self.height)}px'>"
            "<div class='hn-bar'><button class='hn-expand'>expand all</button>"
            "<button class='hn-fit'>fit</button><button class='hn-theme'>theme</button></div>"
            "<div class='hn-details'></div><div class='hn-stage'></div></div>"
            f"<script>{script()}\nhypernodesGraph(document.getElementById('{root}'), {payload});"
            "</script>"
        )

    def to_html(self) -> str:
        """A page of its own holding the widget."""
        return (
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{escape(self.data['name'])}</title></head><body>{self.fragment()}</body></html>"
        )

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_html` to ``path``."""
        target = Path(path)
        target.write_text(self.to_html(), encoding="utf-8")
        return target


def _all_pipelines(nodes: list[dict[str, Any]]) -> list[str]:
    found = []
    for n in nodes:
        if n["kind"] == "pipeline":
            found.append(n["id"])
            found += _all_pipelines(n["children"])
    return found
