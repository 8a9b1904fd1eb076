"""Fixtures shared by the callback tests: one engine per node_executor x map_executor pair."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from executor_pairs import PAIRS

from hypernodes import HypernodesEngine


@pytest.fixture(scope="module")
def engines():
    pool = ThreadPoolExecutor(max_workers=3)
    made = {
        (n, m): HypernodesEngine(
            node_executor=pool if n == "custom" else n,
            map_executor=pool if m == "custom" else m,
            max_workers=2 if m == "parallel" else None,
        )
        for n, m in PAIRS
    }
    yield made
    for engine in made.values():
        engine.shutdown()
    pool.shutdown()
