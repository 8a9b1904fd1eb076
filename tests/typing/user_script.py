"""A user's script as type checkers see it: tests/test_typing.py runs it under ``mypy --strict``
and ``pyright`` (strict), compares every ``reveal_type`` with the type in its comment, and runs it.

The lines in ``mistakes()`` must be errors: each carries an ignore comment for its error code, and
both checkers fail on an ignore comment that silences nothing (mypy's ``warn_unused_ignores``,
pyright's ``reportUnnecessaryTypeIgnoreComment``), so a mistake that stops being flagged fails.
"""

from __future__ import annotations

import asyncio
from typing import Any, assert_type, reveal_type

from hypernodes import DiskCache, HypernodesEngine, MemoryCache, Node, Pipeline, node
from hypernodes.engines import DaftEngine, DaskEngine, Engine
from hypernodes.telemetry import ProgressCallback


@node(output_name="cleaned")
def clean(text: str) -> str:
    return text.strip().lower()


@node
def count(cleaned: str, minimum: int = 0) -> int:
    return max(minimum, len(cleaned.split()))


@node(output_name=("head", "rest"))
def split(cleaned: str) -> tuple[str, list[str]]:
    first, *others = cleaned.split()
    return first, others


reveal_type(clean)  # Node[(text: str), str]
reveal_type(clean("  Hello "))  # str
reveal_type(count("a b", minimum=1))  # int
reveal_type(clean.with_inputs(text="raw"))  # Node[(text: str), str]
assert_type(split("a b c"), tuple[str, list[str]])

engine = HypernodesEngine(map_executor="threaded")
pipeline = Pipeline(nodes=[clean, count, split], engine=engine, cache=MemoryCache())
reveal_type(pipeline.run(inputs={"text": " Hello big world "}))  # dict[str, Any]
reveal_type(pipeline(text="Hi"))  # dict[str, Any]

rows = pipeline.map(inputs={"text": ["a b", "c"]}, map_over="text", output_name="count")
reveal_type(rows)  # list[dict[str, Any]]
columns = pipeline.map({"text": ["a b", "c"]}, "text", output_name="count", return_format="columns")
reveal_type(columns)  # dict[str, list[Any]]
positional = pipeline.map({"text": ["a"]}, "text", "zip", None, "columns")
reveal_type(positional)  # dict[str, list[Any]]


async def main() -> dict[str, list[Any]]:
    listed = await pipeline.amap({"text": ["a b"]}, map_over="text")
    assert_type(listed, list[dict[str, Any]])
    return await pipeline.amap({"text": ["a b"]}, map_over="text", return_format="columns")


def mistakes() -> None:
    """Never called: what the checkers must refuse."""
    clean(3)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    count("a b", minimum="1")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    Pipeline(nodes=[clean], engine="threaded")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    Pipeline(nodes=[clean], cache=".cache")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    pipeline.with_engine("parallel")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    wrong: dict[str, list[Any]] = pipeline.map({"text": ["a"]}, "text")  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]
    pipeline.map({"text": ["a"]}, "text", return_format="rows")  # type: ignore[call-overload]  # pyright: ignore[reportCallIssue, reportArgumentType]
    print(wrong)


def typed_node(n: Node[[str], str]) -> str:
    return n("x")


def other_engines(path: str) -> list[Pipeline]:
    """Never called: every engine and cache is accepted where one is expected."""
    engines: list[Engine] = [DaskEngine(), DaftEngine(), HypernodesEngine(node_executor="async")]
    return [
        Pipeline(nodes=[clean], engine=e, cache=DiskCache(path), callbacks=[ProgressCallback()])
        for e in engines
    ]


if __name__ == "__main__":
    assert pipeline.run(inputs={"text": " Hello big world "})["count"] == 3
    assert rows == [{"count": 2}, {"count": 1}] and columns == {"count": [2, 1]}
    assert asyncio.run(main()) == {"cleaned": ["a b"], "count": [2], "head": ["a"], "rest": [["b"]]}
    assert typed_node(clean) == "x"
    print("ok")
