"""Edits to helpers a node imports inside its body invalidate its cached results."""

from __future__ import annotations

import importlib
import pathlib
import sys
import textwrap
from collections.abc import Iterator
from types import ModuleType

import pytest

from hypernodes import DiskCache, Pipeline

pytestmark = pytest.mark.usefixtures("fresh_cache_warnings")


class Modules:
    """Module files in a folder on ``sys.path``, written and imported afresh."""

    def __init__(self, folder: pathlib.Path) -> None:
        self.folder = folder
        self.names: set[str] = set()

    def write(self, name: str, source: str) -> None:
        path = self.folder / f"{name}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
        self.names.add(name.replace("/", "."))

    def fresh(self, name: str) -> ModuleType:
        """Import ``name`` as a new process would: every module written here imported anew."""
        for written in self.names:
            sys.modules.pop(written, None)
        importlib.invalidate_caches()
        return importlib.import_module(name)


@pytest.fixture
def modules(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Modules]:
    folder = tmp_path / "mods"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # no stale .pyc between edits
    made = Modules(folder)
    yield made
    for name in made.names:
        sys.modules.pop(name, None)


NODES = """
from hypernodes import node

@node(output_name="y")
def from_import(x):
    from rel_helpers import h
    return h(x)

@node(output_name="z")
def plain_import(x):
    import rel_helpers
    return rel_helpers.h(x) * 10
"""


@pytest.mark.parametrize("output", ["y", "z"])
def test_cache_helper_imported_inside_the_body_is_tracked(
    modules: Modules, tmp_path: pathlib.Path, output: str
):
    modules.write("rel_helpers", "def h(x):\n    return x + 1\n")
    modules.write("rel_nodes", NODES)
    cache = DiskCache(tmp_path / "cache")
    nodes = modules.fresh("rel_nodes")
    pipeline = Pipeline([nodes.from_import, nodes.plain_import], cache=cache)
    first = pipeline.run({"x": 1}, output_name=output)[output]
    assert first in (2, 20)

    modules.write("rel_helpers", "def h(x):\n    return x + 100\n")  # the edit
    nodes = modules.fresh("rel_nodes")  # what the next run (a new process) sees
    pipeline = Pipeline([nodes.from_import, nodes.plain_import], cache=cache)
    assert pipeline.run({"x": 1}, output_name=output)[output] == (101 if output == "y" else 1010)


def test_cache_helper_reloaded_in_place_is_noticed(modules: Modules, tmp_path: pathlib.Path):
    """A notebook reloads the helper module only; the node module stays as it was."""
    modules.write("rel_helpers", "def h(x):\n    return x + 1\n")
    modules.write("rel_nodes", NODES)
    nodes = modules.fresh("rel_nodes")
    pipeline = Pipeline([nodes.from_import], cache=DiskCache(tmp_path / "cache"))
    assert pipeline.run({"x": 1}) == {"y": 2}
    modules.write("rel_helpers", "def h(x):\n    return x - 1\n")
    importlib.reload(sys.modules["rel_helpers"])
    assert pipeline.run({"x": 1}) == {"y": 0}


def test_cache_helper_in_a_package_imported_relatively(modules: Modules, tmp_path: pathlib.Path):
    modules.write("relpkg/__init__", "")
    modules.write("relpkg/tools", "def h(x):\n    return x * 2\n")
    modules.write(
        "relpkg/nodes",
        """
        from hypernodes import node

        @node(output_name="y")
        def twice(x):
            from .tools import h
            return h(x)
        """,
    )
    cache = DiskCache(tmp_path / "cache")
    assert Pipeline([modules.fresh("relpkg.nodes").twice], cache=cache).run({"x": 3}) == {"y": 6}
    modules.write("relpkg/tools", "def h(x):\n    return x * 3\n")
    assert Pipeline([modules.fresh("relpkg.nodes").twice], cache=cache).run({"x": 3}) == {"y": 9}


def test_cache_helper_default_argument_edit_is_tracked(modules: Modules, tmp_path: pathlib.Path):
    source = """
    from hypernodes import node

    def helper(x, scale={scale}):
        return x * scale

    @node(output_name="y")
    def scaled(x):
        return helper(x)
    """
    cache = DiskCache(tmp_path / "cache")
    modules.write("rel_defaults", source.format(scale=2))
    assert Pipeline([modules.fresh("rel_defaults").scaled], cache=cache).run({"x": 5}) == {"y": 10}
    modules.write("rel_defaults", source.format(scale=3))
    assert Pipeline([modules.fresh("rel_defaults").scaled], cache=cache).run({"x": 5}) == {"y": 15}
