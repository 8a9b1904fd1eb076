"""Type-checked connections: what is compatible, what raises at construction, nested pipelines,
and the optional run-time check."""

from __future__ import annotations

import collections.abc as abc
import pickle
import typing
import warnings
from typing import Any, NewType, Optional, Protocol, TypeVar, Union

import pytest

from hypernodes import HypernodesEngine, HyperNodesError, MemoryCache, Pipeline, node
from hypernodes.exceptions import TypeMismatchError, TypeMismatchWarning
from hypernodes.model.typecheck import compatible, element_type, function_hints

T = TypeVar("T")
UserId = NewType("UserId", int)


class Shape:
    pass


class Circle(Shape):
    pass


class Robot:
    pass


class HasArea(Protocol):
    def area(self) -> float: ...


# (produced, expected, compatible?) — "compatible" means some value of one may be the other
PAIRS: list[tuple[Any, Any, bool]] = [
    # plain classes
    (int, int, True),
    (str, int, False),
    (bytes, str, False),
    (bool, int, True),
    (int, float, True),  # PEP 484 numeric promotion
    (int, complex, True),
    (float, int, False),
    (Circle, Shape, True),
    (Shape, Circle, True),  # a Shape may be a Circle: undecidable, passes
    (Circle, Robot, False),
    (object, int, True),
    (int, object, True),
    (type(None), int, False),
    # Any, TypeVar, Protocol, forward references, NewType
    (Any, int, True),
    (int, Any, True),
    (T, str, True),
    (str, T, True),
    (HasArea, int, True),
    (int, HasArea, True),
    ("Undefined", int, True),
    (typing.ForwardRef("Undefined"), int, True),
    (UserId, int, True),
    (UserId, str, False),
    (typing.Annotated[int, "meta"], int, True),
    (typing.Annotated[int, "meta"], str, False),
    # unions and Optional
    (Optional[int], int, True),  # noqa: UP045 - the typing spelling is what is tested
    (int, Optional[int], True),  # noqa: UP045
    (int | None, str, False),
    (Union[int, str], str, True),  # noqa: UP007
    (int | str, bytes, False),
    (int, str | bytes, False),
    (None, Optional[str], True),  # noqa: UP045
    # generics and typing aliases
    (list[str], list[str], True),
    (list[str], list[int], False),
    (list[str], dict, False),
    (list[str], list, True),
    (list, list[int], True),
    (typing.List[int], list[int], True),  # noqa: UP006
    (typing.List[str], list[int], False),  # noqa: UP006
    (typing.Dict[str, typing.List[int]], dict[str, list[str]], False),  # noqa: UP006
    (dict[str, int], dict[str, int], True),
    (dict[str, int], dict[str, str], False),
    (dict[str, int], abc.Mapping[str, int], True),
    (dict[str, int], abc.Iterable[str], True),  # iterating a dict gives its keys
    (dict[str, int], abc.Iterable[int], False),
    (list[int], abc.Sequence[int], True),
    (list[int], typing.Sequence[str], False),
    (abc.Sequence[int], list[int], True),
    (list[list[int]], list[list[str]], False),
    (list[int | None], list[int], True),
    (set[int], frozenset[int], False),
    (set[int], abc.Set[int], True),
    (abc.Iterator[str], abc.Iterable[str], True),
    (abc.Generator[int, None, None], abc.Iterator[str], False),
    # tuples
    (tuple[int, str], tuple[int, str], True),
    (tuple[int, str], tuple[int, int], False),
    (tuple[int, str], tuple[int, str, str], False),
    (tuple[int, ...], abc.Sequence[int], True),
    (tuple[int, str], abc.Sequence[int], False),
    (tuple[int, ...], tuple[int, int], True),
    # Literal, type[], callables
    (typing.Literal["a", "b"], str, True),
    (typing.Literal["a"], int, False),
    (str, typing.Literal["a"], True),
    (type[Circle], type[Shape], True),
    (type[int], type[str], False),
    (abc.Callable[[int], str], abc.Callable[[str], int], True),
    (abc.Callable[[int], str], int, False),
    (typing.Hashable, int, True),
    (int, abc.Sized, False),
    (str, abc.Sized, True),
]


