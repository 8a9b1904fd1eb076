"""The original HyperNodes module paths ``hypernodes.engine`` and ``hypernodes.executors`` give
the same objects as ``hypernodes.engines``."""

from __future__ import annotations

import importlib

import pytest

import hypernodes.engines as engines


@pytest.mark.parametrize("module", ["hypernodes.engine", "hypernodes.executors"])
def test_old_paths_re_export_the_same_objects(module):
    old = importlib.import_module(module)
    assert old.__all__, module
    for name in old.__all__:
        assert getattr(old, name) is getattr(engines, name), name
    # anything else of hypernodes.engines is reachable too
    for name in engines.__all__:
        assert getattr(old, name) is getattr(engines, name), name
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        old.Nope  # noqa: B018


def test_old_style_imports_run_a_pipeline():
    from hypernodes.engine import HypernodesEngine
    from hypernodes.executors import AsyncExecutor, SequentialExecutor

    from hypernodes import Pipeline, node

    @node(output_name="y")
    def double(x: int) -> int:
        return 2 * x

    with HypernodesEngine(node_executor=SequentialExecutor(), map_executor=AsyncExecutor()) as e:
        rows = Pipeline([double], engine=e).map({"x": [1, 2]}, map_over="x")
    assert rows == [{"y": 2}, {"y": 4}]
