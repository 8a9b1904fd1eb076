"""DiskCache across processes and machines: one folder whatever the working directory, a
worker that cannot reach it says so, a foreign key is named as such, a read-only folder is read."""

from __future__ import annotations

import os
import pathlib
import pickle
import shutil
import subprocess
import sys
import tempfile
import textwrap

import pytest
from cache_helpers import subprocess_env

from hypernodes import DiskCache, Pipeline
from hypernodes.cache import CacheWarning

NODES = """
from hypernodes import node

CALLS = []

@node(output_name="y")
def triple(x):
    CALLS.append(x)
    return 3 * x
"""

CHILD = """
import pickle, sys, warnings
sys.path.insert(0, sys.argv[2])
import many_nodes
from hypernodes import Pipeline

cache = pickle.load(open(sys.argv[1], "rb"))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    rows = Pipeline([many_nodes.triple], cache=cache).map({"x": [1, 2, 3]}, map_over="x")
print(repr(cache.path))
print([r["y"] for r in rows], many_nodes.CALLS)
for w in caught:
    print("WARNING", w.message)
"""


def _child(folder: pathlib.Path, cache: DiskCache | bytes, cwd: pathlib.Path, user=()):
    (folder / "many_nodes.py").write_text(textwrap.dedent(NODES))
    (folder / "child.py").write_text(textwrap.dedent(CHILD))
    blob = folder / "cache.pickle"
    blob.write_bytes(cache if isinstance(cache, bytes) else pickle.dumps(cache))
    done = subprocess.run(
        [*user, sys.executable, "-B", str(folder / "child.py"), str(blob), str(folder)],
        cwd=cwd,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def _nodes(folder: pathlib.Path):
    sys.path.insert(0, str(folder))
    try:
        (folder / "many_nodes.py").write_text(textwrap.dedent(NODES))
        sys.modules.pop("many_nodes", None)
        import many_nodes

        return many_nodes
    finally:
        sys.path.remove(str(folder))


def test_a_relative_path_is_resolved_where_the_cache_is_made(tmp_path, monkeypatch):
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    here.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(here)
    cache = DiskCache("relative/cache", key=b"k" * 32)
    assert cache.path == str(here / "relative" / "cache")
    mod = _nodes(tmp_path)
    Pipeline([mod.triple], cache=cache).map({"x": [1, 2, 3]}, map_over="x")
    lines = _child(tmp_path, cache, cwd=elsewhere)
    assert lines[0] == repr(str(here / "relative" / "cache"))
    assert lines[1] == "[3, 6, 9] []"  # every item a hit: the same folder
    assert not (elsewhere / "relative").exists()
    sys.modules.pop("many_nodes", None)


def test_a_worker_that_cannot_reach_the_folder_warns_once_naming_it(tmp_path):
    cache = DiskCache(tmp_path / "gone", key=b"k" * 32)
    pickled = pickle.dumps(cache)  # made the folder, as a caller does before sending it
    shutil.rmtree(tmp_path / "gone")  # ... which this "worker" cannot see
    (tmp_path / "w").mkdir()
    lines = _child(tmp_path / "w", pickled, cwd=tmp_path)
    assert lines[1] == "[3, 6, 9] [1, 2, 3]"  # computed, uncached
    warned = [line for line in lines if line.startswith("WARNING")]
    assert len(warned) == 1, warned
    assert str(tmp_path / "gone") in warned[0] and "on host" in warned[0]
    assert "does not exist on this machine" in warned[0]
    assert not (tmp_path / "gone").exists()  # no second, diverging cache made there


def test_an_entry_signed_with_another_key_says_the_key_differs(tmp_path):
    ours = DiskCache(tmp_path / "cache", key=b"a" * 32)
    ours.set(b"e" * 18, 1)
    ours.close()
    theirs = DiskCache(tmp_path / "cache", key=b"b" * 32)
    with pytest.warns(CacheWarning, match=r"different key.*key_file="):
        assert theirs.get_many([b"e" * 18]) == {}


#: run a child as the user "nobody" (a user who may read the cache folder but not write it)
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def _can_switch_user() -> str | None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root, to run a child as another user (root ignores permissions)"
    if shutil.which("setpriv") is None:
        return "needs setpriv (util-linux) to run a child as another user"
    probe = subprocess.run(
        [*NOBODY, sys.executable, "-c", "pass"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:  # e.g. an interpreter under /root with its shared library
        return f"this interpreter cannot run as another user here: {probe.stderr.strip()[-200:]}"
    return None


@pytest.mark.skipif(_can_switch_user() is not None, reason=str(_can_switch_user()))
def test_a_read_only_folder_is_still_read():
    """A user who may read but not write the cache folder (a shared, read-only cache) gets its
    hits; nothing is written, and one warning says so."""
    top = pathlib.Path(tempfile.mkdtemp(prefix="hn-readonly-"))
    try:
        top.chmod(0o755)
        mod = _nodes(top)
        cache = DiskCache(top / "cache", key=b"k" * 32)
        Pipeline([mod.triple], cache=cache).map({"x": [1, 2, 3]}, map_over="x")
        cache.close()
        for path in [top, *top.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        (top / "w").mkdir(mode=0o755)
        (top / "w").chmod(0o755)
        lines = _child(top / "w", DiskCache(top / "cache", key=b"k" * 32), top, NOBODY)
        assert lines[1] == "[3, 6, 9] []"  # every item read from the read-only cache
        warned = [line for line in lines if line.startswith("WARNING")]
        assert len(warned) == 1 and "read-only" in warned[0], warned
    finally:
        sys.modules.pop("many_nodes", None)
        shutil.rmtree(top, ignore_errors=True)