@pytest.mark.parametrize(
    ("produced", "expected", "result"), PAIRS, ids=[str(i) for i in range(len(PAIRS))]
)
def test_compatible_pairs(produced: Any, expected: Any, result: bool) -> None:
    assert compatible(produced, expected) is result


def test_the_table_is_large_and_balanced() -> None:
    assert len(PAIRS) >= 30
    assert sum(r for *_, r in PAIRS) >= 15 and sum(not r for *_, r in PAIRS) >= 15


@pytest.mark.parametrize(
    ("hint", "element"),
    [
        (list[int], int),
        (tuple[int, ...], int),
        (abc.Sequence[str], str),
        (dict[str, int], str),
        (Optional[list[int]], int),  # noqa: UP045
    ],
)
def test_element_types_of_mapped_values(hint: Any, element: Any) -> None:
    assert element_type(hint) == element


# ---------------------------------------------------------------------------------------------
# At construction


@node(output_name="n")
def count(text: str) -> int:
    return len(text)


@node(output_name="shout")
def shout(n: str) -> str:
    return n.upper()


@node(output_name="double")
def double(n: int) -> int:
    return 2 * n


def test_a_clear_mismatch_raises_naming_both_nodes_the_value_and_both_types() -> None:
    with pytest.raises(TypeMismatchError) as info:
        Pipeline([count, shout], name="words")
    error = info.value
    assert isinstance(error, HyperNodesError) and isinstance(error, TypeError)
    message = str(error)
    for part in ("pipeline 'words'", "node 'count'", "node 'shout'", "'n'", "as int", "as str"):
        assert part in message, part
    assert (error.producer, error.consumer, error.name) == ("node 'count'", "node 'shout'", "n")
    assert (error.produced, error.expected) == (int, str)


def test_compatible_connections_build_and_run() -> None:
    assert Pipeline([count, double]).run({"text": "abc"}) == {"n": 3, "double": 6}


def test_warn_and_off() -> None:
    with pytest.warns(TypeMismatchWarning, match="node 'shout' takes it as str"):
        Pipeline([count, shout], type_check="warn")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pipeline = Pipeline([count, shout], type_check="off")
    assert pipeline.type_check == "off"
    with pytest.raises(AttributeError):  # the mismatch was real: off only stops the check
        pipeline.run({"text": "abc"})


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(HyperNodesError, match="type_check must be one of"):
        Pipeline([count], type_check="strict")  # type: ignore[arg-type]


def test_unannotated_any_typevar_and_protocol_ends_pass() -> None:
    @node(output_name="n")
    def bare(text):  # type: ignore[no-untyped-def]
        return len(text)

    @node(output_name="n")
    def anything(text: str) -> Any:
        return len(text)

    @node(output_name="n")
    def generic(text: T) -> T:
        return text

    @node(output_name="out")
    def takes_protocol(n: HasArea) -> float:
        return 0.0

    for producer in (bare, anything, generic):
        Pipeline([producer, shout.with_output("s")])
    Pipeline([count, takes_protocol])


def test_string_annotations_are_resolved_and_unresolvable_ones_pass() -> None:
    # This module uses `from __future__ import annotations`: every annotation is a string.
    assert function_hints(count.func) == {"text": str, "return": int}

    class Local:  # not reachable from the module's globals
        pass

    @node(output_name="n")
    def make_local(text: str) -> Local:
        return Local()

    hints = function_hints(make_local.func)
    assert "return" not in hints and hints["text"] is str
    Pipeline([make_local, shout.with_output("s")])  # unresolvable: passes


def test_tuple_outputs_are_checked_per_element() -> None:
    @node(output_name=("n", "label"))
    def both(text: str) -> tuple[int, str]:
        return len(text), text

    @node(output_name="upper")
    def upper(label: str) -> str:
        return label.upper()

    @node(output_name="bad")
    def wants_int_label(label: int) -> int:
        return label

    assert Pipeline([both, double, upper]).run({"text": "ab"})["upper"] == "AB"
    with pytest.raises(TypeMismatchError, match="'label' as str, but node 'wants_int_label'"):
        Pipeline([both, wants_int_label])


def test_renamed_inputs_are_checked_under_their_wire_names() -> None:
    producer = count.with_output("length")
    with pytest.raises(TypeMismatchError, match=r"takes it as str \(parameter 'n'\)"):
        Pipeline([producer, shout.with_inputs(n="length")])
    Pipeline([producer, double.with_inputs(n="length")])


