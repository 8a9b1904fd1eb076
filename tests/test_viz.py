"""Pipeline pictures: rendered for real with graphviz's ``dot``, checked through the SVG text."""

from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path

import graphviz
import pytest

from hypernodes import Pipeline, node
from hypernodes.exceptions import GraphvizNotFoundError, HyperNodesError
from hypernodes.viz import STYLES, Style, render


# -- pipelines to draw ---------------------------------------------------------------------------
@node(output_name="cleaned")
def clean(text: str, lower: bool = True) -> str:
    return text.lower() if lower else text


@node(output_name=("n_words", "n_chars"))
def count(cleaned: str) -> tuple[int, int]:
    return len(cleaned.split()), len(cleaned)


@node(output_name="score")
def score(n_words: int, n_chars: int, weight: float) -> float:
    return weight * n_words / max(n_chars, 1)


@node
def total(scores: list[float]) -> float:
    return sum(scores)


def flat() -> Pipeline:
    return Pipeline([clean, count, score], name="flat").bind(weight=2.5)


def three_levels() -> Pipeline:
    """``corpus`` maps ``per_doc`` over documents; ``per_doc`` nests ``text_stats``."""
    stats = Pipeline([clean, count], name="text_stats")
    per_doc = Pipeline([stats.as_node(input_mapping={"doc": "text"}), score], name="scoring")
    per_doc = per_doc.bind(weight=2.0)
    mapped = per_doc.as_node(
        name="per_doc",
        input_mapping={"docs": "doc"},
        output_mapping={"score": "scores"},
        map_over="docs",
    )
    return Pipeline([mapped, total], name="corpus")


def svg_texts(svg: str) -> list[str]:
    """Every text element of an SVG, unescaped and stripped."""
    return [html.unescape(t).strip() for t in re.findall(r"<text[^>]*>(.*?)</text>", svg)]


def draw(pipeline: Pipeline, **options: object) -> tuple[str, list[str]]:
    svg = render(pipeline.visualize(**options), "svg").decode()
    return svg, svg_texts(svg)


def clusters(svg: str) -> int:
    return len(re.findall(r'<g id="clust\d+" class="cluster">', svg))


# -- what is drawn -------------------------------------------------------------------------------
def test_flat_pipeline_shows_inputs_nodes_outputs_types_defaults_and_bound_values(
    tmp_path: Path,
) -> None:
    path = tmp_path / "flat.svg"
    digraph = flat().visualize(filename=path)
    assert isinstance(digraph, graphviz.Digraph)
    svg = path.read_text()
    texts = svg_texts(svg)
    assert svg.lstrip().startswith("<?xml") and "</svg>" in svg
    assert clusters(svg) == 0
    # inputs, with types; the optional one shows its default, the bound one its value
    for text in ("text", "lower", "weight", ": str", ": bool", ": float", "= True", "bound = 2.5"):
        assert text in texts, text
    # nodes and their (tuple) outputs, typed from the annotations
    for text in ("clean", "count", "cleaned", "n_words", "n_chars", ": int", "score"):
        assert text in texts, text
    # the final output gets its own shape: drawn once as the node's port, once as an output
    assert texts.count("score") == 2
    assert 'style="dashed,filled"' in digraph.source  # the optional input


def test_show_types_false_hides_the_hints() -> None:
    _, texts = draw(flat(), show_types=False)
    assert "cleaned" in texts
    assert not any(t.startswith(":") for t in texts)


@pytest.mark.parametrize(("depth", "expected"), [(1, 0), (2, 1), (3, 2), (None, 2), (9, 2)])
def test_nested_pipelines_expand_to_clusters_by_depth(depth: int | None, expected: int) -> None:
    svg, texts = draw(three_levels(), depth=depth)
    assert clusters(svg) == expected
    assert "per_doc" in texts and "total" in texts
    if expected == 0:
        assert "(pipeline)" in texts
        assert "clean" not in texts  # the inner nodes are hidden in the box
    if expected >= 1:
        assert "score" in texts and "bound = 2.0" in texts  # per_doc's own node and bound input
    if expected == 1:
        assert "text_stats" in texts and "(pipeline)" in texts  # collapsed one level down
        assert "clean" not in texts
    if expected == 2:
        assert "clean" in texts and "count" in texts
        assert "(pipeline)" not in texts


def test_depth_one_box_shows_map_over_bound_renames_and_inner_types() -> None:
    _, texts = draw(three_levels())
    assert "map_over: docs" in texts
    assert "bound: weight" in texts
    assert "outputs: score → scores" in texts
    assert "map docs → doc" in texts  # the edge into the box
    # outputs of the nested pipeline take the inner nodes' types, as lists because it maps
    assert ": list[float]" in texts  # scores
    assert ": list[int]" in texts and ": list[str]" in texts


def test_expanded_mapped_cluster_labels_map_over_and_mapping_edges() -> None:
    svg, texts = draw(three_levels(), depth=None)
    assert "map_over: docs" in texts  # the cluster's label
    assert "map docs → doc → text" in texts  # a chain of renames into the innermost node
    assert "collect score → scores" in texts  # the list that leaves the mapped pipeline
    assert "collect n_words" in texts
    cluster_titles = re.findall(r'<g id="clust\d+" class="cluster">\s*<title>([^<]*)</title>', svg)
    assert len(cluster_titles) == 2


