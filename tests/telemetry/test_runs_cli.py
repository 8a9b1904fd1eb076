"""``hypernodes runs list/show/watch`` and ``hypernodes report`` on real run logs: watch follows
a map running in another process; the report of a failing map names the failed node and its
inputs, needs no network, and stays small for 20,000 calls."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hypernodes import Pipeline, node
from hypernodes.cli.command import main
from hypernodes.telemetry import RunLog

SRC = str(Path(__file__).resolve().parents[2] / "src")


@node(output_name="parsed")
def parse(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"not a number: {text!r}")
    return int(text)


@node(output_name="squared")
def square(parsed: int) -> int:
    return parsed * parsed


def _failing_map(folder: Path) -> None:
    pipeline = Pipeline([parse, square], callbacks=[RunLog(folder)], name="numbers")
    pipeline.map({"text": ["1", "2", "three", "4"]}, map_over="text", on_error="continue")


def test_list_and_show_name_the_runs_nodes_and_failure(tmp_path, capsys):
    _failing_map(tmp_path)
    Pipeline([parse, square], callbacks=[RunLog(tmp_path)], name="single").run({"text": "5"})
    assert main(["runs", "list", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:5] == ["run", "pipeline", "kind", "status", "items"]
    assert lines[1].split()[1:5] == ["single", "run", "ok", "-"]
    assert lines[2].split()[1:6] == ["numbers", "map", "failed", "4/4", "1"]

    assert main(["runs", "show", str(tmp_path), "last-1"]) == 0
    out = capsys.readouterr().out
    assert "numbers (map) failed, 4/4 items, 1 failed calls" in out
    table = {
        line.split()[0]: line.split()[1:6]
        for line in out.splitlines()
        if line[:6] in ("parse ", "square")
    }
    assert table == {"parse": ["3", "0", "1", "0", "0"], "square": ["3", "0", "0", "0", "0"]}
    assert "numbers > parse item 2: ValueError: not a number: 'three'" in out
    assert "inputs: text='three'" in out

    assert main(["runs", "show", str(tmp_path), "last-1", "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["failures"][0]["inputs"] == json.dumps({"text": "'three'"})
    assert {n["node"]: n["failed"] for n in shown["nodes"]} == {"parse": 1, "square": 0}


def test_a_missing_run_log_or_run_is_one_line_with_what_to_do(tmp_path, capsys):
    assert main(["runs", "list", str(tmp_path)]) == 1
    assert "no run log in" in capsys.readouterr().err
    _failing_map(tmp_path)
    assert main(["runs", "show", str(tmp_path), "zzz"]) == 1
    assert "hypernodes runs list" in capsys.readouterr().err


_SLOW_MAP = """
import sys, time
from pathlib import Path
from hypernodes import Pipeline, node
from hypernodes.telemetry import RunLog

@node(output_name="y")
def slow(x: int, go: str) -> int:
    while x == 0 and not Path(go).exists():  # the first item waits for the watcher
        time.sleep(0.02)
    time.sleep(0.1)
    return x

log = RunLog(sys.argv[1], flush_interval=0.1)
pipeline = Pipeline([slow], callbacks=[log], name="slowmap")
pipeline.map({"x": list(range(30)), "go": sys.argv[2]}, map_over="x")
"""


def test_watch_follows_a_map_running_in_another_process(tmp_path):
    env = {**os.environ, "PYTHONPATH": SRC}
    go = tmp_path / "go"
    runner = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_SLOW_MAP), str(tmp_path), str(go)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    command = [sys.executable, "-m", "hypernodes", "runs", "watch", str(tmp_path)]
    watch = subprocess.Popen(
        [*command, "--interval", "0.2"], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        first = watch.stdout.readline()  # the map has started and waits on its first item
        assert "slowmap (map): running" in first and "0/30 items" in first, first
        go.touch()
        rest, _ = watch.communicate(timeout=120)
    finally:
        go.touch()
        _, err = runner.communicate(timeout=120)
        watch.kill()
        watch.wait(10)
    assert runner.returncode == 0, err
    assert watch.returncode == 0
    lines = [first.strip(), *rest.splitlines()]
    done = [int(m.group(1)) for line in lines if (m := re.search(r"(\d+)/30 items", line))]
    assert len(done) == len(lines)
    assert len(set(done)) >= 4, lines  # it saw the map move
    assert done == sorted(done)
    assert "slowmap (map): ok" in lines[-1] and "30/30 items" in lines[-1]


def test_the_report_of_a_failing_map_is_one_offline_page(tmp_path, capsys):
    pytest.importorskip("graphviz")
    _failing_map(tmp_path)
    page = tmp_path / "run.html"
    assert main(["report", str(tmp_path), "last", "-o", str(page)]) == 0
    assert f"wrote {page}" in capsys.readouterr().out
    html = page.read_text()
    # nothing fetched at view time: no scripts, styles or images from elsewhere
    assert not re.search(r"<(script|link|img|iframe)[^>]*(src|href)=", html)
    assert "<svg" in html and 'class="node"' in html  # the graph, drawn by dot
    assert "#f4a6a6" in html  # the failed node's fill
    failures = html[html.index("<h2>Failures</h2>") : html.index("<h2>Slowest")]
    assert "<b>parse</b>" in failures and "not a number: &#x27;three&#x27;" in failures
    assert "text=&#x27;three&#x27;" in failures
    assert "<h2>Timeline</h2>" in html


@node(output_name="a")
def first(x: int) -> int:
    return x + 1


@node(output_name="b")
def second(a: int) -> int:
    return a * 2


@node(output_name="c")
def third(b: int) -> int:
    return b - 1


@node(output_name="d")
def fourth(c: int) -> int:
    return c


def test_the_report_of_20000_calls_stays_small(tmp_path):
    from hypernodes.telemetry.report import load, render_html

    log = RunLog(tmp_path)
    Pipeline([first, second, third, fourth], callbacks=[log], name="big").map(
        {"x": list(range(5000))}, map_over="x"
    )
    data = load(str(tmp_path), None)
    assert len(data.spans) == 20000
    html = render_html(data)
    assert len(html) < 300_000
    timeline = html[html.index("<h2>Timeline</h2>") :]
    assert timeline.count("<g><title>") == 4  # one row per node, whatever the number of calls
    assert "20000 calls" not in timeline and "5000 calls" in timeline
