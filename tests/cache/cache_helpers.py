"""Helpers for the cache tests: module files written on the fly, the environment of a child."""

from __future__ import annotations

import importlib.util
import os
import pathlib
import sys
import textwrap
from types import ModuleType

import hypernodes

SRC = str(pathlib.Path(hypernodes.__file__).resolve().parent.parent)


class ModuleWriter:
    """Writes module files into a folder on sys.path and imports them afresh."""

    def __init__(self, folder: pathlib.Path) -> None:
        self.folder = folder

    def load(self, name: str, source: str) -> ModuleType:
        path = self.folder / f"{name}.py"
        path.write_text(textwrap.dedent(source))
        sys.modules.pop(name, None)
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module


def subprocess_env(*paths: str, **extra: str) -> dict[str, str]:
    """The environment for a child ``python`` that can import hypernodes and ``paths``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([SRC, *paths, env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def run_pickled_items(payload: bytes) -> bytes:
    """What a worker process of a parallel map does: run items of a pickled plan, relay writes."""
    import cloudpickle

    plan, items, ctx = cloudpickle.loads(payload)
    from hypernodes.execution.loops import run_item

    results = [run_item(plan, values, ctx) for values in items]
    return cloudpickle.dumps((results, ctx.cache.export_writes()))
