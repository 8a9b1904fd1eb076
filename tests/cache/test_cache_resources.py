"""A resource in a cache key: identified by its factory's code and arguments, never by the state
of the object it builds."""

from __future__ import annotations

from hypernodes import MemoryCache, Pipeline, Resource, resource
from hypernodes.cache.keys import value_token

MODELS = """
from hypernodes import node, resource

CALLS = []
BUILDS = []


class Model:
    def __init__(self, scale):
        self.scale = scale
        self.seen = []  # state that changes with every call

    def predict(self, x):
        self.seen.append(x)
        return x * self.scale


@resource
def load(scale):
    BUILDS.append(scale)
    return Model(scale){tweak}


@node(output_name="y")
def predict(x, model):
    CALLS.append(x)
    return model.predict(x)
"""


def load_models(modules, tweak=""):
    return modules.load("ml_models", MODELS.format(tweak=tweak))


def run(mod, cache, scale=2, xs=(1, 2, 3)):
    mod.CALLS.clear()
    pipeline = Pipeline([mod.predict], cache=cache).bind(model=mod.load(scale))
    rows = pipeline.map({"x": list(xs)}, map_over="x")
    return [row["y"] for row in rows], list(mod.CALLS)


def test_the_objects_state_does_not_change_the_key(modules):
    mod = load_models(modules)
    cache = MemoryCache()
    assert run(mod, cache) == ([2, 4, 6], [1, 2, 3])
    recipe = mod.load(2)
    before = value_token(recipe)
    recipe.get().seen.append("changed")  # the built model's state changes
    assert value_token(recipe) == before
    assert run(mod, cache) == ([2, 4, 6], [])  # all hits
    assert run(mod, cache, xs=(1, 2, 3, 4)) == ([2, 4, 6, 8], [4])  # only the new item runs


def test_other_arguments_are_another_key(modules):
    mod = load_models(modules)
    cache = MemoryCache()
    run(mod, cache, scale=2)
    assert run(mod, cache, scale=3) == ([3, 6, 9], [1, 2, 3])
    assert value_token(mod.load(2)) != value_token(mod.load(3))
    assert value_token(mod.load(2)) == value_token(mod.load(2))


def test_changing_the_factorys_code_is_another_key(modules):
    cache = MemoryCache()
    first = load_models(modules)
    run(first, cache)
    key = value_token(first.load(2))
    same = load_models(modules)  # reloaded, unchanged
    assert value_token(same.load(2)) == key
    assert run(same, cache) == ([2, 4, 6], [])
    edited_code = load_models(modules, tweak=" if scale else None")
    assert value_token(edited_code.load(2)) != key
    assert run(edited_code, cache) == ([2, 4, 6], [1, 2, 3])


def test_a_cache_key_on_the_factory_replaces_its_code():
    @resource(cache_key="model-v1")
    def first(scale):
        return scale

    @resource(cache_key="model-v1")
    def second(scale):
        return scale * 100  # other code, same declared identity

    assert value_token(first(2)) == value_token(second(2))
    assert value_token(first(2)) != value_token(first(3))


def test_a_plain_resource_hashes_its_factory_and_arguments():
    def make(n, *, label="x"):
        return object()

    assert value_token(Resource(make, 1, label="a")) == value_token(Resource(make, 1, label="a"))
    assert value_token(Resource(make, 1, label="a")) != value_token(Resource(make, 1, label="b"))
