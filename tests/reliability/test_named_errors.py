"""Internal errors become named ones that say what to do (issue 23, "Internal errors").

Each case used to end in a bare ``TypeError``/``KeyError``/``AttributeError``/``StopIteration``
from deep inside the library (or was accepted, then blamed on map item 0, or raised while a node
ran).  Each is now a :class:`HyperNodesError` raised where the mistake is made, naming it.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from hypernodes import (
    DiskCache,
    HypernodesEngine,
    MemoryCache,
    Pipeline,
    Resource,
    node,
    resource,
)
from hypernodes.engines.parallel import ParallelExecutor
from hypernodes.exceptions import (
    ExecutorError,
    HyperNodesError,
    InvalidSettingError,
    MapError,
    MappingError,
    OutputShapeError,
    ResourceError,
    SettingValueError,
)
from hypernodes.model.resources import close_resources

pytestmark = pytest.mark.timeout(120)


@node(output_name="y")
def inc(x: int) -> int:
    return x + 1


@node(output_name="z")
def add(x: int, w: int) -> int:
    return x + w


PIPE = Pipeline([inc], name="p")


def test_output_name_of_the_wrong_kind():
    with pytest.raises(InvalidSettingError, match=r"output_name must be a name or a list of names"):
        PIPE.run({"x": 1}, output_name=5)
    with pytest.raises(InvalidSettingError, match=r"5 is int, not a string"):
        PIPE.map({"x": [1]}, map_over="x", output_name=["y", 5])


def test_map_over_of_the_wrong_kind_in_map_amap_and_as_node():
    with pytest.raises(
        MapError, match=r"map_over must be a name or a list of names.*got 5 \(int\)"
    ):
        PIPE.map({"x": [1]}, map_over=5)
    with pytest.raises(MapError, match=r"map_over must be a name or a list of names"):
        asyncio.run(PIPE.amap({"x": [1]}, map_over=5))
    with pytest.raises(MappingError, match=r"as_node 'p': map_over must be a name or a list"):
        PIPE.as_node(map_over=5)


def test_mapping_over_a_zero_dimensional_array():
    with pytest.raises(MapError, match=r"input 'x' .*got ndarray; a 0-d array is one value"):
        PIPE.map({"x": np.array(5)}, map_over="x")
    assert PIPE.map({"x": np.array([5, 6])}, map_over="x") == [{"y": 6}, {"y": 7}]


def test_imap_zip_of_a_generator_and_a_longer_list():
    rows = Pipeline([add]).imap({"x": (i for i in range(2)), "w": [1, 2, 3]}, map_over=["x", "w"])
    with pytest.raises(
        MapError, match=r"needs map_over inputs of one length.*'w' is longer than 'x'"
    ):
        list(rows)


def test_a_generator_raising_value_error_keeps_its_own_error():
    def broken():
        yield 1
        raise ValueError("bad line 2")

    rows = Pipeline([add]).imap({"x": broken(), "w": [1, 2]}, map_over=["x", "w"])
    with pytest.raises(ValueError, match="bad line 2"):
        list(rows)


def test_map_with_no_inputs_says_which_input_is_missing():
    with pytest.raises(MapError, match=r"map_over names 'x', but inputs has no value for it"):
        PIPE.map(None, map_over="x")


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"input_mapping": ["a"]}, "input_mapping must be a dict of names to names"),
        ({"input_mapping": {"a": 1}}, "input_mapping must map names"),
        ({"output_mapping": {"y": 5}}, "output_mapping must map names"),
    ],
)
def test_as_node_mappings_of_the_wrong_kind(kwargs, says):
    with pytest.raises(MappingError, match=f"as_node 'p': {says}"):
        PIPE.as_node(**kwargs)


@node(output_name=("a", "b"))
def gives_dict(x: int) -> dict:
    return {"a": x, "b": x}


@node(output_name=("a", "b"))
def gives_set(x: int) -> set:
    return {x, x + 1}


def test_a_tuple_output_returning_a_dict_or_a_set():
    with pytest.raises(OutputShapeError, match=r"returned dict of length 2; a mapping is not read"):
        Pipeline([gives_dict]).run({"x": 1})
    with pytest.raises(OutputShapeError, match=r"returned set of length 2; a set has no order"):
        Pipeline([gives_set]).run({"x": 1})


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda: HypernodesEngine(max_workers="2"), r"max_workers must be a whole number.*=2"),
        (
            lambda: HypernodesEngine(map_executor="threaded", max_workers=2.0),
            r"max_workers must be a whole number",
        ),
        (lambda: ParallelExecutor(idle_timeout="x"), r"idle_timeout must be a finite number"),
        (lambda: DiskCache("unused-dir", timeout="x"), r"DiskCache: timeout must be a finite"),
        (lambda: MemoryCache(max_entries="10"), r"max_entries must be a whole number.*=10"),
        (lambda: MemoryCache(max_entries=-1), r"max_entries must be a whole number >= 0"),
        (lambda: DiskCache("unused-dir", size_limit=-5), r"size_limit must be a whole number"),
    ],
)
def test_settings_are_checked_when_the_object_is_made(make, says, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SettingValueError, match=says) as info:
        make()
    assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)


class Plain:
    """An executor whose submit returns the value, not a future."""

    def submit(self, fn, *args):
        return fn(*args)

    def shutdown(self, wait=True):
        pass


@pytest.mark.parametrize("role", ["map_executor", "node_executor"])
def test_a_custom_executor_whose_submit_returns_a_plain_value(role):
    engine = HypernodesEngine(**{role: Plain()})
    pipeline = Pipeline([inc, add.with_inputs(x="y")], engine=engine)
    with pytest.raises(
        ExecutorError, match=r"Plain's submit\(fn, \*args\) returned .*not a future"
    ):
        pipeline.map({"x": [1, 2], "w": [0, 0]}, map_over=["x", "w"])


def test_a_real_custom_executor_still_works():
    with ThreadPoolExecutor(2) as pool:
        engine = HypernodesEngine(map_executor=pool)
        assert Pipeline([inc], engine=engine).map({"x": [1, 2]}, map_over="x") == [
            {"y": 2},
            {"y": 3},
        ]


@resource
def never_yields():
    if False:
        yield None


@node(output_name="used")
def use(client: object) -> str:
    return type(client).__name__


def test_a_generator_resource_that_never_yields_names_the_factory():
    try:
        with pytest.raises(
            ResourceError, match=r"'never_yields' is a generator .* without yielding"
        ):
            Pipeline([use]).run({"client": Resource(never_yields)})
    finally:
        close_resources()


class Client:
    def __init__(self) -> None:
        self.closed = False


STARTED = threading.Event()
GO_ON = threading.Event()


@resource(teardown=lambda client: setattr(client, "closed", True))
def shared_client() -> Client:
    return Client()


@node(output_name="state")
def waits_then_uses(x: int, client: Client) -> str:
    if x == 0:
        STARTED.set()
        assert GO_ON.wait(30)
    return "closed" if client.closed else "open"


def test_shutting_down_another_engine_does_not_tear_down_a_resource_in_use():
    STARTED.clear()
    GO_ON.clear()
    recipe = Resource(shared_client)
    running = HypernodesEngine(map_executor="threaded", max_workers=2)
    other = HypernodesEngine(map_executor="threaded")
    pipeline = Pipeline([waits_then_uses], engine=running).bind(client=recipe)
    result: list = []
    worker = threading.Thread(
        target=lambda: result.append(pipeline.map({"x": list(range(6))}, map_over="x"))
    )
    worker.start()
    try:
        assert STARTED.wait(30)
        other.shutdown()  # used to tear down every resource of the process at once
        client = recipe.get()
        assert not client.closed
    finally:
        GO_ON.set()
        worker.join(30)
        running.shutdown()
    assert [row["state"] for row in result[0]] == ["open"] * 6
    assert client.closed  # torn down once the map that used it ended


def test_bad_resource_recipes_are_named_errors():
    with pytest.raises(InvalidSettingError, match=r"Resource needs a factory function, got 5; "):
        Resource(5)
    with pytest.raises(InvalidSettingError, match=r"@resource needs a function"):
        resource(5)


def test_every_new_error_is_a_hypernodes_error():
    for kind in (SettingValueError, ResourceError):
        assert issubclass(kind, HyperNodesError)
