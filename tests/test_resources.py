"""Resources: recipes that build an object once per process, passed to the nodes that read them."""

from __future__ import annotations

import contextlib
import pickle
import threading
import warnings

import cloudpickle
import pytest

from hypernodes import HypernodesEngine, Pipeline, Resource, node, resource
from hypernodes.model.resources import built_resources, close_resources


@pytest.fixture(autouse=True)
def _fresh_registry():
    close_resources()
    yield
    close_resources()


@node(output_name="y")
def use(x: int, model: dict) -> int:
    return x * model["scale"]


@node(output_name="kind")
def kind(model: object) -> str:
    return type(model).__name__


def test_a_node_gets_the_built_object_and_other_nodes_see_nothing_new():
    builds = []

    def load(scale):
        builds.append(scale)
        return {"scale": scale}

    pipeline = Pipeline([use]).bind(model=Resource(load, 3))
    assert pipeline.run({"x": 2}) == {"y": 6}
    assert pipeline.map({"x": [1, 2, 3]}, map_over="x") == [{"y": 3}, {"y": 6}, {"y": 9}]
    assert builds == [3]
    (shown,) = built_resources()
    assert shown.startswith("Resource(") and shown.endswith(".load, 3)")


def test_a_resource_passed_as_an_input_is_resolved_too():
    def load():
        return {"scale": 5}

    assert Pipeline([use]).run({"x": 1, "model": Resource(load)}) == {"y": 5}


def test_the_decorator_makes_recipes_and_builds_nothing_until_used():
    builds = []

    @resource
    def load(scale: int = 1) -> dict:
        builds.append(scale)
        return {"scale": scale}

    recipe = load(scale=4)
    assert isinstance(recipe, Resource)
    assert builds == []
    assert repr(recipe).endswith("load, scale=4)")
    assert Pipeline([use]).bind(model=recipe).run({"x": 1}) == {"y": 4}
    assert builds == [4]
    assert recipe.get() is recipe.get()


def test_many_threads_asking_at_once_get_one_build():
    builds = []
    gate = threading.Event()

    def slow():
        gate.wait(5)
        builds.append(1)
        return {"scale": 1}

    recipe = Resource(slow)
    got = []

    def ask():
        got.append(recipe.get())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in threads:
        thread.join(10)
    assert builds == [1]
    assert len(got) == 8 and all(obj is got[0] for obj in got)


def test_a_threaded_map_builds_once():
    builds = []
    lock = threading.Lock()

    def load():
        with lock:
            builds.append(1)
        return {"scale": 2}

    pipeline = Pipeline([use]).bind(model=Resource(load))
    with HypernodesEngine(map_executor="threaded", max_workers=8) as engine:
        rows = pipeline.with_engine(engine).map({"x": list(range(50))}, map_over="x")
    assert [row["y"] for row in rows] == [2 * x for x in range(50)]
    assert builds == [1]


def test_a_failing_factory_fails_the_node_and_is_tried_again_next_time():
    attempts = []

    def flaky():
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("model server down")
        return {"scale": 7}

    pipeline = Pipeline([use]).bind(model=Resource(flaky))
    with pytest.raises(ConnectionError, match="model server down") as info:
        pipeline.run({"x": 1})
    assert any("node 'use'" in note for note in info.value.__notes__)
    assert pipeline.run({"x": 1}) == {"y": 7}
    assert len(attempts) == 2


def test_teardown_forms(tmp_path):
    events = []

    @resource(teardown=lambda obj: events.append(("teardown", obj["name"])))
    def with_teardown():
        return {"name": "a"}

    @resource
    def generator():
        events.append(("open", "b"))
        yield {"name": "b"}
        events.append(("close", "b"))

    @resource
    @contextlib.contextmanager
    def managed():
        events.append(("enter", "c"))
        yield {"name": "c"}
        events.append(("exit", "c"))

    with HypernodesEngine() as engine:
        Pipeline([kind]).with_engine(engine).run({"model": with_teardown()})
        Pipeline([kind]).with_engine(engine).run({"model": generator()})
        assert Pipeline([kind]).with_engine(engine).run({"model": managed()}) == {"kind": "dict"}
        assert ("exit", "c") not in events
    assert events == [
        ("open", "b"),
        ("enter", "c"),
        ("exit", "c"),
        ("close", "b"),
        ("teardown", "a"),
    ]  # newest first


def test_a_teardown_that_raises_is_warned_about_and_the_others_still_run():
    closed = []

    @resource(teardown=lambda obj: closed.append(obj))
    def good():
        return "good"

    @resource(teardown=lambda obj: 1 / 0)
    def bad():
        return "bad"

    good().get()
    bad().get()
    with pytest.warns(RuntimeWarning, match="ZeroDivisionError"):
        errors = close_resources()
    assert len(errors) == 1 and closed == ["good"]
    assert built_resources() == []


def test_an_async_factory_is_awaited():
    async def load():
        return {"scale": 9}

    assert Pipeline([use]).run({"x": 1, "model": Resource(load)}) == {"y": 9}


def test_an_async_node_gets_the_object():
    @node(output_name="y")
    async def ause(x: int, model: dict) -> int:
        return x * model["scale"]

    def load():
        return {"scale": 11}

    pipeline = Pipeline([ause]).bind(model=Resource(load))
    assert pipeline.run({"x": 2}) == {"y": 22}
    with HypernodesEngine(map_executor="async", node_executor="async") as engine:
        rows = pipeline.with_engine(engine).map({"x": [1, 2]}, map_over="x")
    assert rows == [{"y": 11}, {"y": 22}]


def test_a_recipe_pickles_as_its_recipe_and_keeps_its_key():
    @resource
    def load(scale):
        return {"scale": scale, "blob": bytes(1_000_000)}

    recipe = load(2)
    recipe.get()  # built here: the built megabyte must not travel
    blob = cloudpickle.dumps(recipe)
    assert len(blob) < 20_000
    copy = pickle.loads(blob)
    assert copy == recipe and copy.key == recipe.key
    assert copy.get() is recipe.get()  # the same registry entry in this process


def test_a_resource_with_unhashable_arguments_still_works_and_is_its_own_key():
    lock = threading.Lock()

    def load(guard):
        return {"scale": 1}

    first, second = Resource(load, lock), Resource(load, lock)
    assert first.key != second.key
    assert first.get() is first.get()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert Pipeline([use]).bind(model=first).run({"x": 3}) == {"y": 3}


def test_a_mapped_resource_list_is_not_resolved_but_passed_as_given():
    """Resources are shared inputs; a mapped input is data and reaches the node as it is."""

    def load():
        return {"scale": 1}

    rows = Pipeline([kind]).map({"model": [Resource(load)]}, map_over="model")
    assert rows == [{"kind": "Resource"}]


def test_bad_factories_are_refused():
    with pytest.raises(TypeError, match="factory"):
        Resource("not callable")
    with pytest.raises(TypeError, match="teardown"):
        resource(teardown="no")(lambda: 1)


def test_a_factory_generator_that_yields_twice_is_reported_at_teardown():
    @resource
    def twice():
        yield 1
        yield 2

    twice().get()
    with pytest.warns(RuntimeWarning, match="exactly once"):
        close_resources()
