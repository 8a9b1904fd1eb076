"""A pipeline made without ``name=`` is "the pipeline" in messages, never "pipeline 'pipeline'"."""

from __future__ import annotations

import pytest

from hypernodes import Pipeline, node
from hypernodes.exceptions import (
    CycleError,
    DuplicateOutputError,
    HyperNodesError,
    MissingInputError,
    UnknownOutputError,
)


@node(output_name="checked")
def check(x: int) -> int:
    if x < 0:
        raise ValueError("negative")
    return x


@node(output_name="x")
def back(checked: int) -> int:
    return checked


def message(raises, call) -> str:
    with pytest.raises(raises) as info:
        call()
    text = "\n".join([str(info.value), *getattr(info.value, "__notes__", [])])
    assert "'pipeline'" not in text and "pipeline pipeline" not in text, text
    return text


def test_node_notes_of_an_unnamed_pipeline():
    run = message(ValueError, lambda: Pipeline([check]).run({"x": -1}))
    assert run.endswith("hypernodes: raised by node 'check' of the pipeline; inputs: x=-1")
    mapped = message(ValueError, lambda: Pipeline([check]).map({"x": [1, -1]}, map_over="x"))
    assert mapped.endswith(
        "hypernodes: raised by node 'check' of the pipeline[item 1]; inputs: x=-1"
    )


def test_library_errors_of_an_unnamed_pipeline():
    assert message(MissingInputError, lambda: Pipeline([check]).run({})).startswith(
        "the pipeline is missing input(s): 'x'"
    )
    assert message(UnknownOutputError, lambda: Pipeline([check]).run({"x": 1}, "nope")).startswith(
        "the pipeline has no output(s) ['nope']"
    )
    assert message(HyperNodesError, lambda: Pipeline([check]).bind(z=1)).startswith(
        "the pipeline takes no input(s) named 'z'"
    )
    assert message(CycleError, lambda: Pipeline([check, back])).startswith(
        "the pipeline has a cycle"
    )
    assert message(DuplicateOutputError, lambda: Pipeline([check, check.with_output("checked")]))
    assert "takes no input 'y'" in message(
        HyperNodesError, lambda: Pipeline([check]).map({"x": [1], "y": [2]}, map_over="y")
    )


def test_named_pipelines_keep_their_quoted_name():
    with pytest.raises(MissingInputError, match=r"^pipeline 'etl' is missing input\(s\)"):
        Pipeline([check], name="etl").run({})
    with pytest.raises(ValueError) as info:
        Pipeline([check], name="etl").run({"x": -1})
    assert info.value.__notes__ == [
        "hypernodes: raised by node 'check' of pipeline etl; inputs: x=-1"
    ]
