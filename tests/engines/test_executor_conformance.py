"""Every case gives the same results, in the same order, under every node x map executor pair."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

import pytest
from engine_cases import CASES, MAP_EXECUTORS, NODE_EXECUTORS, make_engine

from hypernodes import HypernodesEngine

PAIRS = list(itertools.product(NODE_EXECUTORS, MAP_EXECUTORS))


@pytest.fixture(scope="module")
def engines():
    """One engine per pair for the whole module (process pools start once), shut down at the end."""
    user_pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="user-pool")
    made = {pair: make_engine(*pair, user_pool) for pair in PAIRS}
    yield made
    for engine in made.values():
        engine.shutdown()
    user_pool.shutdown()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.parametrize("pair", PAIRS, ids=["-".join(p) for p in PAIRS])
def test_case_matches_reference(engines, pair, case):
    assert case.run(engines[pair]) == case.expected()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_reference_is_the_sequential_engine(case):
    # The plain-Python expectations and the default engine agree, so the pairs above are compared
    # with what a sequential run gives.
    with HypernodesEngine() as engine:
        assert case.run(engine) == case.expected()


def test_node_executor_parallel_is_refused_with_guidance():
    from hypernodes.exceptions import ExecutorError

    with pytest.raises(ExecutorError, match=r"node_executor='threaded'.*map_executor='parallel'"):
        HypernodesEngine(node_executor="parallel")


def test_unknown_executor_names_the_choices():
    from hypernodes.exceptions import ExecutorError

    with pytest.raises(ExecutorError, match="'sequential', 'async', 'threaded', 'parallel'"):
        HypernodesEngine(map_executor="processes")
    with pytest.raises(ExecutorError, match="submit"):
        HypernodesEngine(map_executor=object())
