"""Lineage and slicing: upstream_of, downstream_of, path_between, subpipeline, and
``hypernodes describe --upstream-of``."""

from __future__ import annotations

import json

import pytest

from hypernodes import DiskCache, Pipeline, node
from hypernodes.exceptions import SubpipelineError, UnknownNameError
from hypernodes.model.lineage import Lineage
from test_cli import TEXT, hn, ok, one_line_error


@node(output_name="raw")
def load(path: str) -> str:
    return f"data of {path}"


@node(output_name="clean")
def clean(raw: str, strip: bool = True) -> str:
    return raw.strip() if strip else raw


@node(output_name=("train", "test"))
def split(clean: str, ratio: float = 0.5) -> tuple[str, str]:
    cut = int(len(clean) * ratio)
    return clean[:cut], clean[cut:]


@node(output_name="model")
def fit(train: str, seed: int) -> str:
    return f"model({train}, {seed})"


@node(output_name="score")
def evaluate(model: str, test: str) -> int:
    return len(model) + len(test)


@node(output_name="report")
def report(score: int, clean: str) -> str:
    return f"{score} on {len(clean)}"


def make() -> Pipeline:
    return Pipeline([load, clean, split, fit, evaluate, report], name="ml")


def test_upstream_of_a_value_lists_nodes_and_values_in_topological_order():
    got = make().upstream_of("model")
    assert got == Lineage(
        nodes=("load", "clean", "split", "fit"),
        values=("path", "raw", "strip", "clean", "ratio", "train", "seed", "model"),
    )
    assert "test" not in got  # the other output of split is not needed for the model
    assert "fit" in got and "score" not in got and got


def test_upstream_of_a_node_name_includes_the_node_but_not_its_outputs():
    got = make().upstream_of("evaluate")
    assert got.nodes == ("load", "clean", "split", "fit", "evaluate")
    assert "score" not in got.values
    assert make().upstream_of("fit", "report").nodes == make().upstream_of("report").nodes


def test_downstream_of():
    got = make().downstream_of("seed")
    assert got == Lineage(
        nodes=("fit", "evaluate", "report"), values=("seed", "model", "score", "report")
    )
    # a node and its default output share a name: both are meant
    assert make().downstream_of("clean").nodes == ("clean", "split", "fit", "evaluate", "report")


def test_path_between():
    pipeline = make()
    got = pipeline.path_between("raw", "score")
    assert got.nodes == ("clean", "split", "fit", "evaluate")
    assert got.values == ("raw", "clean", "train", "test", "model", "score")
    assert pipeline.path_between("seed", "test") == Lineage((), ())
    assert not pipeline.path_between("score", "raw")


def test_unknown_names_are_named_with_close_matches():
    with pytest.raises(
        UnknownNameError, match=r"no node or value named 'modle' \(did you mean 'model'"
    ):
        make().upstream_of("modle")
    with pytest.raises(UnknownNameError, match="'scroe'"):
        make().path_between("raw", "scroe")
    with pytest.raises(UnknownNameError, match="strings"):
        make().downstream_of(3)  # type: ignore[arg-type]


def test_subpipeline_outputs_only_keeps_what_they_need():
    sub = make().subpipeline(outputs="model")
    assert [n.name for n in sub.nodes] == ["load", "clean", "split", "fit"]
    assert sub.root_args == ("path", "strip", "ratio", "seed")
    assert sub.run({"path": "ab", "seed": 1})["model"] == "model(data , 1)"


def test_subpipeline_inputs_become_root_inputs():
    pipeline = make()
    sub = pipeline.subpipeline(inputs=["clean"], outputs=["score"])
    assert [n.name for n in sub.nodes] == ["split", "fit", "evaluate"]
    assert set(sub.root_args) == {"clean", "ratio", "seed"}
    assert sub.run({"clean": "abcd", "seed": 7}) == {
        "train": "ab",
        "test": "cd",
        "model": "model(ab, 7)",
        "score": len("model(ab, 7)") + 2,
    }
    # without outputs: everything computed from the inputs (and what else those need)
    rest = pipeline.subpipeline(inputs="model")
    assert [n.name for n in rest.nodes] == ["load", "clean", "split", "evaluate", "report"]
    assert "model" in rest.root_args and "seed" not in rest.root_args
    # the original is untouched
    assert len(pipeline.nodes) == 6


def test_subpipeline_keeps_settings_and_the_bound_values_it_still_takes(tmp_path):
    cache = DiskCache(tmp_path)
    pipeline = make().bind(seed=3, path="p").with_cache(cache)
    sub = pipeline.subpipeline(inputs="clean", outputs="model")
    assert sub.cache is cache and sub.name == "ml"
    assert sub.bound_inputs == {"seed": 3}
    assert sub.run({"clean": "xy"}) == {"train": "x", "test": "y", "model": "model(x, 3)"}
    assert pipeline.subpipeline().nodes == pipeline.nodes


def test_subpipeline_refuses_what_it_cannot_cut():
    with pytest.raises(SubpipelineError, match="'nope', which is no value"):
        make().subpipeline(outputs=["nope"])
    with pytest.raises(SubpipelineError, match=r"inputs \['seed'\] lead to none of the outputs"):
        make().subpipeline(inputs=["seed"], outputs=["clean"])
    with pytest.raises(SubpipelineError, match=r"node 'split' produces \['train'\].*\['test'\]"):
        make().subpipeline(inputs=["train"], outputs=["score"])
    # listing both outputs of that node is the fix the message gives
    assert [
        n.name for n in make().subpipeline(inputs=["train", "test"], outputs="score").nodes
    ] == [
        "fit",
        "evaluate",
    ]


def test_nested_pipeline_is_one_node():
    inner = Pipeline([load, clean], name="prep")
    outer = Pipeline([inner, split, fit], name="outer")
    assert outer.upstream_of("train").nodes == ("prep", "split")
    assert outer.subpipeline(inputs="clean").run({"clean": "abcd", "seed": 0})["model"] == (
        "model(ab, 0)"
    )


def test_cli_describe_upstream_of_prints_the_lineage_and_the_slice():
    out = ok("describe", TEXT, "--upstream-of", "words").stdout
    assert out.splitlines()[:4] == [
        "upstream of words:",
        "  nodes:  clean, split",
        "  values: text, lowercase, cleaned, words",
        "pipeline 'text': 2 nodes",
    ]
    assert "measure" not in out
    data = json.loads(ok("describe", TEXT, "--upstream-of", "split", "--format", "json").stdout)
    assert data["upstream_of"] == {
        "names": ["split"],
        "nodes": ["clean", "split"],
        "values": ["text", "lowercase", "cleaned"],
    }
    assert [n["name"] for n in data["nodes"]] == ["clean", "split"]


def test_cli_describe_upstream_of_an_unknown_name_is_one_line():
    one_line_error(hn("describe", TEXT, "--upstream-of", "wrds"), 1, "UnknownNameError", "'words'")
