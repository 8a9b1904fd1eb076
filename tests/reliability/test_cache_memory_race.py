"""``MemoryCache(max_entries=N)`` shared by many threads mapping one pipeline."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest

from hypernodes import MemoryCache, Pipeline, node

pytestmark = pytest.mark.usefixtures("fresh_cache_warnings")


@node(output_name="a")
def _wrap(x: int) -> list[int]:
    return [x]


@node(output_name="b")
def _extend(a: list[int]) -> list[int]:
    return [*a, 1]


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Switch threads as often as the interpreter allows, so that races show at once."""
    saved = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(saved)


def _trial(max_entries: int) -> tuple[list[BaseException], list[bool], MemoryCache]:
    cache = MemoryCache(max_entries=max_entries)
    pipeline = Pipeline([_wrap, _extend], cache=cache)
    errors: list[BaseException] = []
    correct: list[bool] = []
    start = threading.Barrier(16)

    def work(t: int) -> None:
        start.wait()
        try:
            for _ in range(3):
                xs = list(range(t * 7, t * 7 + 200))
                rows = pipeline.map({"x": xs}, map_over="x")
                correct.append(rows == [{"a": [x], "b": [x, 1]} for x in xs])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors, correct, cache


def test_cache_memory_bounded_shared_by_16_threads(busy_switching: None):
    # On the old code 5 trials of 5 failed with "dictionary changed size during iteration".
    for _ in range(5):
        errors, correct, cache = _trial(max_entries=20)
        assert errors == []
        assert correct == [True] * 48
        assert len(cache) <= 20
