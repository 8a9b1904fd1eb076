"""``Pipeline.explain_cache``: hit, miss or uncached per node and item, and what changed."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from cache_helpers import subprocess_env

from hypernodes import DiskCache, MemoryCache, Pipeline, node
from hypernodes.exceptions import InvalidSettingError

HELPERS = """
def clean(x):
    return x * {k}
"""

NODES = """
from hypernodes import node
from {h} import clean

@node(output_name="a")
def a(x):
    return clean(x){tweak}

@node(output_name="b")
def b(a, y):
    return a + y

@node(output_name="c", cache=False)
def c(b):
    return b
"""


def load(modules, k=2, tweak="", name="ex"):
    modules.load(f"{name}_h", HELPERS.format(k=k))
    return modules.load(f"{name}_n", NODES.format(h=f"{name}_h", tweak=tweak))


def rows(report):
    return {(r.node, r.item): (r.status, r.reason) for r in report}


def test_hits_after_a_run_and_uncached_nodes(modules, make_cache):
    mod = load(modules)
    pipeline = Pipeline([mod.a, mod.b, mod.c], cache=make_cache())
    pipeline.run({"x": 1, "y": 1})
    report = pipeline.explain_cache(inputs={"x": 1, "y": 1})
    assert [(r.node, r.status) for r in report] == [("a", "hit"), ("b", "hit"), ("c", "uncached")]
    assert "cache=False" in report[2].reason
    text = str(report)
    assert text.splitlines()[0].split() == ["node", "item", "status", "reason"]
    assert "uncached" in text


def test_a_changed_helper_is_named(modules, make_cache):
    pipeline = Pipeline([load(modules).a], cache=make_cache())
    pipeline.run({"x": 1})
    edited = Pipeline([load(modules, k=3).a], cache=make_cache())
    (row,) = edited.explain_cache(inputs={"x": 1})
    assert row.status == "miss"
    assert row.reason == "helper ex_h.clean changed"


def test_a_changed_function_is_named(modules, make_cache):
    Pipeline([load(modules).a], cache=make_cache()).run({"x": 1})
    (row,) = Pipeline([load(modules, tweak=" + 1").a], cache=make_cache()).explain_cache(
        inputs={"x": 1}
    )
    assert (row.status, row.reason) == ("miss", "function ex_n.a changed")


def test_a_changed_input_and_upstream_node_are_named(modules, make_cache):
    mod = load(modules)
    pipeline = Pipeline([mod.a, mod.b], cache=make_cache())
    pipeline.run({"x": 1, "y": 1})
    found = rows(pipeline.explain_cache(inputs={"x": 1, "y": 2}))
    assert found[("a", None)] == ("hit", "stored")
    assert found[("b", None)] == ("miss", "input 'y': a value with no stored entry")
    found = rows(pipeline.explain_cache(inputs={"x": 5, "y": 1}))
    assert found[("a", None)] == ("miss", "input 'x': a value with no stored entry")
    assert found[("b", None)] == ("miss", "upstream node 'a' changed")


def test_map_items(modules, make_cache):
    mod = load(modules)
    pipeline = Pipeline([mod.a, mod.b], cache=make_cache())
    pipeline.map({"x": [1, 2], "y": 0}, map_over="x")
    found = rows(pipeline.explain_cache(inputs={"x": [1, 3], "y": 0}, map_over="x"))
    assert found[("a", 0)][0] == "hit" and found[("b", 0)][0] == "hit"
    assert found[("a", 1)] == ("miss", "input 'x': a value with no stored entry")
    assert found[("b", 1)] == ("miss", "upstream node 'a' changed")
    (only,) = pipeline.explain_cache(inputs={"x": [1], "y": 0}, map_over="x", output_name="a")
    assert (only.node, only.item, only.status) == ("a", 0, "hit")


def test_unhashable_input_is_uncached_with_its_name():
    @node(output_name="y")
    def f(x):
        return 1

    (row,) = Pipeline([f], cache=MemoryCache()).explain_cache(inputs={"x": object()})
    assert row.status == "uncached" and "'x'" in row.reason


def test_no_cache_is_a_named_error():
    @node(output_name="y")
    def f(x):
        return x

    with pytest.raises(InvalidSettingError, match="has no cache"):
        Pipeline([f]).explain_cache(inputs={"x": 1})


SCRIPT = """
import sys
from hypernodes import DiskCache, Pipeline
import why_n
pipeline = Pipeline([why_n.a], cache=DiskCache(sys.argv[1], key=b"k" * 32))
if sys.argv[2] == "run":
    pipeline.run({"x": 1})
else:
    for row in pipeline.explain_cache(inputs={"x": 1}):
        print(row.node, row.status, row.reason, sep="|")
"""


def test_the_reason_survives_across_processes(tmp_path):
    """The record written by one process names the helper changed in the next one."""
    (tmp_path / "why_h.py").write_text(HELPERS.format(k=2))
    (tmp_path / "why_n.py").write_text(NODES.format(h="why_h", tweak=""))
    (tmp_path / "script.py").write_text(textwrap.dedent(SCRIPT))
    cache = tmp_path / "cache"

    def child(mode):
        done = subprocess.run(
            [sys.executable, "-B", "script.py", str(cache), mode],
            cwd=tmp_path,
            env=subprocess_env(str(tmp_path)),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return done.stdout.strip()

    child("run")
    assert child("why") == "a|hit|stored"
    (tmp_path / "why_h.py").write_text(HELPERS.format(k=3))
    assert child("why") == "a|miss|helper why_h.clean changed"


def test_diskcache_records_are_not_entries(tmp_path, modules):
    cache = DiskCache(tmp_path / "c", key=b"k" * 32)
    Pipeline([load(modules).a], cache=cache).run({"x": 1})
    assert len(cache) == 1


def test_records_are_written_again_after_clear(modules, make_cache):
    cache = make_cache()
    Pipeline([load(modules).a], cache=cache).run({"x": 1})
    cache.clear()
    Pipeline([load(modules).a], cache=make_cache()).run({"x": 1})
    (row,) = Pipeline([load(modules, k=3).a], cache=make_cache()).explain_cache(inputs={"x": 1})
    assert (row.status, row.reason) == ("miss", "helper ex_h.clean changed")
