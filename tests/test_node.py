"""Nodes: decorator forms, outputs, defaults, renames and staying callable."""

from __future__ import annotations

import pytest

from hypernodes import Node, node
from hypernodes.exceptions import InvalidNodeError


def test_bare_decorator_uses_function_name_as_output():
    @node
    def total(x: int, y: int = 2) -> int:
        return x + y

    assert isinstance(total, Node)
    assert total.outputs == ("total",)
    assert total.inputs == ("x", "y")
    assert total.defaults == {"y": 2}
    assert total(1) == 3  # still the plain function
    assert total.__name__ == "total"


def test_output_name_keyword_positional_and_tuple():
    @node(output_name="y")
    def a(x):
        return x

    @node("z")
    def b(x):
        return x

    @node(output_name=("lo", "hi"))
    def c(x):
        return x - 1, x + 1

    assert a.outputs == ("y",)
    assert b.outputs == ("z",)
    assert c.outputs == ("lo", "hi")
    assert c.output_name == ("lo", "hi")
    assert repr(c) == "c(x) -> (lo, hi)"


def test_options_are_stored():
    @node(output_name="y", cache=False, cache_version="v2", name="custom")
    def f(x):
        return x

    assert (f.cache, f.cache_version, f.name) == (False, "v2", "custom")


def test_async_function_is_detected():
    @node
    async def fetch(url):
        return url

    assert fetch.is_async
    assert not node(lambda x: x, output_name="y").is_async


@pytest.mark.parametrize(
    "bad",
    [
        lambda: node(lambda *args: 1, output_name="y"),
        lambda: node(lambda **kw: 1, output_name="y"),
        lambda: node(output_name="")(lambda x: x),
        lambda: node(output_name=("a", "a"))(lambda x: x),
        lambda: node(output_name=3)(lambda x: x),
        lambda: Node(42),
    ],
)
def test_invalid_nodes_are_refused(bad):
    with pytest.raises(InvalidNodeError):
        bad()


def test_with_inputs_and_with_output_copy_without_changing_original():
    @node(output_name="y")
    def inc(x, step=1):
        return x + step

    renamed = inc.with_inputs(x="a", step="delta").with_output("b")
    assert renamed.inputs == ("a", "delta")
    assert renamed.defaults == {"delta": 1}
    assert renamed.outputs == ("b",)
    assert inc.inputs == ("x", "step") and inc.outputs == ("y",)
    with pytest.raises(InvalidNodeError, match="no input"):
        inc.with_inputs(nope="a")
    with pytest.raises(InvalidNodeError, match="returns 1 output"):
        inc.with_output(("p", "q"))
    with pytest.raises(InvalidNodeError, match="two inputs one name"):
        inc.with_inputs(x="step")


def test_node_of_node_unwraps():
    @node(output_name="y")
    def f(x):
        return x

    again = Node(f, "z")
    assert again.func is f.func and again.outputs == ("z",)
