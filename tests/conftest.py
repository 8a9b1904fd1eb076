"""Suite-wide set-up: the cache key file lives in a temporary folder, never in the real home;
fixtures for cache fault tests (a real tiny file system, once-only warnings reset)."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def _private_config_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Point ``XDG_CONFIG_HOME`` at a session folder (inherited by child and worker processes),
    so that ``DiskCache`` makes its key file there; set once, so it costs nothing per test."""
    saved = {
        name: os.environ.get(name) for name in ("XDG_CONFIG_HOME", "HYPERNODES_CACHE_KEY_FILE")
    }
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("config-home"))
    os.environ.pop("HYPERNODES_CACHE_KEY_FILE", None)
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def fresh_cache_warnings() -> None:
    """The test sees the first occurrence of every once-only cache warning."""
    from hypernodes.cache import base

    base._warned.clear()


@pytest.fixture
def small_disk(tmp_path: pathlib.Path) -> Iterator[pathlib.Path]:
    """A real 2 MiB tmpfs mounted in ``tmp_path`` (unmounted after); skips, saying why, where
    this machine does not let the test mount one."""
    if sys.platform != "linux" or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip(
            "mounting a 2 MiB tmpfs needs Linux, root and `mount`; the simulated test covers this"
        )
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(
            f"cannot mount a 2 MiB tmpfs here ({done.stderr.strip()}); the simulated test covers this"
        )
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)
