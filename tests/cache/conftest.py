"""Fixtures for the cache tests."""

from __future__ import annotations

import pathlib
import sys

import pytest
from cache_helpers import ModuleWriter

import hypernodes
from hypernodes.cache import base


@pytest.fixture(autouse=True)
def _fresh_warnings() -> None:
    """Each test sees the first occurrence of every cache warning."""
    base._warned.clear()


@pytest.fixture(params=["memory", "disk"])
def make_cache(request: pytest.FixtureRequest, tmp_path: pathlib.Path):
    """A factory of caches of one kind; a DiskCache factory reopens one directory each time."""
    if request.param == "memory":
        shared = hypernodes.MemoryCache()
        return lambda: shared
    return lambda: hypernodes.DiskCache(tmp_path / "cache")


@pytest.fixture
def modules(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch):
    """Write module files into a folder on sys.path and import them afresh."""
    folder = tmp_path / "mods"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # no stale .pyc between edits
    yield ModuleWriter(folder)
    for name in [p.stem for p in folder.glob("*.py")]:
        sys.modules.pop(name, None)
