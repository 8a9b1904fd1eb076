"""Types that help users: a typed user script (tests/typing/user_script.py) passes ``mypy
--strict`` and ``pyright`` (strict) with every ``reveal_type`` as its comment says, the mistakes in
it are flagged by both, it runs; and ``mypy`` on the package (pyproject's strict settings and
allow-list) is clean."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TYPING = ROOT / "tests" / "typing"
SCRIPT = TYPING / "user_script.py"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for both mypy runs (the second reuses what the first read of the package)."""
    return tmp_path_factory.mktemp("mypy-cache")


def expected_reveals() -> dict[int, str]:
    """Line number -> the type written in the ``# ...`` comment of each reveal_type line."""
    found = {}
    for number, line in enumerate(SCRIPT.read_text(encoding="utf-8").splitlines(), 1):
        match = re.match(r"reveal_type\(.*\)  # (.+)$", line)
        if match:
            found[number] = match.group(1)
    assert len(found) >= 8
    return found


def mypy_form(revealed: str) -> str:
    """mypy's spelling of a type in pyright's: no module paths, ``[(x: str), ...]`` param specs."""
    revealed = re.sub(r"\b(?:\w+\.)+(\w+)", r"\1", revealed)
    return re.sub(r"\[\[(.*?)\], ", r"[(\1), ", revealed)


def run(*command: str | Path, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env},
    )


@pytest.mark.timeout(600)
def test_user_script_passes_mypy_strict_with_its_reveals(mypy_cache: Path) -> None:
    # the package is read from this checkout's src/, its own errors silenced as for an installed
    # package; the script's are all reported (strict, unused ignores are errors)
    done = run(
        sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
        "--cache-dir", mypy_cache, "--no-error-summary", SCRIPT,
        MYPYPATH=str(ROOT / "src"),
    )  # fmt: skip
    lines = done.stdout.splitlines()
    errors = [line for line in lines if ": error:" in line]
    assert done.returncode == 0 and not errors, done.stdout + done.stderr
    revealed = {
        int(m.group(1)): mypy_form(m.group(2))
        for m in (re.search(r":(\d+): note: Revealed type is \"(.+)\"$", line) for line in lines)
        if m
    }
    assert revealed == expected_reveals()


@pytest.mark.timeout(600)
def test_user_script_passes_pyright_strict_with_its_reveals() -> None:
    pyright = shutil.which("pyright", path=str(BIN)) or shutil.which("pyright")
    assert pyright, "pyright is in the dev extra: pip install pyright (it needs node)"
    done = run(pyright, "--pythonpath", sys.executable, "-p", TYPING / "pyrightconfig.json", SCRIPT)
    out = done.stdout
    assert done.returncode == 0 and "\n0 errors, 0 warnings" in out, out + done.stderr
    revealed = {
        int(m.group(1)): m.group(2)
        for m in re.finditer(
            r"user_script\.py:(\d+):\d+ - information: Type of .* is \"(.+)\"", out
        )
    }
    assert revealed == expected_reveals()


def test_the_mistakes_are_flagged_by_both_checkers() -> None:
    """Each line of mistakes() carries one ignore per checker; both checkers run with unused
    ignores as errors (mypy: strict; pyright: the config below), so each is a real error."""
    config = (TYPING / "pyrightconfig.json").read_text(encoding="utf-8")
    assert '"reportUnnecessaryTypeIgnoreComment": "error"' in config
    assert '"enableTypeIgnoreComments": false' in config
    source = SCRIPT.read_text(encoding="utf-8")
    body = source[source.index("def mistakes()") : source.index("def typed_node")]
    calls = [line for line in body.splitlines() if "(" in line and '"""' not in line][1:-1]
    assert len(calls) >= 6
    for line in calls:
        assert "# type: ignore[" in line and "# pyright: ignore[" in line, line


def test_user_script_runs() -> None:
    done = run(sys.executable, SCRIPT, PYTHONPATH=str(ROOT / "src"))
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


@pytest.mark.timeout(600)
def test_package_passes_mypy_strict_with_its_allow_list(mypy_cache: Path) -> None:
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert settings["strict"] is True
    relaxed = {m for o in settings["overrides"] if "disable_error_code" in o for m in o["module"]}
    public = {
        "hypernodes", "hypernodes.model.node", "hypernodes.model.pipeline",
        "hypernodes.model.pipeline_node", "hypernodes.engines.base", "hypernodes.cache.base",
        "hypernodes.cli.command", "hypernodes.exceptions",
    }  # fmt: skip
    assert not relaxed & public and "hypernodes.*" not in relaxed
    # the same import options as the script's run, so that this one reuses its cache
    done = run(sys.executable, "-m", "mypy", "--follow-imports=silent", "--cache-dir", mypy_cache)
    assert done.returncode == 0, done.stdout[-5000:]
