"""The ``hypernodes`` command does what its docs say (issue 23, "The command").

Each case runs the command in a real child process (``python -m hypernodes``), some with an
optional package made unimportable in that child (``sys.modules[name] = None``) to stand for a
machine without the extra.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import hypernodes

pytestmark = pytest.mark.timeout(180)

FLOWS = """
import time
from pathlib import Path
from hypernodes import Pipeline, node

@node(output_name="n")
def count(words: list[str]) -> int:
    return len(words)

@node(output_name="doubled")
def double(n: int, times: int = 2) -> int:
    return n * times

@node(output_name="echo", retries=2, retry_on=ValueError)
def echo(text: str) -> str:
    return text

@node(output_name="slept")
def sleepy(seconds: float) -> float:
    print("started", flush=True)
    time.sleep(seconds)
    return seconds

pipeline = Pipeline([count, double], name="words")
echoes = Pipeline([echo], name="echoes")
sleeper = Pipeline([sleepy], name="sleeper")

def main():
    Path("side-effect").write_text("called")
    return 5
"""


def hn(
    tmp: Path, *args: str, without: str | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The command run in ``tmp`` (which holds flows.py); ``without`` makes a package missing."""
    code = "import sys\n"
    if without:
        code += f"sys.modules[{without!r}] = None\n"
    code += "from hypernodes.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    env = _env()
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=tmp,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        timeout=120,
        env=env,
    )


def _env() -> dict[str, str]:
    """The environment of a child: this checkout's hypernodes first on its path (the child runs
    in another directory, where a relative PYTHONPATH would not find it)."""
    src = str(Path(hypernodes.__file__).resolve().parents[1])
    env = {**os.environ, "COLUMNS": "200"}
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    env.pop("HYPERNODES_TRACEBACK", None)
    return env


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    (tmp_path / "flows.py").write_text(textwrap.dedent(FLOWS))
    return tmp_path


def test_describe_shows_retry_on_only_for_nodes_that_retry(tmp):
    text = hn(tmp, "describe", "flows.py").stdout
    assert "retry_on" not in text and "<class" not in text
    retried = hn(tmp, "describe", "flows.py:echoes").stdout
    assert "retries=2, retry_on=['ValueError']" in retried
    data = json.loads(hn(tmp, "describe", "flows.py", "--format", "json").stdout)
    assert data["nodes"][0]["options"]["retry_on"] == []


def test_progress_without_rich_prints_plain_lines(tmp):
    result = hn(
        tmp, "run", "flows.py", "--map-over", "words", "-i", 'words=[["a"], ["b", "c"]]',
        "--progress", without="rich",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "[hypernodes] words (map): 2/2 items (100%)" in result.stderr
    assert json.loads(result.stdout) == [{"n": 1, "doubled": 2}, {"n": 2, "doubled": 4}]


@pytest.mark.parametrize(
    ("assignment", "says"),
    [
        ("words=str", "input 'words' is list[str], but 'str' is not JSON"),
        ("times=two", "input 'times' is int, but 'two' is not JSON"),
    ],
)
def test_a_string_for_an_input_annotated_otherwise_is_refused(tmp, assignment, says):
    args = (
        ["-i", assignment]
        if assignment.startswith("words")
        else ["-i", "words=[]", "-i", assignment]
    )
    result = hn(tmp, "run", "flows.py", *args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert says in result.stderr and "Traceback" not in result.stderr


def test_a_string_input_still_takes_a_plain_string(tmp):
    result = hn(tmp, "run", "flows.py:echoes", "-i", "text=hello world")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"echo": "hello world"}


def test_a_function_target_that_does_not_build_a_pipeline_is_not_called(tmp):
    result = hn(tmp, "run", "flows.py:main")
    assert result.returncode == 2
    assert "does not say it returns a Pipeline" in result.stderr
    assert "def main() -> Pipeline" in result.stderr
    assert not (tmp / "side-effect").exists()


def test_viz_with_an_unknown_extension_is_a_usage_problem(tmp):
    result = hn(tmp, "viz", "flows.py", "-o", "x.jpg")
    assert result.returncode == 2, result.stderr
    assert "cannot tell the picture format from .jpg" in result.stderr


def test_viz_writes_dot_without_the_graphviz_package(tmp):
    result = hn(tmp, "viz", "flows.py", "-o", "p.dot", without="graphviz")
    assert result.returncode == 0, result.stderr
    source = (tmp / "p.dot").read_text()
    assert source.startswith('digraph "words" {') and "count" in source and "->" in source
    assert hn(tmp, "viz", "flows.py", "-o", "p.svg", without="graphviz").returncode == 1


def test_answering_no_to_cache_clear_is_not_an_error(tmp):
    assert hn(tmp, "run", "flows.py", "-i", "words=[]", "--cache", "c").returncode == 0
    result = hn(tmp, "cache", "clear", "c", stdin="n\n")
    assert result.returncode == 0, result.stderr
    assert "nothing deleted" in result.stderr
    info = json.loads(hn(tmp, "cache", "info", "c", "--format", "json").stdout)
    assert info["entries"] > 0
    unanswered = hn(tmp, "cache", "clear", "c")  # stdin closed: no answer
    assert unanswered.returncode == 1 and "no answer" in unanswered.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT to a child process (POSIX)")
def test_ctrl_c_exits_130(tmp):
    child = subprocess.Popen(
        [sys.executable, "-m", "hypernodes", "run", "flows.py:sleeper", "-i", "seconds=60"],
        cwd=tmp,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        assert child.stdout.readline().strip() == "started"
        time.sleep(0.2)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 130, (out, err)
    assert "interrupted" in err


def test_telemetry_callback_without_its_extra_names_it(tmp):
    code = (
        "import sys\nsys.modules['opentelemetry'] = None\n"
        "from hypernodes.telemetry import TelemetryCallback\n"
        "try:\n    TelemetryCallback()\n"
        "except ImportError as exc:\n    print(type(exc).__name__, exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=_env()
    )
    assert "pip install 'hypernodes[telemetry]'" in done.stdout, done.stderr
