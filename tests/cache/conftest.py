"""Fixtures for the cache tests."""

from __future__ import annotations

import pathlib
import sys

import pytest
from cache_helpers import KEY, ModuleWriter, MotoServer

import hypernodes
from hypernodes.cache import base

#: the stores every conformance case runs against
STORES = ["memory", "disk", "fsspec-file", "fsspec-memory", "fsspec-s3"]


@pytest.fixture(autouse=True)
def _fresh_warnings() -> None:
    """Each test sees the first occurrence of every cache warning."""
    base._warned.clear()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory):
    """A real S3-compatible server (moto_server) on 127.0.0.1 and a free port, for the session;
    stopped afterwards.  Yields its endpoint URL."""
    pytest.importorskip("s3fs", reason="the s3 extra (s3fs) is not installed")
    server = MotoServer(tmp_path_factory.mktemp("moto"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=STORES)
def make_cache(request: pytest.FixtureRequest, tmp_path: pathlib.Path):
    """A factory of caches of one kind; each factory call reopens one store (a DiskCache
    directory, an FsspecCache URL) as a later run would."""
    kind = request.param
    if kind == "memory":
        shared = hypernodes.MemoryCache()
        return lambda: shared
    if kind == "disk":
        return lambda: hypernodes.DiskCache(tmp_path / "cache")
    if kind == "fsspec-file":
        url = (tmp_path / "fs-cache").as_uri()
        return lambda: hypernodes.FsspecCache(url, key=KEY)
    if kind == "fsspec-memory":
        url = f"memory://{tmp_path.name}/cache"
        return lambda: hypernodes.FsspecCache(url, key=KEY)
    server = request.getfixturevalue("s3_server")
    url = server.bucket_url(tmp_path.name)
    return lambda: hypernodes.FsspecCache(url, key=KEY, storage_options=server.options)


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
