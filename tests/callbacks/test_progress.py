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


def nested_run_pipeline(callback) -> Pipeline:
    inner = Pipeline([step_a], name="inner")
    each = inner.as_node(
        input_mapping={"xs": "x"}, output_mapping={"a": "as"}, map_over="xs", name="each"
    )
    return Pipeline([each], callbacks=[callback], name="outer")


def test_plain_lines_for_a_run_whose_maps_are_nested():
    """A CI log shows every map, nested or not, with its path: at tenths and at the end."""
    out = io.StringIO()
    nested_run_pipeline(ProgressCallback(mode="plain", file=out)).run({"xs": list(range(20))})
    lines = out.getvalue().splitlines()
    assert lines, "a run with a nested map printed nothing"
    assert all(line.startswith("[hypernodes] outer > each (map): ") for line in lines), lines
    assert "[hypernodes] outer > each (map): 10/20 items (50%)" in out.getvalue()
    assert lines[-1].startswith("[hypernodes] outer > each (map): 20/20 items (100%)")
    assert "done in" in lines[-1]


def test_plain_lines_for_nested_maps_of_a_map():
    out = io.StringIO()
    nested_run_pipeline(ProgressCallback(mode="plain", file=out)).map(
        {"xs": [[1, 2, 3]] * 10}, map_over="xs"
    )
    lines = out.getvalue().splitlines()
    finals = [line for line in lines if "done in" in line]
    assert [line.split(":")[0] for line in finals] == [
        "[hypernodes] outer (map)",
        "[hypernodes] outer > each (map)",
    ]
    assert "10/10 items (100%)" in finals[0] and "30/30 items (100%)" in finals[1]
    progress = [line for line in lines if "done in" not in line]
    assert any(line.startswith("[hypernodes] outer > each (map):") for line in progress)
    assert any(line.startswith("[hypernodes] outer (map):") for line in progress)


def test_a_single_step_shows_no_rate():
    out = io.StringIO()
    Pipeline([step_a, step_b], callbacks=[ProgressCallback(mode="rich", file=out)], name="r").run(
        {"x": 1}
    )
    text = screen(out)
    final = text[text.rindex("r (run)") :]
    for label in ("r (run)", "step_a", "step_b"):
        row = next(line for line in final.splitlines() if label in line)
        assert "1/1" in row and "/s" not in row, row


def test_disabled_progress_draws_nothing_and_is_never_called(monkeypatch):
    from hypernodes.observe.callbacks import dispatcher_for as _dispatcher

    out = io.StringIO()
    progress = ProgressCallback(mode="plain", file=out, enable=False)
    calls = []
    monkeypatch.setattr(ProgressCallback, "_open", lambda self: calls.append("open"))
    pipeline = Pipeline([step_a], callbacks=[progress], name="demo")
    assert pipeline.map({"x": list(range(20))}, map_over="x") == [{"a": x + 1} for x in range(20)]
    assert out.getvalue() == "" and calls == []
    assert _dispatcher([progress]) is None  # no dispatcher at all: the run takes the bare loop
    progress.enabled = True  # switched on later, it works
    monkeypatch.undo()
    pipeline.map({"x": list(range(20))}, map_over="x")
    assert "20/20 items" in out.getvalue()


def test_a_stream_of_unknown_length_counts_its_items():
    out = io.StringIO()
    pipeline = Pipeline([step_a], callbacks=[ProgressCallback(mode="plain", file=out)], name="s")
    rows = list(pipeline.imap({"x": iter(range(30))}, map_over="x"))
    assert len(rows) == 30
    assert out.getvalue().splitlines()[-1].startswith("[hypernodes] s (map): 30 items, done in")


def test_retries_are_counted_on_the_node_row():
    failed = []

    @node(output_name="y", retries=2)
    def flaky(x: int) -> int:
        if x == 3 and not failed:
            failed.append(x)
            raise OSError("once")
        return x

    out = io.StringIO()
    pipeline = Pipeline([flaky], callbacks=[ProgressCallback(mode="rich", file=out)], name="r")
    pipeline.map({"x": list(range(10))}, map_over="x")
    final = screen(out)[screen(out).rindex("r (map)") :]
    assert re.search(r"flaky \(1 retries\)\s.*10/10", final)
