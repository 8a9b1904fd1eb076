"""Pipelines and cases shared by the engine tests.

The nodes live at module level in an importable module so that worker processes of
``map_executor="parallel"`` import them by reference, as they would a user's module.  Each case
builds its pipelines on the engine it is given and returns what the engine computed; ``expected``
computes the same answer in plain Python, without HypernodesEngine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from hypernodes import HypernodesEngine, ItemError, Pipeline, node

# ---------------------------------------------------------------------------------------------
# Nodes


@node(output_name="a")
def add_one(x: int) -> int:
    return x + 1


@node(output_name="b")
def double(a: int) -> int:
    return a * 2


@node(output_name="c")
def minus_three(b: int) -> int:
    return b - 3


@node(output_name="left")
def left(x: int) -> int:
    return x * 10


@node(output_name="right")
def right(x: int, offset: int = 5) -> int:
    return x + offset


@node(output_name="joined")
def join(left: int, right: int) -> tuple[int, int]:
    return (left, right)


@node(output_name=("q", "r"))
def split(x: int) -> tuple[int, int]:
    return divmod(x, 3)


@node(output_name="qr")
def recombine(q: int, r: int) -> int:
    return q * 3 + r


@node(output_name="sq")
async def async_square(x: int) -> int:
    await asyncio.sleep(0)
    return x * x


@node(output_name="sq_plus")
def sync_after_async(sq: int, a: int) -> int:
    return sq + a


@node(output_name=("lo", "hi"))
async def async_bounds(x: int) -> tuple[int, int]:
    await asyncio.sleep(0)
    return (x - 1, x + 1)


@node(output_name="picky")
def picky(x: int) -> int:
    """Fails for multiples of 4 (other than 0)."""
    if x and x % 4 == 0:
        raise ValueError(f"no multiples of four: {x}")
    return x


@node(output_name="after_picky")
def after_picky(picky: int) -> int:
    return picky + 100


@node(output_name="independent")
def independent(x: int) -> int:
    return -x


@node(output_name="xs")
def neighbours(x: int) -> list[int]:
    return [x, x + 1, x + 2]


@node(output_name="total")
def total(ys: list[int]) -> int:
    return sum(ys)


@node(output_name="y")
def triple(v: int) -> int:
    return v * 3


@node(output_name="label")
def label(a: int, b: int) -> str:
    return f"{a}-{b}"


# ---------------------------------------------------------------------------------------------
# Cases


@dataclass(frozen=True)
class Case:
    """One behaviour every engine must reproduce exactly.

    ``run(engine, **options)`` passes ``options`` (``callbacks``, ``cache``) to the case's
    outermost pipeline; the pipelines nested in it inherit them.
    """

    name: str
    run: Callable[..., Any]
    expected: Callable[[], Any]


XS = list(range(9))


def _chain(engine: Any, **options: Any) -> Any:
    return Pipeline([add_one, double, minus_three], engine=engine, **options).map(
        {"x": XS}, map_over="x"
    )


def _chain_expected() -> Any:
    return [{"a": x + 1, "b": (x + 1) * 2, "c": (x + 1) * 2 - 3} for x in XS]


def _diamond(engine: Any, **options: Any) -> Any:
    pipeline = Pipeline([left, right, join], engine=engine, **options)
    return {
        "map": pipeline.map({"x": XS, "offset": 7}, map_over="x"),
        "run": pipeline.run({"x": 4}),
        "pruned": pipeline.run({"x": 4}, output_name="right"),
    }


def _diamond_expected() -> Any:
    return {
        "map": [{"left": x * 10, "right": x + 7, "joined": (x * 10, x + 7)} for x in XS],
        "run": {"left": 40, "right": 9, "joined": (40, 9)},
        "pruned": {"right": 9},
    }


def _tuple_outputs(engine: Any, **options: Any) -> Any:
    pipeline = Pipeline([split, recombine, async_bounds], engine=engine, **options)
    return pipeline.map({"x": XS}, map_over="x", return_format="columns")


def _tuple_outputs_expected() -> Any:
    return {
        "q": [x // 3 for x in XS],
        "r": [x % 3 for x in XS],
        "qr": XS,
        "lo": [x - 1 for x in XS],
        "hi": [x + 1 for x in XS],
    }


def _async_nodes(engine: Any, **options: Any) -> Any:
    pipeline = Pipeline([add_one, async_square, sync_after_async], engine=engine, **options)
    return {"map": pipeline.map({"x": XS}, map_over="x"), "run": pipeline.run({"x": 3})}


def _async_nodes_expected() -> Any:
    return {
        "map": [{"a": x + 1, "sq": x * x, "sq_plus": x * x + x + 1} for x in XS],
        "run": {"a": 4, "sq": 9, "sq_plus": 13},
    }


def _inner() -> Pipeline:
    return Pipeline([triple], name="inner")


def _nested_map_over(engine: Any, **options: Any) -> Any:
    inner = _inner().as_node(input_mapping={"xs": "v"}, output_mapping={"y": "ys"}, map_over="xs")
    outer = Pipeline([neighbours, inner, total], engine=engine, name="outer", **options)
    return outer.map({"x": XS}, map_over="x")


def _nested_map_over_expected() -> Any:
    return [
        {"xs": [x, x + 1, x + 2], "ys": [3 * x, 3 * x + 3, 3 * x + 6], "total": 9 * x + 9}
        for x in XS
    ]


def _nested_twice(engine: Any, **options: Any) -> Any:
    middle = Pipeline([add_one, double], name="middle")
    outer = Pipeline([middle, minus_three, label], engine=engine, name="outer")
    wrapper = Pipeline([outer.as_node(name="wrapped")], engine=engine, name="wrapper", **options)
    return wrapper.map({"x": XS}, map_over="x", output_name=["c", "label"])


def _nested_twice_expected() -> Any:
    return [{"c": (x + 1) * 2 - 3, "label": f"{x + 1}-{(x + 1) * 2}"} for x in XS]


def _empty(engine: Any, **options: Any) -> Any:
    pipeline = Pipeline([add_one, double], engine=engine, **options)
    return {
        "list": pipeline.map({"x": []}, map_over="x"),
        "columns": pipeline.map({"x": []}, map_over="x", return_format="columns"),
    }


def _empty_expected() -> Any:
    return {"list": [], "columns": {"a": [], "b": []}}


def _product(engine: Any, **options: Any) -> Any:
    pipeline = Pipeline([label], engine=engine, **options)
    return pipeline.map({"a": [1, 2, 3], "b": [10, 20]}, map_over=["a", "b"], map_mode="product")


def _product_expected() -> Any:
    return [{"label": f"{a}-{b}"} for a in [1, 2, 3] for b in [10, 20]]


def _zip_two(engine: Any, **options: Any) -> Any:
    pipeline = Pipeline([label], engine=engine, **options)
    return pipeline.map({"a": (1, 2, 3), "b": range(10, 13)}, map_over=["a", "b"])


def _zip_two_expected() -> Any:
    return [{"label": f"{a}-{b}"} for a, b in zip([1, 2, 3], [10, 11, 12])]


def _continue(engine: Any, **options: Any) -> Any:
    pipeline = Pipeline([picky, after_picky, independent], engine=engine, name="picky", **options)
    rows = pipeline.map({"x": XS}, map_over="x", on_error="continue")
    return [
        {
            name: (("error", value.node, value.index, type(value.exception).__name__))
            if isinstance(value, ItemError)
            else value
            for name, value in row.items()
        }
        for row in rows
    ]


def _continue_expected() -> Any:
    rows = []
    for i, x in enumerate(XS):
        if x and x % 4 == 0:
            error = ("error", "picky", i, "ValueError")
            rows.append({"picky": error, "after_picky": error, "independent": -x})
        else:
            rows.append({"picky": x, "after_picky": x + 100, "independent": -x})
    return rows


def _raise(engine: Any, **options: Any) -> Any:
    pipeline = Pipeline([picky, after_picky], engine=engine, name="picky", **options)
    try:
        pipeline.map({"x": XS}, map_over="x")
    except ValueError as exc:
        return (str(exc), list(getattr(exc, "__notes__", [])))
    return "no error"


def _raise_expected() -> Any:
    # Items 4 and 8 both fail; the first one is raised, as a sequential run would.
    return (
        "no multiples of four: 4",
        ["hypernodes: raised by node 'picky' of pipeline picky[item 4]; inputs: x=4"],
    )


def _nested_raise(engine: Any, **options: Any) -> Any:
    inner = Pipeline([picky], name="inner").as_node(
        input_mapping={"xs": "x"}, output_mapping={"picky": "checked"}, map_over="xs"
    )
    outer = Pipeline([neighbours, inner], engine=engine, name="outer", **options)
    try:
        outer.map({"x": [0, 7, 2]}, map_over="x")
    except ValueError as exc:
        return (str(exc), list(getattr(exc, "__notes__", [])))
    return "no error"


def _nested_raise_expected() -> Any:
    # item 1 of the outer map has xs = [7, 8, 9]: inner item 1 (x=8) fails.
    return (
        "no multiples of four: 8",
        [
            "hypernodes: raised by node 'picky' of pipeline outer[item 1] > inner[item 1]; inputs: x=8"
        ],
    )


CASES = [
    Case("chain", _chain, _chain_expected),
    Case("diamond", _diamond, _diamond_expected),
    Case("tuple_outputs", _tuple_outputs, _tuple_outputs_expected),
    Case("async_nodes", _async_nodes, _async_nodes_expected),
    Case("nested_map_over", _nested_map_over, _nested_map_over_expected),
    Case("nested_twice", _nested_twice, _nested_twice_expected),
    Case("empty", _empty, _empty_expected),
    Case("product", _product, _product_expected),
    Case("zip_two", _zip_two, _zip_two_expected),
    Case("on_error_continue", _continue, _continue_expected),
    Case("on_error_raise", _raise, _raise_expected),
    Case("nested_raise", _nested_raise, _nested_raise_expected),
]

# ---------------------------------------------------------------------------------------------
# Engines

NODE_EXECUTORS = ("sequential", "threaded", "async", "custom")
MAP_EXECUTORS = ("sequential", "threaded", "async", "parallel", "custom")


def make_engine(node_executor: str, map_executor: str, user_pool: ThreadPoolExecutor) -> Any:
    """An engine for a pair of executor names; ``"custom"`` means the user's own thread pool."""
    return HypernodesEngine(
        node_executor=user_pool if node_executor == "custom" else node_executor,
        map_executor=user_pool if map_executor == "custom" else map_executor,
        max_workers=2 if map_executor == "parallel" else None,
    )
