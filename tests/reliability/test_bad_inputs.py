"""Bad inputs get a named, actionable error instead of a silent wrong result or a confusing one
(issue 10, "Bad inputs"): unknown input names, tables and dicts as ``map_over`` values, generator
and coroutine-returning nodes, pipelines nested in themselves, settings of the wrong kind,
colliding ``as_node`` mappings, and ``KeyboardInterrupt``/``SystemExit`` under
``on_error="continue"``.

Each error is checked for what it names (the wrong thing, what is accepted, what to do), not only
for its type.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import os
import signal
import subprocess
import sys
import textwrap
import time
import types
from collections import OrderedDict
from pathlib import Path

import pandas as pd
import pytest

import hypernodes.model.pipeline as pipeline_module
from hypernodes import (
    DiskCache,
    HypernodesEngine,
    ItemError,
    MemoryCache,
    Pipeline,
    PipelineCallback,
    node,
)
from hypernodes.exceptions import (
    CachePathError,
    CycleError,
    HyperNodesError,
    InputError,
    InvalidNodeError,
    InvalidSettingError,
    MapError,
    MappingError,
    OutputShapeError,
    UnknownInputError,
)
from hypernodes.telemetry import ProgressCallback

pytestmark = pytest.mark.timeout(120)

EXECUTORS = ["sequential", "threaded", "async", "parallel"]

# ---------------------------------------------------------------------------------------------
# Nodes at module level, so that worker processes of map_executor="parallel" import them.


@node(output_name="y")
def scaled(x: int, scale: int = 1) -> int:
    return x * scale


@node(output_name="z")
def plus_one(y: int) -> int:
    return y + 1


async def _fetch(x: int) -> int:
    return x + 1


@node(output_name="fetched")
def returns_coroutine(x: int):
    return _fetch(x)  # not awaited: the function is not ``async def``


@node(output_name="doubled")
def doubles(fetched: int) -> int:
    return fetched * 2


CALLS: list[int] = []


@node(output_name="y")
def interrupts_at_two(x: int) -> int:
    CALLS.append(x)
    if x == 2:
        raise KeyboardInterrupt
    time.sleep(0.01)
    return x


@node(output_name="y")
def exits_at_two(x: int) -> int:
    CALLS.append(x)
    if x == 2:
        raise SystemExit(3)
    time.sleep(0.01)
    return x


@node(output_name="y")
def identity(x: int) -> int:
    return x


# ---------------------------------------------------------------------------------------------
# 1. Unknown input names


def test_a_misspelled_optional_input_is_an_error_not_a_silent_default():
    pipeline = Pipeline([scaled, plus_one], name="calc")
    calls = {
        "run": lambda: pipeline.run({"x": 2, "scal": 3}),
        "call": lambda: pipeline(x=2, scal=3),
        "map": lambda: pipeline.map({"x": [1, 2], "scal": 3}, map_over="x"),
        "imap": lambda: list(pipeline.imap({"x": [1, 2], "scal": 3}, map_over="x")),
        "arun": lambda: asyncio.run(pipeline.arun({"x": 2, "scal": 3})),
        "amap": lambda: asyncio.run(pipeline.amap({"x": [1, 2], "scal": 3}, map_over="x")),
        "run with output_name": lambda: pipeline.run({"x": 2, "scal": 3}, output_name="y"),
    }
    for label, call in calls.items():
        with pytest.raises(UnknownInputError) as caught:
            call()
        err = caught.value
        message = str(err)
        assert "'scal'" in message, label
        assert "did you mean 'scale'?" in message, label
        assert "['x', 'scale']" in message, label  # the inputs it does take
        assert "'calc'" in message, label
        assert err.unknown == ["scal"]
        assert err.suggestions == {"scal": ["scale"]}
        assert err.accepted[:2] == ["x", "scale"]
    # a library error, and a TypeError like f(scal=3) on a plain function
    assert isinstance(err, HyperNodesError) and isinstance(err, TypeError)
    # spelled right, the value is used
    assert pipeline.run({"x": 2, "scale": 3}) == {"y": 6, "z": 7}


def test_every_unknown_name_is_listed_with_its_suggestions():
    pipeline = Pipeline([scaled, plus_one])
    with pytest.raises(UnknownInputError) as caught:
        pipeline.run({"xx": 1, "scael": 2, "zzzzzz": 3})
    err = caught.value
    assert sorted(err.unknown) == ["scael", "xx", "zzzzzz"]
    assert err.suggestions["scael"] == ["scale"]
    assert "zzzzzz" not in err.suggestions  # nothing close: no suggestion rather than a bad one
    assert "'scael' (did you mean 'scale'?)" in str(err)


def test_names_a_node_produces_are_known_overrides():
    pipeline = Pipeline([scaled, plus_one])
    # giving 'y' overrides the node producing it (an existing feature): not an unknown name
    assert pipeline.run({"y": 10}) == {"y": 10, "z": 11}
    assert pipeline.run({"x": 1, "y": 10}, output_name="z") == {"z": 11}
    rows = pipeline.map({"x": [1, 2], "y": 10}, map_over="x", output_name="z")
    assert rows == [{"z": 11}, {"z": 11}]
    # ... and the message says that outputs may be given
    with pytest.raises(UnknownInputError, match=r"output name \['y', 'z'\] may also be given"):
        pipeline.run({"x": 1, "w": 2})


def test_bound_names_are_known_and_bind_itself_suggests():
    bound = Pipeline([scaled, plus_one]).bind(scale=10)
    assert bound.run({"x": 1}) == {"y": 10, "z": 11}
    assert bound.run({"x": 1, "scale": 2}) == {"y": 2, "z": 3}  # a given value beats the bound
    assert bound.map({"x": [1, 2]}, map_over="x", output_name="y") == [{"y": 10}, {"y": 20}]
    with pytest.raises(UnknownInputError, match=r"'scael' \(did you mean 'scale'\?\)"):
        Pipeline([scaled]).bind(scael=10)


def test_nested_pipelines_accept_the_outer_root_args_only():
    @node(output_name="half")
    def halve(y: int) -> int:
        return y // 2

    inner = Pipeline([scaled, halve], name="inner")
    outer = Pipeline(
        [inner.as_node(input_mapping={"value": "x"}), plus_one.with_inputs(y="half")],
        name="outer",
    )
    assert outer.root_args == ("value", "scale")
    assert outer.run({"value": 4, "scale": 2}) == {"y": 8, "half": 4, "z": 5}
    # the inner name that input_mapping renamed is not an input of the outer pipeline
    with pytest.raises(UnknownInputError) as caught:
        outer.run({"x": 4})
    assert "pipeline 'outer'" in str(caught.value) and "'value'" in str(caught.value)
    # an inner pipeline's output is an outer output too: it may be overridden from outside
    assert outer.run({"half": 1}, output_name="z") == {"z": 2}


def test_input_names_must_be_strings():
    pipeline = Pipeline([scaled])
    with pytest.raises(UnknownInputError, match=r"input names must be strings.*1 \(int\)") as c:
        pipeline.run({"x": 1, 1: 2})
    assert c.value.unknown == [1]
    with pytest.raises(UnknownInputError, match=r"\('x',\) \(tuple\)"):
        pipeline.map({"x": [1], ("x",): 2}, map_over="x")


@pytest.mark.parametrize(
    ("inputs", "hint"),
    [
        ([("x", 1)], "dict(pairs)"),
        ("x", "inputs={'x': value}"),
        (pd.DataFrame({"x": [1, 2]}), "got DataFrame"),
        (42, "got int"),
    ],
    ids=["pairs", "str", "dataframe", "int"],
)
def test_inputs_must_be_a_mapping(inputs, hint):
    pipeline = Pipeline([scaled])
    with pytest.raises(InputError, match="inputs must be a mapping") as caught:
        pipeline.run(inputs)
    assert hint in str(caught.value)
    assert not isinstance(caught.value, UnknownInputError)
    with pytest.raises(InputError, match=r"^map: inputs must be a mapping"):
        pipeline.map(inputs, map_over="x")
    with pytest.raises(InputError, match=r"^imap: inputs must be a mapping"):
        list(pipeline.imap(inputs, map_over="x"))
    with pytest.raises(InputError, match=r"^arun: inputs must be a mapping"):
        asyncio.run(pipeline.arun(inputs))
    with pytest.raises(InputError, match=r"^aimap: inputs must be a mapping"):
        asyncio.run(pipeline.amap(inputs, map_over="x"))
    # Mappings other than dict are fine, and None means no inputs
    assert pipeline.run(types.MappingProxyType({"x": 3})) == {"y": 3}
    assert Pipeline([node(lambda: 1, output_name="one")]).run(None) == {"one": 1}


def test_input_names_are_checked_once_per_set_of_names(monkeypatch):
    """The check runs where the plan for a set of names is compiled, not on every call."""
    seen: list[frozenset[str]] = []
    check = pipeline_module.check_input_names

    def counting(label, pgraph, provided):
        seen.append(provided)
        check(label, pgraph, provided)

    monkeypatch.setattr(pipeline_module, "check_input_names", counting)
    pipeline = Pipeline([scaled, plus_one])
    for i in range(200):
        assert pipeline.run({"x": i}) == {"y": i, "z": i + 1}
    for _ in range(3):
        pipeline.map({"x": [1, 2, 3]}, map_over="x")
    assert pipeline.run({"x": 1, "scale": 2}) == {"y": 2, "z": 3}
    assert seen == [frozenset({"x"}), frozenset({"x", "scale"})]


# ---------------------------------------------------------------------------------------------
# 2. A table or a mapping as a map_over value


def test_a_dataframe_to_map_over_says_to_pass_rows_or_a_column():
    frame = pd.DataFrame({"x": [1, 2, 3], "other": [4, 5, 6]})
    pipeline = Pipeline([scaled])
    with pytest.raises(MapError, match="is a DataFrame"):
        list(pipeline.imap({"x": frame}, map_over="x"))  # streamed columns are checked too
    with pytest.raises(MapError) as caught:
        pipeline.map({"x": frame}, map_over="x")
    message = str(caught.value)
    assert "'x' is a DataFrame" in message
    assert "column names, not its rows" in message
    assert "df.to_dict('records')" in message and "df['col']" in message
    # the advice works: a column, or the rows
    assert pipeline.map({"x": frame["x"]}, map_over="x") == [{"y": 1}, {"y": 2}, {"y": 3}]

    @node(output_name="total")
    def total(row: dict) -> int:
        return row["x"] + row["other"]

    rows = Pipeline([total]).map({"row": frame.to_dict("records")}, map_over="row")
    assert rows == [{"total": 5}, {"total": 7}, {"total": 9}]


@pytest.mark.parametrize(
    "value",
    [{"a": 1, "b": 2}, OrderedDict(a=1), types.MappingProxyType({"a": 1})],
    ids=["dict", "OrderedDict", "mappingproxy"],
)
def test_a_mapping_to_map_over_says_what_to_pass(value):
    with pytest.raises(MapError) as caught:
        Pipeline([scaled]).map({"x": value}, map_over="x")
    message = str(caught.value)
    assert f"is a {type(value).__name__}" in message
    assert "keys only" in message
    assert "list(d.values())" in message and "list(d.items())" in message


def test_a_dataframe_in_a_nested_map_is_refused_too():
    inner = Pipeline([scaled], name="inner").as_node(map_over="x", name="each")
    outer = Pipeline([inner], name="outer")
    with pytest.raises(MapError, match="is a DataFrame"):
        outer.run({"x": pd.DataFrame({"x": [1, 2]})})
    assert outer.run({"x": pd.Series([1, 2])}) == {"y": [1, 2]}  # a Series is a sequence


def test_a_set_to_map_over_says_it_has_no_order():
    with pytest.raises(MapError, match=r"sorted\(s\)"):
        Pipeline([scaled]).map({"x": {3, 1, 2}}, map_over="x")


# ---------------------------------------------------------------------------------------------
# 3. Generators and coroutines from nodes


def test_a_generator_function_is_refused_at_node_time():
    def numbers(n: int):
        yield from range(n)

    for make in (node, node(output_name="numbers"), lambda f: node(f, name="renamed")):
        with pytest.raises(InvalidNodeError) as caught:
            make(numbers)
        message = str(caught.value)
        assert "generator function" in message and "return list(...)" in message
    with pytest.raises(InvalidNodeError, match="'renamed' is a generator"):
        node(numbers, name="renamed")


def test_an_async_generator_function_is_refused_at_node_time():
    async def stream(n: int):
        for i in range(n):
            yield i

    with pytest.raises(InvalidNodeError) as caught:
        node(output_name="items")(stream)
    message = str(caught.value)
    assert "'stream' is an async generator function" in message
    assert "return [item async for item in ...]" in message


def test_generators_behind_partials_and_callable_objects_are_refused():
    def numbers(n: int, step: int):
        yield from range(0, n, step)

    class Counter:
        def __call__(self, n: int):
            yield n

    with pytest.raises(InvalidNodeError, match="generator function"):
        node(functools.partial(numbers, step=2), output_name="evens")
    with pytest.raises(InvalidNodeError, match="generator function"):
        node(Counter(), output_name="counted")
    # functions that return a list of what they generate are fine
    evens = node(lambda n: list(range(0, n, 2)), output_name="evens")
    assert Pipeline([evens]).run({"n": 5}) == {"evens": [0, 2, 4]}


def _failure(call) -> tuple[type[BaseException], str, str]:
    """Run ``call``, which must raise; return the error's type, message and notes, and drop the
    error (its traceback holds the unawaited coroutines) before returning."""
    try:
        call()
    except Exception as exc:
        return type(exc), str(exc), "\n".join(getattr(exc, "__notes__", []))
    raise AssertionError("expected an error")


@pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning")
@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_coroutine_returned_by_a_sync_node_is_named_when_it_breaks_the_next_node(executor):
    with HypernodesEngine(map_executor=executor, max_workers=2) as engine:
        pipeline = Pipeline([returns_coroutine, doubles], engine=engine, name="fetching")
        kind, message, notes = _failure(
            lambda: pipeline.map({"x": [1, 2]}, map_over="x", output_name="doubled")
        )
    assert kind is TypeError and "'coroutine'" in message  # the node's own error, as raised
    assert "input 'fetched' of node 'doubles' is a coroutine object" in notes
    assert "node 'returns_coroutine' returned a coroutine" in notes
    assert "declare it `async def`" in notes
    assert "raised by node 'doubles' of pipeline fetching[item 0]" in notes
    gc.collect()  # the unawaited coroutines warn here, where the warning is expected


@pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning")
def test_a_coroutine_note_also_reaches_item_errors_under_continue():
    rows = Pipeline([returns_coroutine, doubles]).map(
        {"x": [1]}, map_over="x", output_name="doubled", on_error="continue"
    )
    error = rows[0]["doubled"]
    assert isinstance(error, ItemError) and error.node == "doubles"
    assert any("returned a coroutine" in note for note in error.exception.__notes__)
    del rows, error
    gc.collect()


@pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning")
def test_a_coroutine_where_a_tuple_is_expected_says_async_def():
    pair = node(lambda x: _fetch(x), output_name=("a", "b"), name="pair")
    kind, message, _ = _failure(lambda: Pipeline([pair]).run({"x": 1}))
    assert kind is OutputShapeError
    assert "declares 2 outputs ('a', 'b') but returned coroutine" in message
    assert "declare it `async def`" in message
    gc.collect()


def test_an_async_def_node_is_awaited_and_gets_no_note():
    @node(output_name="fetched")
    async def fetch(x: int) -> int:
        await asyncio.sleep(0)
        return x + 1

    assert Pipeline([fetch, doubles]).run({"x": 1}) == {"fetched": 2, "doubled": 4}

    @node(output_name="broken")
    def broken(doubled: int) -> int:
        raise ValueError("plain failure")

    with pytest.raises(ValueError, match="plain failure") as caught:
        Pipeline([fetch, doubles, broken]).run({"x": 1})
    assert not any("coroutine" in note for note in caught.value.__notes__)


# ---------------------------------------------------------------------------------------------
# 4. A pipeline nested in itself


@node(output_name="y")
def from_z(z: int) -> int:
    return z * 2


def _nested_pair() -> tuple[Pipeline, Pipeline]:
    """``a`` computes y from x; ``b`` nests ``a`` and calls its y ``z``."""
    a = Pipeline([scaled], name="a")
    b = Pipeline([a.as_node(output_mapping={"y": "z"}, name="a")], name="b")
    return a, b


def test_reinitialising_a_pipeline_inside_its_own_child_is_refused():
    a, b = _nested_pair()
    with pytest.raises(CycleError) as caught:
        a.__init__([b, from_z], name="a")
    assert "a > b > a" in str(caught.value)
    assert caught.value.cycle == ["a", "b", "a"]
    # the refused change left both pipelines as they were
    assert a.run({"x": 3}) == {"y": 3}
    assert b.run({"x": 3}) == {"z": 3}


def test_a_pipeline_graph_swapped_after_nesting_is_a_cycle_error_not_recursion():
    a, b = _nested_pair()
    a.pgraph = Pipeline([b, from_z], name="a").pgraph  # a now nests b, which nests a
    for call in (
        lambda: a.run({"x": 1}),
        lambda: a.map({"x": [1, 2]}, map_over="x"),
        lambda: a.visualize(),
    ):
        with pytest.raises(
            CycleError, match=r"pipeline 'a' nests a pipeline inside itself: a > b > a"
        ):
            call()
    with pytest.raises(CycleError, match=r"b > a > b") as caught:
        b.run({"x": 1})
    assert "build a new Pipeline" in str(caught.value)


def test_a_cycle_through_three_pipelines_names_the_whole_path():
    a = Pipeline([scaled], name="a")
    b = Pipeline([a.as_node(output_mapping={"y": "w"}, name="a")], name="b")
    c = Pipeline([b.as_node(output_mapping={"w": "z"}, name="b")], name="c")
    top = Pipeline([c, from_z], name="top")  # produces y from z
    # point the node of b that runs a at top instead: top > c > b > top
    a_node = b.pgraph.nodes[0]
    a_node.pipeline = top
    with pytest.raises(CycleError) as caught:
        top.run({"x": 1})
    assert "top > c > b > top" in str(caught.value)
    assert caught.value.cycle == ["top", "c", "b", "top"]


def test_one_pipeline_nested_several_times_is_not_a_cycle():
    inner = Pipeline([scaled], name="inner")
    middle = Pipeline(
        [inner.as_node(output_mapping={"y": "y1"}), inner.as_node(output_mapping={"y": "y2"})],
        name="middle",
    )
    top = Pipeline(
        [
            middle.as_node(output_mapping={"y1": "a1", "y2": "a2"}),
            middle.as_node(output_mapping={"y1": "b1", "y2": "b2"}),
        ],
        name="top",
    )
    assert top.run({"x": 2, "scale": 3}) == {"a1": 6, "a2": 6, "b1": 6, "b2": 6}


# ---------------------------------------------------------------------------------------------
# 5. Settings of the wrong kind, refused where they are given


def test_disk_cache_on_an_existing_file_fails_at_construction(tmp_path):
    target = tmp_path / "results.db"
    target.write_text("not a directory")
    with pytest.raises(CachePathError) as caught:
        DiskCache(target)
    message = str(caught.value)
    assert repr(str(target)) in message
    assert "existing file, not a directory" in message
    assert isinstance(caught.value, NotADirectoryError)  # an OSError, as Python would raise
    with pytest.raises(CachePathError, match=r"results\.db' in that path is an existing file"):
        DiskCache(target / "cache")
    assert target.read_text() == "not a directory"  # untouched
    # a directory, or a path that does not exist yet, is fine
    DiskCache(tmp_path)
    cache = DiskCache(tmp_path / "new" / "cache")
    assert Pipeline([scaled], cache=cache).run({"x": 2}) == {"y": 2}


@pytest.mark.parametrize(
    ("cache", "hint"),
    [
        ("str", "write cache=DiskCache('str')"),
        (Path("some/dir"), "write cache=DiskCache(PosixPath('some/dir'))"),
        (True, "cache=MemoryCache()"),
        (MemoryCache, "the class MemoryCache; pass an instance"),
        (object(), "has no get_many/set methods"),
    ],
    ids=["str", "path", "bool", "class", "object"],
)
def test_cache_of_the_wrong_kind_is_refused_at_pipeline_time(cache, hint):
    if isinstance(cache, Path) and os.name == "nt":
        hint = "write cache=DiskCache("
    for make in (
        lambda: Pipeline([scaled], cache=cache),
        lambda: Pipeline([scaled]).with_cache(cache),
    ):
        with pytest.raises(InvalidSettingError) as caught:
            make()
        message = str(caught.value)
        assert message.startswith("cache= takes a cache object")
        assert hint in message


@pytest.mark.parametrize(
    ("engine", "hint"),
    [
        ("threaded", "engine=HypernodesEngine(map_executor='threaded')"),
        ("parallel", "engine=HypernodesEngine(map_executor='parallel')"),
        ("fast", "executor names (sequential, async, threaded, parallel)"),
        (HypernodesEngine, "the class HypernodesEngine; pass an instance: HypernodesEngine()"),
        (42, "42 (int), which has no run/map methods"),
    ],
    ids=["threaded", "parallel", "other-str", "class", "int"],
)
def test_engine_of_the_wrong_kind_is_refused_at_pipeline_time(engine, hint):
    for make in (
        lambda: Pipeline([scaled], engine=engine),
        lambda: Pipeline([scaled]).with_engine(engine),
    ):
        with pytest.raises(InvalidSettingError) as caught:
            make()
        assert str(caught.value).startswith("engine= takes an engine object")
        assert hint in str(caught.value)


class Recorder(PipelineCallback):
    def __init__(self) -> None:
        self.nodes: list[str] = []

    def on_node_end(self, *, node, **kwargs):
        self.nodes.append(node)


class DuckCallback:
    """Not a PipelineCallback subclass, but it has a hook method: accepted."""

    def __init__(self) -> None:
        self.nodes: list[str] = []

    def on_node_end(self, *, node, **kwargs):
        self.nodes.append(node)


@pytest.mark.parametrize(
    ("callbacks", "hint"),
    [
        (Recorder(), "a single callback"),
        ([ProgressCallback], "callbacks[0] is the class ProgressCallback; pass an instance"),
        ([Recorder(), "progress"], "callbacks[1] is 'progress' (str)"),
        ("progress", "got 'progress' (str)"),
        (3, "got 3 (int)"),
    ],
    ids=["single", "class", "str-item", "str", "int"],
)
def test_callbacks_of_the_wrong_kind_are_refused_at_pipeline_time(callbacks, hint):
    for make in (
        lambda: Pipeline([scaled], callbacks=callbacks),
        lambda: Pipeline([scaled]).with_callbacks(callbacks),
    ):
        with pytest.raises(InvalidSettingError) as caught:
            make()
        assert str(caught.value).startswith("callbacks= takes a list of callback objects")
        assert hint in str(caught.value)


def test_good_settings_still_work():
    recorder, duck = Recorder(), DuckCallback()
    with HypernodesEngine(map_executor="threaded", max_workers=2) as engine:
        pipeline = Pipeline(
            [scaled, plus_one], engine=engine, cache=MemoryCache(), callbacks=(recorder, duck)
        )
        assert pipeline.map({"x": [1, 2]}, map_over="x") == [{"y": 1, "z": 2}, {"y": 2, "z": 3}]
    assert sorted(recorder.nodes) == sorted(duck.nodes) == ["plus_one"] * 2 + ["scaled"] * 2
    assert isinstance(pipeline.callbacks, list)
    bare = pipeline.with_engine(None).with_cache(None).with_callbacks(None)
    assert bare.engine is None and bare.cache is None and bare.callbacks is None


# ---------------------------------------------------------------------------------------------
# 6. as_node mappings that collide


@node(output_name="total")
def add(a: int, b: int) -> int:
    return a + 10 * b


@node(output_name=("low", "high"))
def bounds(a: int) -> tuple[int, int]:
    return a - 1, a + 1


def test_two_outer_names_onto_one_inner_input_are_named():
    inner = Pipeline([add], name="inner")
    with pytest.raises(MappingError) as caught:
        inner.as_node(input_mapping={"p": "a", "q": "a"})
    assert "'p', 'q' -> 'a'" in str(caught.value)


def test_an_outer_name_onto_another_inner_input_is_named():
    inner = Pipeline([add], name="inner")
    with pytest.raises(MappingError) as caught:
        inner.as_node(input_mapping={"a": "b"})  # inner 'a' is unmapped and reads outer 'a' too
    message = str(caught.value)
    assert "maps outer 'a' onto inner input 'b'" in message
    assert "also takes an input 'a'" in message
    assert "one outer value would feed two inner inputs" in message
    # a swap, or mapping both, is fine
    swapped = Pipeline([inner.as_node(input_mapping={"a": "b", "b": "a"})])
    assert swapped.run({"a": 1, "b": 2}) == {"total": 2 + 10 * 1}
    both = Pipeline([inner.as_node(input_mapping={"a": "b", "first": "a"})])
    assert both.run({"a": 1, "first": 2}) == {"total": 2 + 10 * 1}


def test_a_bound_inner_input_leaves_its_name_free():
    inner = Pipeline([add], name="inner").bind(a=5)
    adapted = inner.as_node(input_mapping={"a": "b"})  # inner 'a' is bound, not asked outside
    assert Pipeline([adapted]).run({"a": 2}) == {"total": 5 + 10 * 2}


def test_an_output_renamed_onto_another_output_is_named():
    inner = Pipeline([bounds], name="inner")
    with pytest.raises(MappingError) as caught:
        inner.as_node(output_mapping={"low": "high"})
    message = str(caught.value)
    assert "renames output 'low' to 'high'" in message
    assert "already has an output 'high'" in message
    with pytest.raises(MappingError, match="'low', 'high' -> 'edge'"):
        inner.as_node(output_mapping={"low": "edge", "high": "edge"})
    swapped = Pipeline([inner.as_node(output_mapping={"low": "high", "high": "low"})])
    assert swapped.run({"a": 5}) == {"high": 4, "low": 6}


# ---------------------------------------------------------------------------------------------
# 7. KeyboardInterrupt and SystemExit stop a map, even with on_error="continue"


@pytest.mark.parametrize("executor", EXECUTORS)
@pytest.mark.parametrize(
    ("failing", "kind"),
    [(interrupts_at_two, KeyboardInterrupt), (exits_at_two, SystemExit)],
    ids=["KeyboardInterrupt", "SystemExit"],
)
def test_interrupts_stop_a_continue_map(executor, failing, kind):
    CALLS.clear()
    items = list(range(40))
    with HypernodesEngine(map_executor=executor, max_workers=2) as engine:
        pipeline = Pipeline([failing], engine=engine)
        with pytest.raises(kind):
            pipeline.map({"x": items}, map_over="x", on_error="continue")
        if executor != "parallel":  # workers count in their own processes
            assert 2 in CALLS and len(CALLS) < len(items)
        # the engine is still usable afterwards (no interrupt left behind on a reused loop)
        again = Pipeline([identity], engine=engine)
        assert again.map({"x": [1, 2, 3]}, map_over="x") == [{"y": 1}, {"y": 2}, {"y": 3}]
    # nor on the event loop this thread reuses for any async engine
    with HypernodesEngine(map_executor="async") as engine:
        rows = Pipeline([identity], engine=engine).map({"x": [4, 5]}, map_over="x")
    assert rows == [{"y": 4}, {"y": 5}]


@pytest.mark.parametrize("node_executor", ["threaded", "async"])
@pytest.mark.parametrize("kind", [KeyboardInterrupt, SystemExit])
def test_interrupts_stop_a_continue_map_with_concurrent_nodes(node_executor, kind):
    failing = interrupts_at_two if kind is KeyboardInterrupt else exits_at_two
    CALLS.clear()
    with HypernodesEngine(node_executor=node_executor, max_workers=2) as engine:
        with pytest.raises(kind):
            Pipeline([failing, plus_one], engine=engine).map(
                {"x": list(range(40))}, map_over="x", on_error="continue"
            )
        assert len(CALLS) < 40
        rows = Pipeline([identity], engine=engine).map({"x": [1]}, map_over="x")
    assert rows == [{"y": 1}]


CHILD = """
import sys, time
from hypernodes import HypernodesEngine, Pipeline, node

@node(output_name="y")
def slow(x):
    if x == 0:
        print("started", flush=True)
    time.sleep(0.05)
    return x

engine = HypernodesEngine(map_executor=sys.argv[1], max_workers=2)
try:
    Pipeline([slow], engine=engine).map({"x": list(range(4000))}, map_over="x", on_error="continue")
except KeyboardInterrupt:
    print("interrupted", flush=True)
    raise
print("finished every item", flush=True)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT to a child process (POSIX)")
@pytest.mark.parametrize("executor", EXECUTORS)
def test_ctrl_c_stops_a_continue_map_in_a_real_process(executor, tmp_path):
    """A real SIGINT during a long map with on_error="continue" ends the program promptly."""
    script = tmp_path / "long_map.py"
    script.write_text(textwrap.dedent(CHILD))
    child = subprocess.Popen(
        [sys.executable, str(script), executor],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "started"
        time.sleep(0.3)
        child.send_signal(signal.SIGINT)
        # 4000 items x 0.05 s would take minutes even on two workers
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert "interrupted" in out and "finished every item" not in out
    assert child.returncode != 0
    assert "KeyboardInterrupt" in err
