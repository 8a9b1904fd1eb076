"""Failure budgets of maps (``max_failures=``) and :func:`failures`, the failed items of a map.

A map with ``on_error="continue"`` attempts every item; a budget stops it once more items have
failed than it allows, raising :class:`~hypernodes.exceptions.FailureBudgetError`, and the items
not started yet are never run (the map's stream is closed).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..exceptions import FailureBudgetError, MapError, pipeline_phrase
from ..execution.item_error import ItemError


@dataclass(frozen=True)
class Budget:
    """How many failed items a map may have: ``count`` items, or a ``ratio`` of all items."""

    given: int | float
    count: int | None = None
    ratio: float | None = None

    def allowed(self, total: int | None, label: str) -> int:
        """The number of failed items allowed among ``total`` items (None when unknown)."""
        if self.count is not None:
            return self.count
        if total is None:
            raise MapError(
                f"{pipeline_phrase(label)}: max_failures={self.given!r} is a ratio of the items, "
                "but the map goes over an iterator of unknown length; pass a list, or a number "
                "of items (max_failures=10)"
            )
        return int(self.ratio * total)  # type: ignore[operator]


def read_budget(max_failures: Any, on_error: str) -> Budget | None:
    """``max_failures=`` checked: None, a whole number >= 0, or a ratio in (0, 1)."""
    if max_failures is None:
        return None
    if on_error != "continue":
        raise MapError(
            f"max_failures={max_failures!r} needs on_error='continue': with on_error='raise' "
            "the first failure stops the map already"
        )
    if isinstance(max_failures, bool) or not isinstance(max_failures, (int, float)):
        raise MapError(
            "max_failures must be a number of items (an int >= 0) or a ratio of them (a float "
            f"between 0 and 1), got {max_failures!r}"
        )
    if isinstance(max_failures, int):
        if max_failures < 0:
            raise MapError(f"max_failures must be >= 0, got {max_failures}")
        return Budget(max_failures, count=max_failures)
    if not 0 < max_failures < 1:
        raise MapError(
            f"max_failures={max_failures!r}: a ratio is a float between 0 and 1 (0.05 allows "
            "5% of the items to fail); for a number of items pass an int"
        )
    return Budget(max_failures, ratio=max_failures)


def item_failure(row: Mapping[str, Any]) -> ItemError | None:
    """The first :class:`ItemError` among a row's values, or None for a clean row."""
    for value in row.values():
        if value.__class__ is ItemError:
            return value
    return None


def within_budget(
    pairs: Iterator[tuple[int, dict[str, Any]]],
    budget: Budget,
    total: int | None,
    label: str,
) -> Generator[tuple[int, dict[str, Any]], None, None]:
    """``pairs`` passed on until more items have failed than ``budget`` allows; then the stream
    is closed (items not started are never run) and :class:`FailureBudgetError` raised."""
    allowed = budget.allowed(total, label)
    failed: list[tuple[int, ItemError]] = []
    finished = 0
    try:
        for index, row in pairs:
            finished += 1
            error = item_failure(row)
            if error is not None:
                failed.append((index, error))
                if len(failed) > allowed:
                    raise _over_budget(failed, finished, total, budget, label)
            yield index, row
    finally:
        close = getattr(pairs, "close", None)
        if close is not None:
            close()


async def awithin_budget(
    pairs: AsyncIterator[tuple[int, dict[str, Any]]],
    budget: Budget,
    total: int | None,
    label: str,
) -> AsyncIterator[tuple[int, dict[str, Any]]]:
    """:func:`within_budget` for an async stream (``aimap``, ``amap``)."""
    allowed = budget.allowed(total, label)
    failed: list[tuple[int, ItemError]] = []
    finished = 0
    try:
        async for index, row in pairs:
            finished += 1
            error = item_failure(row)
            if error is not None:
                failed.append((index, error))
                if len(failed) > allowed:
                    raise _over_budget(failed, finished, total, budget, label)
            yield index, row
    finally:
        close = getattr(pairs, "aclose", None)
        if close is not None:
            await close()


def _over_budget(
    failed: list[tuple[int, ItemError]],
    finished: int,
    total: int | None,
    budget: Budget,
    label: str,
) -> FailureBudgetError:
    failed.sort(key=lambda pair: pair[0])
    index, first = failed[0]
    of = f" of {total}" if total is not None else ""
    exc = first.exception
    return FailureBudgetError(
        f"{pipeline_phrase(label)}: the map stopped when {len(failed)} of {finished} finished "
        f"items{of} had failed, more than max_failures={budget.given!r} allows; first, item "
        f"{index} in node {first.node!r}: {type(exc).__name__}: {exc}. Fix the cause or raise "
        "max_failures; error.failures lists (index, ItemError). With a cache, the same map run "
        "again computes only the items that did not succeed",
        failed,
        finished,
    )


def collect(pairs: Iterable[tuple[int, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The rows of ``(index, row)`` pairs that came in any order, in index order."""
    by_index = dict(pairs)
    return [by_index[i] for i in range(len(by_index))]


def failures(
    rows: Iterable[Mapping[str, Any]] | Mapping[str, list[Any]],
) -> list[tuple[int, ItemError]]:
    """``(index, ItemError)`` for each failed item of a map's result (``on_error="continue"``).

    ``rows`` is what ``map`` returned: the list of rows, or the columns
    (``return_format="columns"``); each failed item is listed once, with the first error among
    its outputs.
    """
    if isinstance(rows, Mapping):
        columns = list(rows.values())
        names = list(rows)
        rows = [dict(zip(names, values)) for values in zip(*columns)] if columns else []
    found = []
    for index, row in enumerate(rows):
        error = item_failure(row)
        if error is not None:
            found.append((index, error))
    return found
