"""TelemetryCallback: the OpenTelemetry span tree of a nested map, and the waterfall chart."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from hypernodes import MemoryCache, Pipeline, node
from hypernodes.telemetry import TelemetryCallback


@node(output_name="doubled")
def double(x: int) -> int:
    return 2 * x


@node(output_name="total")
def total(doubled_all: list[int]) -> int:
    return sum(doubled_all)


@pytest.fixture
def traced():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return TelemetryCallback(tracer_provider=provider), exporter


def nested(callback) -> Pipeline:
    inner = Pipeline([double], name="inner")
    each = inner.as_node(
        input_mapping={"xs": "x"},
        output_mapping={"doubled": "doubled_all"},
        map_over="xs",
        name="each",
    )
    return Pipeline([each, total], callbacks=[callback], name="outer")


def test_span_tree_of_a_nested_map(traced):
    callback, exporter = traced
    nested(callback).map({"xs": [[1, 2], [3]]}, map_over="xs")
    spans = exporter.get_finished_spans()
    by_id = {s.context.span_id: s for s in spans}

    def parent_name(span):
        return by_id[span.parent.span_id].name if span.parent else None

    tree = sorted((s.name, parent_name(s)) for s in spans)
    assert tree == sorted(
        [
            ("map outer", None),
            ("item 0", "map outer"),
            ("item 1", "map outer"),
            ("each", "item 0"),
            ("each", "item 1"),
            ("total", "item 0"),
            ("total", "item 1"),
            ("map each", "each"),
            ("map each", "each"),
            ("item 0", "map each"),
            ("item 1", "map each"),
            ("item 0", "map each"),
            ("double", "item 0"),
            ("double", "item 1"),
            ("double", "item 0"),
        ]
    )
    assert len({s.context.trace_id for s in spans}) == 1
    doubles = [s for s in spans if s.name == "double"]
    assert {s.attributes["hypernodes.path"] for s in doubles} == {"outer/each"}
    assert all(s.attributes["hypernodes.cached"] is False for s in doubles)
    for span in spans:
        assert span.start_time <= span.end_time
        if span.parent:
            parent = by_id[span.parent.span_id]
            assert parent.start_time <= span.start_time and span.end_time <= parent.end_time


def test_cached_and_error_attributes(traced):
    callback, exporter = traced
    pipeline = Pipeline([double], cache=MemoryCache(), callbacks=[callback], name="p")
    pipeline.run({"x": 1})
    pipeline.run({"x": 1})
    cached = [s for s in exporter.get_finished_spans() if s.name == "double"]
    assert [s.attributes["hypernodes.cached"] for s in cached] == [False, True]

    @node(output_name="y")
    def fail(x):
        raise ValueError("broken")

    with pytest.raises(ValueError):
        Pipeline([fail], callbacks=[callback], name="q").run({"x": 1})
    failed = next(s for s in exporter.get_finished_spans() if s.name == "fail")
    assert failed.status.status_code.name == "ERROR"
    assert failed.events[0].name == "exception"


def test_waterfall_chart(traced):
    callback, _ = traced
    nested(callback).run({"xs": [1, 2, 3]})
    figure = callback.get_waterfall_chart(group_by="span")  # one row per span
    rows = [label for bar in figure.data for label in bar.y]
    assert len(rows) == len(set(rows)) == len(callback.records) > 0
    assert any("double" in label for label in rows)
    assert all(width > 0 for bar in figure.data for width in bar.x)


def _draw_many(callback, items: int) -> None:
    Pipeline([double], callbacks=[callback], name="many").map({"x": list(range(items))}, "x")


def test_waterfall_groups_spans_by_node_and_by_item(traced):
    callback, _ = traced
    _draw_many(callback, 50)
    by_node = callback.get_waterfall_chart()
    assert list(by_node.layout.yaxis.categoryarray) == [
        "map many",
        "\u2003items of many",
        "\u2003\u2003double",
    ]
    doubles = next(bar for bar in by_node.data if bar.name == "node")
    assert len(doubles.x) == 50 and set(doubles.y) == {"\u2003\u2003double"}
    assert by_node.layout.xaxis.side == "top"  # the time axis stays in view
    by_item = callback.get_waterfall_chart(group_by="item")
    rows = list(by_item.layout.yaxis.categoryarray)
    assert len(rows) == 2 + 50 and rows[2].endswith("many item 0")
    with pytest.raises(ValueError, match="group_by must be one of"):
        callback.get_waterfall_chart(group_by="nodes")


def test_a_waterfall_of_20000_spans_stays_small():
    callback = TelemetryCallback()
    _draw_many(callback, 10_000)  # 10,000 item spans and 10,000 node spans
    assert len(callback.records) == 20_001
    figure = callback.get_waterfall_chart()
    assert len(figure.layout.yaxis.categoryarray) == 3
    assert len(figure.to_html(include_plotlyjs=False)) < 3_000_000


NO_PROVIDER = """
import warnings
warnings.simplefilter("error")  # a callback disabled with a CallbackWarning fails the script
from hypernodes import Pipeline, node
from hypernodes.telemetry import TelemetryCallback

@node(output_name="doubled")
def double(x: int) -> int:
    return 2 * x

telemetry = TelemetryCallback()  # no tracer provider set up anywhere
Pipeline([double], callbacks=[telemetry], name="p").map({"x": [1, 2, 3]}, map_over="x")
names = sorted(r.name for r in telemetry.records)
assert names == ["double"] * 3 + ["item 0", "item 1", "item 2", "map p"], names
assert all(r.end >= r.start for r in telemetry.records)
figure = telemetry.get_waterfall_chart()
assert sum(len(bar.y) for bar in figure.data) == 7
print("ok")
"""

GLOBAL_PROVIDER = """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from hypernodes import Pipeline, node
from hypernodes.telemetry import TelemetryCallback

telemetry = TelemetryCallback()  # made before the provider: the global proxy follows it
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)

@node(output_name="doubled")
def double(x: int) -> int:
    return 2 * x

Pipeline([double], callbacks=[telemetry], name="p").run({"x": 1})
exported = sorted(span.name for span in exporter.get_finished_spans())
assert exported == ["double", "pipeline p"], exported
assert sorted(r.name for r in telemetry.records) == exported
print("ok")
"""


@pytest.mark.parametrize("script", [NO_PROVIDER, GLOBAL_PROVIDER], ids=["none", "global"])
def test_without_a_given_provider(script, tmp_path):
    """Run in a fresh interpreter: OpenTelemetry's global provider can be set once per process."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
