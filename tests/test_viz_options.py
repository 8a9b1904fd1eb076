"""visualize(show_legend=..., return_type=...): a legend of what the picture holds, and the
picture as a Digraph, SVG text or an IPython HTML object (rendered for real with ``dot``)."""

from __future__ import annotations

import html
import re

import graphviz
import pytest

from hypernodes.exceptions import HyperNodesError
from hypernodes.viz import RETURN_TYPES, render
from test_viz import flat, svg_texts, three_levels


def legend_texts(svg: str) -> list[str]:
    """The legend's title, then the label of each of its samples, in order."""
    box = re.search(r"<title>cluster_legend</title>.*?<text[^>]*>(.*?)</text>", svg, re.S)
    samples = re.findall(r"<title>legend_\w+</title>.*?<text[^>]*>(.*?)</text>", svg, re.S)
    return [html.unescape(t).strip() for t in [box.group(1), *samples]]


def test_legend_lists_the_kinds_the_picture_holds():
    svg = render(flat().visualize(show_legend=True), "svg").decode()
    texts = legend_texts(svg)
    assert texts[0] == "Legend"
    assert texts[1:] == ["input", "optional input", "bound input", "function", "output"]

    nested = render(three_levels().visualize(show_legend=True, depth=None), "svg").decode()
    assert legend_texts(nested)[1:] == [
        "input",
        "optional input",
        "bound input",
        "function",
        "nested pipeline, opened",
        "output",
        "mapped over (edge)",
    ]
    collapsed = render(three_levels().visualize(show_legend=True), "svg").decode()
    assert "nested pipeline" in legend_texts(collapsed)


def test_no_legend_by_default():
    assert "cluster_legend" not in flat().visualize().source
    assert "Legend" not in svg_texts(render(flat().visualize(), "svg").decode())


def test_return_types(tmp_path):
    pipeline = flat()
    assert RETURN_TYPES == ("auto", "graphviz", "svg", "html")
    for kind in ("auto", "graphviz"):
        assert isinstance(pipeline.visualize(return_type=kind), graphviz.Digraph)
    svg = pipeline.visualize(return_type="svg", show_legend=True)
    assert isinstance(svg, str) and svg.lstrip().startswith("<?xml") and "</svg>" in svg
    assert "Legend" in svg_texts(svg)
    page = pipeline.visualize(return_type="html", filename=tmp_path / "p.svg")
    assert type(page).__name__ == "HTML" and "<svg" in page._repr_html_()
    assert (tmp_path / "p.svg").read_text().count("<svg") == 1
    with pytest.raises(HyperNodesError, match="return_type must be one of"):
        pipeline.visualize(return_type="png")


def test_html_without_ipython_says_what_to_use(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "IPython.display", None)
    with pytest.raises(HyperNodesError, match='return_type="svg"'):
        flat().visualize(return_type="html")
