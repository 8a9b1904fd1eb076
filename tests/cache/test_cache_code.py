"""Code changes invalidate exactly what depends on them: the node, downstream, helpers."""

from __future__ import annotations

from collections import Counter

from hypernodes import MemoryCache, Pipeline, node
from hypernodes.cache.code import callable_digest

HELPERS_V1 = """
SCALE = 10

def clean(x):
    return x * SCALE
"""

NODES = """
from hypernodes import node
import {helpers}
from {helpers} import clean

CALLS = []

@node(output_name="a")
def a(x):
    CALLS.append("a")
    return clean(x){tweak_a}

@node(output_name="b")
def b(a):
    CALLS.append("b")
    return a + {helpers}.SCALE{tweak_b}
"""


def load(modules, helpers=HELPERS_V1, tweak_a="", tweak_b="", name="h1"):
    modules.load(name, helpers)
    mod = modules.load(
        f"nodes_{name}", NODES.format(helpers=name, tweak_a=tweak_a, tweak_b=tweak_b)
    )
    return mod


def run(mod, cache):
    result = Pipeline([mod.a, mod.b], cache=cache).run({"x": 1})
    return result, Counter(mod.CALLS)


def test_unchanged_code_reloaded_is_a_hit(modules):
    cache = MemoryCache()
    assert run(load(modules), cache) == ({"a": 10, "b": 20}, {"a": 1, "b": 1})
    assert run(load(modules), cache) == ({"a": 10, "b": 20}, {})


def test_changing_a_node_recomputes_it_and_everything_downstream(modules):
    cache = MemoryCache()
    run(load(modules), cache)
    assert run(load(modules, tweak_a=" + 1"), cache) == ({"a": 11, "b": 21}, {"a": 1, "b": 1})


def test_changing_a_downstream_node_keeps_upstream_hits(modules):
    cache = MemoryCache()
    run(load(modules), cache)
    assert run(load(modules, tweak_b=" * 2"), cache) == ({"a": 10, "b": 30}, {"b": 1})


def test_changing_a_helper_function_in_another_module_invalidates(modules):
    cache = MemoryCache()
    run(load(modules), cache)
    changed = HELPERS_V1.replace("return x * SCALE", "return x * SCALE + 5")
    assert run(load(modules, helpers=changed), cache) == ({"a": 15, "b": 25}, {"a": 1, "b": 1})


def test_changing_a_module_constant_invalidates_its_readers(modules):
    cache = MemoryCache()
    run(load(modules), cache)
    changed = HELPERS_V1.replace("SCALE = 10", "SCALE = 3")
    assert run(load(modules, helpers=changed), cache) == ({"a": 3, "b": 6}, {"a": 1, "b": 1})


def test_comments_docstrings_and_blank_lines_do_not_invalidate(modules):
    cache = MemoryCache()
    run(load(modules), cache)
    noisy = '''
# a comment at the top

SCALE = 10


def clean(x):
    """Now with a docstring."""
    # and a comment
    return x * SCALE  # trailing
'''
    assert run(load(modules, helpers=noisy), cache) == ({"a": 10, "b": 20}, {})


def test_redefining_a_helper_in_place_is_noticed(modules):
    """A notebook re-running a helper's cell: same node object, new helper function."""
    cache = MemoryCache()
    mod = load(modules)
    run(mod, cache)
    import h1

    exec("def clean(x):\n    return -x\n", h1.__dict__)
    mod.clean = h1.clean  # `from h1 import clean` rebinding, as re-running the cell would
    assert run(mod, cache)[0] == {"a": -1, "b": 9}


def test_closure_values_count():
    def make(threshold):
        @node(output_name="y")
        def above(x):
            return x > threshold

        return above

    assert callable_digest(make(1).func) == callable_digest(make(1).func)
    assert callable_digest(make(1).func) != callable_digest(make(2).func)


def test_mutable_state_in_closures_does_not_change_the_code():
    calls = []

    @node(output_name="y")
    def f(x):
        calls.append(x)
        return x

    pipeline = Pipeline([f], cache=MemoryCache())
    pipeline.run({"x": 1})
    pipeline.run({"x": 1})
    assert calls == [1]


def test_library_functions_count_by_name_only():
    import json
    import math

    def uses_math(x):
        return math.sqrt(x) + len(json.dumps(x))

    first = callable_digest(uses_math)
    assert callable_digest(uses_math) == first
    assert callable_digest(math.sqrt) != callable_digest(math.floor)


def test_methods_partials_and_callable_objects():
    import functools

    class Scaler:
        def __init__(self, k):
            self.k = k

        def __call__(self, x):
            return x * self.k

        def apply(self, x):
            return x * self.k

    def power(x, p):
        return x**p

    assert callable_digest(Scaler(2)) == callable_digest(Scaler(2))
    assert callable_digest(Scaler(2)) != callable_digest(Scaler(3))
    assert callable_digest(Scaler(2).apply) != callable_digest(Scaler(3).apply)
    assert callable_digest(functools.partial(power, p=2)) != callable_digest(
        functools.partial(power, p=3)
    )


def test_look_alike_functions_reading_different_mutable_globals_do_not_collide(modules):
    one = modules.load("conf_one", "CONFIG = {'k': 1}\ndef f(x):\n    return x * CONFIG['k']\n")
    two = modules.load("conf_two", "CONFIG = {'k': 2}\ndef f(x):\n    return x * CONFIG['k']\n")
    cache = MemoryCache()
    assert Pipeline([node(one.f, output_name="y")], cache=cache).run({"x": 3}) == {"y": 3}
    assert Pipeline([node(two.f, output_name="y")], cache=cache).run({"x": 3}) == {"y": 6}