def test_typing_aliases_and_generics() -> None:
    @node(output_name="items")
    def items(text: str) -> typing.List[str]:  # noqa: UP006
        return text.split()

    @node(output_name="total")
    def total(items: list[int]) -> int:
        return sum(items)

    @node(output_name="mapping")
    def as_mapping(items: dict) -> dict:
        return items

    @node(output_name="joined")
    def join(items: abc.Sequence[str]) -> str:
        return " ".join(items)

    Pipeline([items, join])
    with pytest.raises(TypeMismatchError, match=r"as List\[str\].*as list\[int\]"):
        Pipeline([items, total])
    with pytest.raises(TypeMismatchError, match="as dict"):
        Pipeline([items, as_mapping])


def test_classes_and_callable_objects_as_nodes() -> None:
    class Box:
        def __init__(self, n: int) -> None:
            self.n = n

    class Doubler:
        def __call__(self, n: int) -> str:
            return str(2 * n)

    boxed = node(Box, output_name="box")
    to_text = node(Doubler(), output_name="text")
    assert function_hints(Box)["return"] is Box
    Pipeline([count, boxed])
    with pytest.raises(TypeMismatchError, match="node 'Doubler' produces 'text' as str"):
        Pipeline([to_text.with_inputs(n="m"), count.with_output("k"), double.with_inputs(n="text")])


# ---------------------------------------------------------------------------------------------
# Nested pipelines


@node(output_name="words")
def split(text: str) -> list[str]:
    return text.split()


@node(output_name="size")
def size(words: list[str]) -> int:
    return len(words)


inner = Pipeline([split, size], name="inner")


@node(output_name="lines")
def load(path: str) -> list[str]:
    return ["a b", "c"]


@node(output_name="lines")
def load_numbers(path: str) -> list[int]:
    return [1, 2]


@node(output_name="line")
def first_number(path: str) -> int:
    return 1


@node(output_name="total")
def add_up(sizes: list[int]) -> int:
    return sum(sizes)


@node(output_name="total")
def add_up_text(sizes: list[str]) -> str:
    return "".join(sizes)


@node(output_name="total")
def add_one(sizes: int) -> int:
    return sizes + 1


def per_line(**extra: Any) -> Any:
    return inner.as_node(
        input_mapping={"lines": "text"},
        output_mapping={"size": "sizes"},
        map_over="lines",
        name="per_line",
        **extra,
    )


def test_a_nested_pipeline_mapped_over_a_list_checks_its_items() -> None:
    outer = Pipeline([load, per_line(), add_up], name="outer")
    assert outer.run({"path": "-"})["total"] == 3
    with pytest.raises(TypeMismatchError) as info:
        Pipeline([load_numbers, per_line(), add_up], name="outer")
    message = str(info.value)
    assert "node 'load_numbers' produces 'lines' as list[int]" in message
    assert "nested pipeline 'per_line' maps over it" in message
    assert "its node 'split' (parameter 'text') takes each item as str" in message


def test_a_mapped_value_that_is_not_a_sequence() -> None:
    with pytest.raises(TypeMismatchError, match="int is not a sequence"):
        Pipeline([first_number.with_output("lines"), per_line()])


def test_mapped_outputs_are_lists_to_the_outer_pipeline() -> None:
    with pytest.raises(TypeMismatchError, match=r"'sizes' as list\[int\].*as list\[str\]"):
        Pipeline([load, per_line(), add_up_text])
    with pytest.raises(TypeMismatchError, match=r"'sizes' as list\[int\], but node 'add_one'"):
        Pipeline([load, per_line(), add_one])


def test_unmapped_nesting_through_mappings() -> None:
    plain = inner.as_node(input_mapping={"line": "text"}, output_mapping={"size": "sizes"})
    with pytest.raises(TypeMismatchError, match=r"'line' as int, but node 'split' of nested"):
        Pipeline([first_number, plain])
    with pytest.raises(TypeMismatchError, match=r"'sizes' as int, but node 'add_up'"):
        pick = node(output_name="line")(lambda line_list: line_list[0])
        Pipeline([load.with_output("line_list"), pick, plain, add_up])
    # a Pipeline placed directly in nodes is checked the same way
    with pytest.raises(TypeMismatchError, match="node 'split' of nested pipeline 'inner'"):
        Pipeline([first_number.with_output("text"), inner])


