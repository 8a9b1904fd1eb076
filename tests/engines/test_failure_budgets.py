"""Failure budgets (``map(..., on_error="continue", max_failures=...)``), ``hypernodes.failures``
and re-running a map with a cache after some items failed, under every engine."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from engine_kinds import KINDS

from hypernodes import DiskCache, ItemError, Pipeline, failures, node
from hypernodes.exceptions import FailureBudgetError, MapError

pytestmark = pytest.mark.timeout(180)


@node(output_name="y")
def flaky(x: int, log: str, broken: str) -> int:
    """Logs each call to ``log``; fails for the x listed in the file ``broken`` (if it exists)."""
    with open(log, "a") as out:
        out.write(f"{x}\n")
    time.sleep(0.005)  # every item takes a moment, failing or not
    path = Path(broken)
    if path.exists() and str(x) in path.read_text().split():
        raise ConnectionError(f"item {x} is down")
    return x * 2


@node(output_name="z")
def plus_one(y: int) -> int:
    return y + 1


def calls(log: Path) -> list[int]:
    return sorted(int(line) for line in log.read_text().split()) if log.exists() else []


def setup(tmp_path: Path, bad: list[int]) -> dict[str, str]:
    broken = tmp_path / "broken"
    broken.write_text(" ".join(map(str, bad)))
    return {"log": str(tmp_path / "log"), "broken": str(broken)}


@pytest.mark.parametrize("kind", KINDS)
def test_within_the_budget_the_map_returns_its_rows(engine, kind, tmp_path):
    files = setup(tmp_path, [1, 4])
    pipeline = Pipeline([flaky, plus_one], engine=engine, name="budget")
    rows = pipeline.map(
        {"x": list(range(8)), **files}, map_over="x", on_error="continue", max_failures=2
    )
    assert [index for index, _ in failures(rows)] == [1, 4]
    assert all(isinstance(error, ItemError) for _, error in failures(rows))
    assert [row["z"] for row in rows if not failures([row])] == [1, 5, 7, 11, 13, 15]
    columns = pipeline.map(
        {"x": list(range(8)), **files},
        map_over="x",
        on_error="continue",
        max_failures=0.25,
        return_format="columns",
    )
    assert [index for index, _ in failures(columns)] == [1, 4]


@pytest.mark.parametrize("kind", KINDS)
def test_over_the_budget_the_map_stops(engine, kind, tmp_path):
    items = list(range(120))
    files = setup(tmp_path, items)  # every item fails
    pipeline = Pipeline([flaky, plus_one], engine=engine, name="budget")
    with pytest.raises(FailureBudgetError) as info:
        pipeline.map({"x": items, **files}, map_over="x", on_error="continue", max_failures=3)
    error = info.value
    assert len(error.failures) == 4 and error.finished >= 4
    assert all(isinstance(e, ItemError) and e.index == i for i, e in error.failures)
    assert "more than max_failures=3 allows" in str(error)
    assert "ConnectionError: item" in str(error)
    if kind != "daft":  # a Daft partition runs whole: the budget is counted on its rows
        assert len(calls(Path(files["log"]))) < len(items)  # the rest never started


@pytest.mark.parametrize("kind", KINDS)
def test_running_again_with_a_cache_recomputes_only_the_failed_items(engine, kind, tmp_path):
    files = setup(tmp_path, [2, 5])
    log = Path(files["log"])
    pipeline = Pipeline(
        [flaky, plus_one], engine=engine, cache=DiskCache(tmp_path / "cache"), name="rerun"
    )
    inputs = {"x": list(range(7)), **files}
    first = pipeline.map(inputs, map_over="x", on_error="continue", max_failures=2)
    assert [i for i, _ in failures(first)] == [2, 5]
    assert calls(log) == list(range(7))
    Path(files["broken"]).write_text("")  # the service is back
    second = pipeline.map(inputs, map_over="x", on_error="continue")
    assert failures(second) == []
    assert [row["z"] for row in second] == [2 * x + 1 for x in range(7)]
    assert calls(log) == sorted([*range(7), 2, 5])  # only the failed items ran again


def test_imap_with_a_budget_yields_until_it_is_spent(tmp_path):
    files = setup(tmp_path, [3, 4])
    pipeline = Pipeline([flaky], name="stream")
    seen = []
    with pytest.raises(FailureBudgetError) as info:
        for index, _row in pipeline.imap(
            {"x": iter(range(10)), **files}, map_over="x", on_error="continue", max_failures=1
        ):
            seen.append(index)
    assert seen == [0, 1, 2, 3]  # item 4 is the second failure: raised instead of yielded
    assert [i for i, _ in info.value.failures] == [3, 4]
    assert calls(Path(files["log"])) == [0, 1, 2, 3, 4]


def test_budget_arguments_are_checked(tmp_path):
    pipeline = Pipeline([flaky])
    inputs = {"x": [1], **setup(tmp_path, [])}
    with pytest.raises(MapError, match="needs on_error='continue'"):
        pipeline.map(inputs, map_over="x", max_failures=1)
    for bad in (-1, 1.5, 0.0, "5", True):
        with pytest.raises(MapError, match="max_failures"):
            pipeline.map(inputs, map_over="x", on_error="continue", max_failures=bad)
    with pytest.raises(MapError, match="unknown length"):
        list(
            pipeline.imap(
                {**inputs, "x": iter([1])}, map_over="x", on_error="continue", max_failures=0.1
            )
        )
    assert pipeline.map(inputs, map_over="x", on_error="continue", max_failures=0) == [{"y": 2}]


def test_failures_of_an_empty_map_and_of_clean_rows():
    assert failures([]) == [] and failures({}) == [] and failures([{"y": 1}]) == []


@pytest.mark.parametrize("kind", ["sequential", "threaded", "async", "parallel"])
def test_amap_with_a_budget_on_an_event_loop(engine, kind, tmp_path):
    import asyncio

    items = list(range(60))
    files = setup(tmp_path, items)  # every item fails
    pipeline = Pipeline([flaky], engine=engine, name="on_loop")

    async def main() -> None:
        with pytest.raises(FailureBudgetError) as info:
            await pipeline.amap(
                {"x": items, **files}, map_over="x", on_error="continue", max_failures=2
            )
        assert len(info.value.failures) == 3
        fine = setup(tmp_path, [5])
        rows = await pipeline.amap(
            {"x": items, **fine}, map_over="x", on_error="continue", max_failures=0.1
        )
        assert [i for i, _ in failures(rows)] == [5]

    asyncio.run(main())
