"""Pipelines nested ten deep, each level mapping over its own list, never deadlock and give the
reference result under every executor mix, with small bounded pools (2 workers) that a naive
shared pool would exhaust at the second level."""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from hypernodes import HypernodesEngine, Pipeline, node
from hypernodes.engines import AsyncExecutor, ThreadedExecutor

pytestmark = pytest.mark.timeout(120)

DEPTH = 10
TOP = [1, 2, 3]


@node(output_name="out")
def bump(v: int) -> int:
    return v + 1


@node(output_name="vs")
def fan_two(v: int) -> list[int]:
    return [v, v + 1]


@node(output_name="vs")
def fan_one(v: int) -> list[int]:
    return [v]


@node(output_name="side")
def side(v: int) -> int:
    return 2 * v


@node(output_name="out")
def gather(outs: list[int], side: int) -> int:
    return sum(outs) + side


def tower(depth: int, engines: list | None = None) -> Pipeline:
    """Level ``k`` maps level ``k + 1`` over ``vs``; ``side`` runs beside it (same generation)."""
    pipeline = Pipeline([bump], name=f"level{depth}")
    for level in reversed(range(depth)):
        # Only ``out`` comes up as ``outs``; the inner level's other outputs get private names.
        hidden = {name: f"level{level + 1}_{name}" for name in pipeline.output_names}
        inner = pipeline.as_node(
            input_mapping={"vs": "v"}, output_mapping={**hidden, "out": "outs"}, map_over="vs"
        )
        fan = fan_two if level % 2 == 0 else fan_one
        engine = engines[level % len(engines)] if engines else None
        pipeline = Pipeline([fan, inner, side, gather], engine=engine, name=f"level{level}")
    return pipeline


def reference(v: int, level: int = 0) -> int:
    if level == DEPTH:
        return v + 1
    vs = [v, v + 1] if level % 2 == 0 else [v]
    return sum(reference(u, level + 1) for u in vs) + 2 * v


EXPECTED = [{"out": reference(v)} for v in TOP]
NAMES = ("sequential", "threaded", "async", "parallel", "custom")
PAIRS = [(n, m) for n, m in itertools.product(NAMES, NAMES) if n != "parallel"]


def small(name: str, user_pool: ThreadPoolExecutor):
    """Executors of two workers, so that a pool shared across levels would run dry."""
    return {
        "sequential": "sequential",
        "threaded": ThreadedExecutor(max_workers=2),
        "async": AsyncExecutor(max_workers=2),
        "parallel": "parallel",
        "custom": user_pool,
    }[name]


@pytest.mark.parametrize("pair", PAIRS, ids=["-".join(p) for p in PAIRS])
def test_depth_ten_with_one_inherited_engine(pair):
    before = threading.active_count()
    with ThreadPoolExecutor(max_workers=2) as user_pool:
        node_executor, map_executor = (small(name, user_pool) for name in pair)
        with HypernodesEngine(node_executor, map_executor, max_workers=2) as engine:
            pipeline = tower(DEPTH).with_engine(engine)
            assert pipeline.map({"v": TOP}, map_over="v", output_name="out") == EXPECTED
            assert pipeline.run({"v": 5}, output_name=["out", "outs"]) == {
                "out": reference(5),
                "outs": [reference(5, 1), reference(6, 1)],
            }
    assert threading.active_count() == before


def test_depth_ten_with_a_different_engine_at_every_level():
    with ThreadPoolExecutor(max_workers=2) as user_pool:
        engines = [
            HypernodesEngine(small(n, user_pool), small(m, user_pool), max_workers=2)
            for n, m in PAIRS
        ]
        try:
            for shift in range(0, len(engines), 3):
                rotated = engines[shift:] + engines[:shift]
                pipeline = tower(DEPTH, rotated)
                assert pipeline.map({"v": TOP}, map_over="v", output_name="out") == EXPECTED, (
                    rotated[:DEPTH]
                )
        finally:
            for engine in engines:
                engine.shutdown()