def test_two_levels_of_nested_maps() -> None:
    middle = Pipeline([per_line()], name="middle")  # maps inner over "lines"
    outer_ok = middle.as_node(input_mapping={"docs": "lines"}, map_over="docs", name="per_doc")

    @node(output_name="docs")
    def load_docs(path: str) -> list[list[str]]:
        return [["a b"], ["c d e", "f"]]

    @node(output_name="docs")
    def load_flat(path: str) -> list[list[int]]:
        return [[1]]

    pipeline = Pipeline([load_docs, outer_ok])
    assert pipeline.run({"path": "-"})["sizes"] == [[2], [3, 1]]
    with pytest.raises(TypeMismatchError, match="takes items 2 levels down as str"):
        Pipeline([load_flat, outer_ok])


# ---------------------------------------------------------------------------------------------
# At run time


@node(output_name="half")
def half(x: int) -> int:
    return x // 2 if x != 3 else "three"  # type: ignore[return-value]


@node(output_name=("n", "label"))
def pair(half: int) -> tuple[int, str]:
    return half, half  # type: ignore[return-value]


def test_runtime_checks_name_the_node_and_the_item() -> None:
    checked = Pipeline([half], type_check="runtime")
    assert checked.map({"x": [4, 6]}, map_over="x") == [{"half": 2}, {"half": 3}]
    with pytest.raises(TypeMismatchError) as info:
        checked.map({"x": [4, 6, 3, 8]}, map_over="x")
    assert "node 'half' returned str for 'half', but its annotation says int" in str(info.value)
    assert any("item 2" in note for note in info.value.__notes__)
    # without "runtime" the wrong value goes through unnoticed
    assert Pipeline([half]).run({"x": 3}) == {"half": "three"}


def test_runtime_checks_each_element_of_a_tuple_output() -> None:
    with pytest.raises(TypeMismatchError, match="returned int for 'label'"):
        Pipeline([pair], type_check="runtime").run({"half": 2})


def test_runtime_checks_async_nodes() -> None:
    @node(output_name="y")
    async def wrong(x: int) -> str:
        return x  # type: ignore[return-value]

    with pytest.raises(TypeMismatchError, match="node 'wrong' returned int"):
        Pipeline([wrong], type_check="runtime").run({"x": 1})


def test_runtime_checked_nodes_share_cache_entries_and_pickle() -> None:
    cache = MemoryCache()
    Pipeline([half.with_output("y"), double.with_inputs(n="y")], cache=cache).map(
        {"x": [2, 4]}, map_over="x"
    )
    stored = len(cache)
    checked = Pipeline(
        [half.with_output("y"), double.with_inputs(n="y")], cache=cache, type_check="runtime"
    )
    assert checked.map({"x": [2, 4]}, map_over="x") == [
        {"y": 1, "double": 2},
        {"y": 2, "double": 4},
    ]
    assert len(cache) == stored  # all hits: the checked copy has the same cache keys
    copy = pickle.loads(pickle.dumps(checked.nodes[0]))
    with pytest.raises(TypeMismatchError):
        copy.func(3)


def test_runtime_checks_in_worker_processes() -> None:
    with HypernodesEngine(map_executor="parallel", max_workers=2) as engine:
        checked = Pipeline([half], engine=engine, type_check="runtime")
        assert checked.map({"x": [2, 4]}, map_over="x") == [{"half": 1}, {"half": 2}]
        with pytest.raises(TypeMismatchError, match="node 'half'"):
            checked.map({"x": [2, 3]}, map_over="x")


def test_unhashable_callable_objects_are_checked_too() -> None:
    class Unhashable:
        __hash__ = None  # type: ignore[assignment]

        def __init__(self, factor: int) -> None:
            self.factor = factor

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Unhashable) and other.factor == self.factor

        def __call__(self, n: int) -> str:
            return str(n * self.factor)

    scaled = node(Unhashable(2), output_name="scaled", name="scaled")
    assert Pipeline([count, scaled.with_inputs(n="n")]).run({"text": "ab"})["scaled"] == "4"
    with pytest.raises(TypeMismatchError, match="node 'scaled' produces 'scaled' as str"):
        Pipeline([count, scaled, double.with_inputs(n="scaled")])
