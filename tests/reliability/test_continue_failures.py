"""Under ``on_error="continue"`` a failed item is a failure, never a cache hit (issue 23).

Before, an item whose first node raised emitted ``on_map_item_cached`` (no node had "really
run"), so the progress bar said ``5/5 items, 2 cached`` for two failures and no cache at all, and
the rows of the nodes after the failed one stayed short of their total.  Now the events say
failure, every view (rich, notebook, plain lines) counts ``failed``, and the rows of nodes the
failed items never reached end complete, marked ``skipped`` and with a cross.
"""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import pytest

from hypernodes import HypernodesEngine, MemoryCache, Pipeline, node
from hypernodes.telemetry import ProgressCallback

sys.path.insert(0, str(Path(__file__).parents[1] / "callbacks"))
from recorder import Recorder

pytestmark = pytest.mark.timeout(120)

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@node(output_name="y")
def first(x: int) -> int:
    if x % 2:
        raise ValueError(f"odd {x}")
    return x


@node(output_name="z")
def second(y: int) -> int:
    return y + 1


ITEMS = list(range(5))  # 1 and 3 fail in `first`; `second` runs for 0, 2, 4


@pytest.mark.parametrize("executor", ["sequential", "threaded", "async", "parallel"])
def test_failed_items_are_not_reported_as_cached(executor):
    recorder = Recorder()
    with HypernodesEngine(map_executor=executor, max_workers=2) as engine:
        Pipeline([first, second], engine=engine, callbacks=[recorder], name="p").map(
            {"x": ITEMS}, map_over="x", on_error="continue"
        )
    hooks = recorder.hooks()
    assert "on_map_item_cached" not in hooks
    errors = sorted(e[2] for e in recorder.events if e[0] == "on_error")
    assert errors == [(1,), (3,)]
    assert hooks.count("on_map_item_end") == 5


def test_a_cached_item_is_still_cached_next_to_failures():
    recorder = Recorder()
    pipeline = Pipeline([first, second], cache=MemoryCache(), name="p")
    pipeline.map({"x": [0]}, map_over="x")
    pipeline.with_callbacks([recorder]).map({"x": ITEMS}, map_over="x", on_error="continue")
    cached = [e[3] for e in recorder.events if e[0] == "on_map_item_cached"]
    assert cached == [0]


def _run_with(progress: ProgressCallback) -> None:
    Pipeline([first, second], callbacks=[progress], name="p").map(
        {"x": ITEMS}, map_over="x", on_error="continue"
    )


def test_plain_lines_count_failures_not_cache_hits():
    out = io.StringIO()
    _run_with(ProgressCallback(mode="plain", file=out))
    text = out.getvalue()
    assert "cached" not in text
    assert text.splitlines()[-1].startswith("[hypernodes] p (map): 5/5 items (100%), 2 failed,")


def test_rich_bars_count_failures_and_finish_downstream_rows():
    out = io.StringIO()
    _run_with(ProgressCallback(mode="rich", file=out))
    text = ANSI.sub("", out.getvalue())
    final = text[text.rindex("p (map)") :]
    assert "cached" not in final
    assert re.search(r"p \(map\) \u2717 \(2 failed\)\s.*5/5", final), final
    assert re.search(r"first \u2717 \(2 failed\)\s.*5/5", final), final
    assert re.search(r"second \u2717 \(2 skipped\)\s.*5/5", final), final


class _Handle:
    def __init__(self, shown: list[dict[str, str]]) -> None:
        self.shown = shown

    def update(self, bundle: dict[str, str], raw: bool = False) -> None:
        self.shown.append(bundle)


def test_notebook_display_counts_failures_and_finishes_downstream_rows(monkeypatch):
    display = pytest.importorskip("IPython.display", reason="the dev extra installs IPython")
    shown: list[dict[str, str]] = []

    def fake_display(bundle, raw=False, display_id=False):
        shown.append(bundle)
        return _Handle(shown)

    monkeypatch.setattr(display, "display", fake_display)
    _run_with(ProgressCallback(mode="notebook"))
    final = shown[-1]
    lines = {line.split()[0]: line for line in final["text/plain"].splitlines()}
    assert "5/5" in lines["p"] and "(2 failed)" in lines["p"]
    assert "5/5" in lines["second"] and "(2 skipped)" in lines["second"], lines
    assert "cached" not in final["text/plain"]
    assert "(2 failed)" in final["text/html"] and "#cf222e" in final["text/html"]


def test_a_nested_pipeline_failure_counts_on_the_outer_map():
    inner = Pipeline([first], name="inner").as_node(name="inner")
    out = io.StringIO()
    Pipeline([inner, second], callbacks=[ProgressCallback(mode="plain", file=out)], name="p").map(
        {"x": ITEMS}, map_over="x", on_error="continue"
    )
    last = out.getvalue().splitlines()[-1]
    assert last.startswith("[hypernodes] p (map): 5/5 items (100%), 2 failed,"), last
