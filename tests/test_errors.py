"""Node errors keep their type and gain one note: node, pipeline path and map item index."""

from __future__ import annotations

import pytest

from hypernodes import Pipeline, node
from hypernodes.exceptions import HyperNodesError, OutputShapeError


@node(output_name="checked")
def check(x: int) -> int:
    if x < 0:
        raise ValueError(f"negative: {x}")
    return x


def notes(exc: BaseException) -> list[str]:
    return getattr(exc, "__notes__", [])


def test_run_error_keeps_type_and_names_node_and_pipeline():
    with pytest.raises(ValueError, match="negative: -1") as info:
        Pipeline([check], name="validate").run({"x": -1})
    assert notes(info.value) == [
        "hypernodes: raised by node 'check' of pipeline validate; inputs: x=-1"
    ]


def test_map_error_names_item_index():
    with pytest.raises(ValueError) as info:
        Pipeline([check], name="validate").map({"x": [1, 2, -3, 4]}, map_over="x")
    assert notes(info.value) == [
        "hypernodes: raised by node 'check' of pipeline validate[item 2]; inputs: x=-3"
    ]


def test_nested_error_names_the_whole_path_once():
    inner = Pipeline([check], name="inner")
    middle = Pipeline([inner.as_node(map_over="x", name="each")], name="middle")
    outer = Pipeline([middle], name="outer")
    with pytest.raises(ValueError) as info:
        outer.map({"x": [[1], [2, -5]]}, map_over="x")
    assert notes(info.value) == [
        "hypernodes: raised by node 'check' of pipeline outer[item 1] > middle > each[item 1]; inputs: x=-5"
    ]


def test_library_errors_derive_from_hypernodes_error_and_get_no_node_note():
    with pytest.raises(HyperNodesError) as info:
        Pipeline([check]).run({})
    assert notes(info.value) == []


def test_tuple_output_of_wrong_length():
    @node(output_name=("a", "b"))
    def pair(x):
        return (x, x, x)

    @node(output_name=("a", "b"))
    def scalar(x):
        return x

    with pytest.raises(OutputShapeError, match=r"declares 2 outputs.*length 3"):
        Pipeline([pair]).run({"x": 1})
    with pytest.raises(OutputShapeError, match="returned int"):
        Pipeline([scalar]).run({"x": 1})


def test_error_raised_again_later_is_noted_once():
    pipeline = Pipeline([check], name="p")
    for _ in range(2):
        with pytest.raises(ValueError) as info:
            pipeline.run({"x": -1})
        assert len(notes(info.value)) == 1


def test_exception_that_refuses_attributes_still_gets_a_note():
    class Slotted(Exception):
        __slots__ = ()

        def __setattr__(self, name, value):
            if name != "__notes__":
                raise AttributeError(name)
            super().__setattr__(name, value)

    @node(output_name="y")
    def fail(x):
        raise Slotted("no attributes")

    with pytest.raises(Slotted) as info:
        Pipeline([fail], name="p").run({"x": 1})
    assert notes(info.value) == ["hypernodes: raised by node 'fail' of pipeline p; inputs: x=1"]


def test_keyboard_interrupt_is_not_wrapped():
    @node(output_name="y")
    def interrupt(x):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Pipeline([interrupt]).map({"x": [1, 2]}, map_over="x")


def test_a_long_input_is_cut_in_the_note_and_kept_whole_on_the_item_error():
    from hypernodes import ItemError

    @node(output_name="n")
    def count_words(text: str, limit: int = 3) -> int:
        if len(text) > 200:
            raise ValueError("too long")
        return len(text.split())

    text = "word " * 100
    rows = Pipeline([count_words], name="p").map(
        {"text": ["a b", text]}, map_over="text", on_error="continue"
    )
    error = rows[1]["n"]
    assert isinstance(error, ItemError) and error.inputs == {"text": text, "limit": 3}
    (note,) = error.exception.__notes__
    assert note.startswith(
        "hypernodes: raised by node 'count_words' of pipeline p[item 1]; inputs: text='word word"
    )
    assert "...,  limit=3" not in note and note.endswith(", limit=3")
    assert len(note) < 250
    # the failing item can be re-run by hand from what the error carries
    with pytest.raises(ValueError, match="too long"):
        count_words(**error.inputs)
