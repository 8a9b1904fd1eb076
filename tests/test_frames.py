"""How many frames lie between the caller and the user's function on the main paths.

Each frame is a Python call the library adds to every node call, so these counts are the cost
of the architecture on the hot path; a change that adds a layer of indirection shows up here.
"""

from __future__ import annotations

import sys

from hypernodes import DiskCache, HypernodesEngine, Pipeline, PipelineCallback, node

SEEN: list[int] = []


def frames_to_caller() -> int:
    """Frames from the marked caller down to the user's function that called this (the user's
    function counts as one frame; the caller itself does not)."""
    frame = sys._getframe(1)  # the user's function
    count = 0
    while frame is not None and frame.f_code.co_name != "call_marked":
        frame = frame.f_back
        count += 1
    assert frame is not None, "the user's function did not run below the caller"
    return count - 1  # the lambda that call_marked calls is the caller


@node(output_name="y")
def add_one(x: int) -> int:
    SEEN.append(frames_to_caller())
    return x + 1


class NoOp(PipelineCallback):
    def on_node_end(self, *, node, outputs, duration, context, **kwargs):
        pass


def call_marked(call) -> int:
    SEEN.clear()
    call()
    assert SEEN, "the node did not run"
    return max(SEEN)


def test_run_is_at_most_5_frames():
    pipeline = Pipeline([add_one])
    assert call_marked(lambda: pipeline.run(inputs={"x": 1})) <= 5


def test_sequential_map_is_at_most_6_frames():
    pipeline = Pipeline([add_one])
    assert call_marked(lambda: pipeline.map(inputs={"x": [1, 2]}, map_over="x")) <= 6


def test_map_with_disk_cache_and_callback_is_at_most_8_frames(tmp_path):
    pipeline = Pipeline([add_one], cache=DiskCache(tmp_path), callbacks=[NoOp()])
    assert call_marked(lambda: pipeline.map(inputs={"x": [1, 2]}, map_over="x")) <= 8


def test_run_with_the_threaded_node_executor_is_at_most_9_frames():
    with HypernodesEngine(node_executor="threaded") as engine:
        pipeline = Pipeline([add_one], engine=engine)
        # a step that is alone ready runs in the caller's thread (no hop to the pool)
        assert call_marked(lambda: pipeline.run(inputs={"x": 1})) <= 9


def test_nested_as_node_map_over_is_at_most_10_frames():
    inner = Pipeline([add_one], name="inner")
    outer = Pipeline([inner.as_node(map_over="x", name="inner")], name="outer")
    assert call_marked(lambda: outer.run(inputs={"x": [1, 2]})) <= 10