def test_flatten_expands_everything_without_boxes() -> None:
    svg, texts = draw(three_levels(), flatten=True)
    assert clusters(svg) == 0
    assert {"clean", "count", "score", "total"} <= set(texts)
    assert "map docs → doc → text" in texts


def test_product_map_and_renamed_function_inputs() -> None:
    @node(output_name="y")
    def mul(a: int, b: int) -> int:
        return a * b

    inner = Pipeline([mul.with_inputs(a="left")], name="grid")
    outer = Pipeline([inner.as_node(map_over=["left", "b"], map_mode="product")], name="outer")
    assert outer.run({"left": [1, 2], "b": [10, 20]})["y"] == [10, 20, 20, 40]
    _, texts = draw(outer)
    assert "map_over: left, b (product)" in texts
    _, texts = draw(outer, depth=2)
    assert "map left → a" in texts  # mapped in, then read as parameter ``a``
    assert "map b" in texts


def test_unresolvable_annotations_fall_back_to_the_written_text() -> None:
    @node(output_name="model")
    def fit(data: FrameNotImported, k: int = 3) -> ModelNotImported:  # noqa: F821
        return (data, k)

    _, texts = draw(Pipeline([fit]))
    assert ": FrameNotImported" in texts and ": ModelNotImported" in texts
    assert "= 3" in texts


def test_orientation_and_styles(tmp_path: Path) -> None:
    digraph = flat().visualize(orient="LR", style="dark")
    assert "rankdir=LR" in digraph.source
    svg = render(digraph, "svg").decode()
    assert STYLES["dark"].background in svg
    digraph = flat().visualize(style={"theme": "dark", "function_fill": "#123456"})
    assert "#123456" in digraph.source and STYLES["dark"].background in digraph.source
    custom = Style(output_fill="#abcdef")
    assert "#abcdef" in flat().visualize(style=custom).source
    assert "filled" not in flat().visualize(style="minimal").source
    with pytest.raises(HyperNodesError, match="no field"):
        flat().visualize(style={"colour": "red"})
    with pytest.raises(HyperNodesError, match="unknown style"):
        flat().visualize(style="neon")
    with pytest.raises(HyperNodesError, match="orient"):
        flat().visualize(orient="up")
    with pytest.raises(HyperNodesError, match="depth"):
        flat().visualize(depth=0)


# -- files ---------------------------------------------------------------------------------------
def test_png_pdf_and_dot_files(tmp_path: Path) -> None:
    pipeline = three_levels()
    png = tmp_path / "corpus.png"
    assert isinstance(pipeline.visualize(filename=png, depth=None), graphviz.Digraph)
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    pdf = tmp_path / "corpus.pdf"
    pipeline.visualize(filename=str(pdf))
    assert pdf.read_bytes().startswith(b"%PDF")
    dot = tmp_path / "corpus.dot"
    pipeline.visualize(filename=dot)
    assert dot.read_text().startswith("digraph corpus {")
    with pytest.raises(HyperNodesError, match="extensions"):
        pipeline.visualize(filename=tmp_path / "corpus.bmp")


def test_jupyter_shows_an_svg() -> None:
    svg = three_levels()._repr_svg_()
    assert svg is not None and "<svg" in svg and "per_doc" in svg


# -- missing pieces ------------------------------------------------------------------------------
def test_missing_dot_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    pipeline = flat()
    with pytest.raises(GraphvizNotFoundError) as info:
        pipeline.visualize(filename=tmp_path / "flat.svg")
    message = str(info.value)
    for hint in ("apt-get install graphviz", "brew install graphviz", "conda install graphviz"):
        assert hint in message
    assert isinstance(info.value, HyperNodesError)
    assert not (tmp_path / "flat.svg").exists()
    # building the graph needs no dot; Jupyter falls back to the repr
    assert "clean" in pipeline.visualize().source
    assert pipeline._repr_svg_() is None


def test_missing_python_package_says_pip_install_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "graphviz", None)  # ``import graphviz`` now fails
    with pytest.raises(GraphvizNotFoundError, match=re.escape('pip install "hypernodes[viz]"')):
        flat().visualize()
    assert flat()._repr_svg_() is None


def test_import_hypernodes_does_not_import_graphviz() -> None:
    code = (
        "import sys, hypernodes\n"
        "from hypernodes import node, Pipeline\n"
        "assert Pipeline([node(output_name='y')(abs)]).run({'x': -1}) == {'y': 1}\n"
        "assert 'graphviz' not in sys.modules, 'graphviz imported'\n"
    )
    src = str(Path(__file__).resolve().parents[1] / "src")
    done = subprocess.run(
        [sys.executable, "-c", code], env={"PYTHONPATH": src}, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def test_docs_example_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page = Path(__file__).resolve().parents[1] / "docs" / "visualization.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "docs_example"}
    for block in blocks:  # in page order, sharing one namespace, as tests/test_docs.py runs them
        exec(compile(block, str(page), "exec"), namespace)
    assert "per_doc" in (tmp_path / "corpus.svg").read_text()
    assert (tmp_path / "corpus_full.png").read_bytes().startswith(b"\x89PNG")
