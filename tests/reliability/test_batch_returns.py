"""A batch node's return must give one value per item, in item order (issue 23).

A set (no order: rows were assigned in set order, silently wrong) and a DataFrame (its
iteration yields column names; ``KeyError`` before) are refused naming the node, like a list of
the wrong length; an ordered sequence of the right length is read by position (a Series with
an index that is not ``0..n-1`` included).
"""

from __future__ import annotations

import pandas as pd
import pytest

from hypernodes import HypernodesEngine, Pipeline, node
from hypernodes.exceptions import HyperNodesError, OutputShapeError

pytestmark = pytest.mark.timeout(120)


@node(output_name="y", batch=True)
def as_set(x: list[int]) -> set[int]:
    return {v * 10 for v in x}


@node(output_name="y", batch=True)
def as_frame(x: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"y": [v * 10 for v in x]})


@node(output_name="y", batch=True)
def too_short(x: list[int]) -> list[int]:
    return [v * 10 for v in x][:-1]


@node(output_name="y", batch=True)
def as_series(x: list[int]) -> pd.Series:
    return pd.Series([v * 10 for v in x], index=[100 + i for i in range(len(x))])


@node(output_name=("a", "b"), batch=True)
def pair_with_set(x: list[int]) -> tuple[list[int], set[int]]:
    return [v for v in x], {v for v in x}


ITEMS = [3, 1, 2, 9, 7]


@pytest.mark.parametrize(
    ("fn", "says"),
    [
        (as_set, "returned set of length 5; a set has no order"),
        (as_frame, "returned DataFrame of length 5; a table cannot be split into items"),
        (too_short, "returned list of length 4; return a list with one value per item"),
        (pair_with_set, "output '#1' of batch node 'pair_with_set' got 5 item(s) but returned set"),
    ],
    ids=["set", "dataframe", "short", "tuple-with-set"],
)
@pytest.mark.parametrize("executor", ["sequential", "threaded"])
def test_an_unordered_or_wrong_length_batch_return_is_refused(fn, says, executor):
    with (
        HypernodesEngine(map_executor=executor) as engine,
        pytest.raises(OutputShapeError, match=f"batch node '{fn.name}'") as info,
    ):
        Pipeline([fn], engine=engine).map({"x": ITEMS}, map_over="x")
    assert says in str(info.value)
    assert isinstance(info.value, HyperNodesError)


@pytest.mark.parametrize("fn", [as_set, as_frame], ids=["set", "dataframe"])
def test_one_run_of_a_batch_only_node_is_checked_too(fn):
    with pytest.raises(OutputShapeError, match=f"batch node '{fn.name}' got 1 item"):
        Pipeline([fn]).run({"x": 4})


def test_a_series_is_read_by_position_not_by_its_index():
    rows = Pipeline([as_series]).map({"x": ITEMS}, map_over="x")
    assert [row["y"] for row in rows] == [30, 10, 20, 90, 70]
    assert Pipeline([as_series]).run({"x": 4}) == {"y": 40}
