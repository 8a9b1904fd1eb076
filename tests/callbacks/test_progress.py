"""ProgressCallback: one bar per map reaching its total, node rows, plain lines off a terminal."""

from __future__ import annotations

import io
import re

import pytest

from hypernodes import MemoryCache, Pipeline, node
from hypernodes.telemetry import ProgressCallback

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@node(output_name="a")
def step_a(x: int) -> int:
    return x + 1


@node(output_name="b")
def step_b(a: int) -> int:
    return a * 2


def screen(buffer: io.StringIO) -> str:
    return ANSI.sub("", buffer.getvalue())


def test_rich_bar_reaches_total_with_node_rows():
    out = io.StringIO()
    pipeline = Pipeline(
        [step_a, step_b], callbacks=[ProgressCallback(mode="rich", file=out)], name="demo"
    )
    pipeline.map({"x": list(range(50))}, map_over="x")
    text = screen(out)
    final = text[text.rindex("demo (map)") :]
    assert re.search(r"demo \(map\)\s.*50/50", final)
    assert re.search(r"step_a\s.*50/50", final) and re.search(r"step_b\s.*50/50", final)
    assert final.count("demo (map)") == 1  # one bar, not one per item


def test_plain_mode_prints_log_lines_and_the_final_count():
    out = io.StringIO()
    pipeline = Pipeline([step_a], callbacks=[ProgressCallback(mode="plain", file=out)], name="demo")
    pipeline.map({"x": list(range(20))}, map_over="x")
    lines = out.getvalue().splitlines()
    assert lines[-1].startswith("[hypernodes] demo (map): 20/20 items (100%)")
    assert any("10/20 items (50%)" in line for line in lines)
    assert "\x1b[" not in out.getvalue()


def test_auto_mode_is_plain_when_not_a_terminal():
    out = io.StringIO()
    Pipeline([step_a], callbacks=[ProgressCallback(file=out)], name="demo").map(
        {"x": [1, 2]}, map_over="x"
    )
    assert "[hypernodes] demo (map): 2/2 items" in out.getvalue()


def test_cache_hits_are_shown():
    out = io.StringIO()
    cache = MemoryCache()
    pipeline = Pipeline([step_a, step_b], cache=cache, name="demo")
    pipeline.map({"x": list(range(10))}, map_over="x")
    pipeline.with_callbacks([ProgressCallback(mode="plain", file=out)]).map(
        {"x": list(range(10))}, map_over="x"
    )
    assert "10/10 items (100%), 10 cached" in out.getvalue()


def test_nested_map_shares_one_indented_bar():
    out = io.StringIO()
    inner = Pipeline([step_a], name="inner")
    outer = Pipeline(
        [
            inner.as_node(
                input_mapping={"xs": "x"}, output_mapping={"a": "as"}, map_over="xs", name="each"
            )
        ],
        callbacks=[ProgressCallback(mode="rich", file=out)],
        name="outer",
    )
    outer.map({"xs": [[1, 2, 3]] * 4}, map_over="xs")
    text = screen(out)
    final = text[text.rindex("outer (map)") :]
    assert re.search(r"outer \(map\)\s.*4/4", final)
    assert re.search(r"\n\s+each \(map\)\s.*12/12", final)


def test_bad_mode():
    with pytest.raises(ValueError, match="mode"):
        ProgressCallback(mode="fancy")
