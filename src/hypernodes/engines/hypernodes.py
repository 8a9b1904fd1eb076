"""``HypernodesEngine``: runs plans in this process, choosing how nodes and map items are scheduled."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..context import RunContext
from ..exceptions import ExecutorError
from ..plan import Plan, run_items

EXECUTORS = ("sequential",)


class HypernodesEngine:
    """The default engine.

    ``node_executor`` decides how the nodes of one item run, ``map_executor`` how the items of a
    ``map`` run.  ``"sequential"`` runs one thing at a time in the calling thread.
    """

    def __init__(
        self,
        node_executor: str = "sequential",
        map_executor: str = "sequential",
        max_workers: int | None = None,
    ) -> None:
        for role, value in (("node_executor", node_executor), ("map_executor", map_executor)):
            if value not in EXECUTORS:
                raise ExecutorError(
                    f"{role}={value!r} is not available; choose one of {list(EXECUTORS)}"
                )
        self.node_executor = node_executor
        self.map_executor = map_executor
        self.max_workers = max_workers

    def run(self, plan: Plan, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        """Run one item."""
        return plan.run_item(values, ctx)

    def map(
        self, plan: Plan, items: Iterable[dict[str, Any]], count: int, ctx: RunContext
    ) -> list[dict[str, Any]]:
        """Run every item, in order."""
        return run_items(plan, items, ctx)

    def shutdown(self, wait: bool = True) -> None:
        """Release workers (the sequential executor holds none)."""

    def __enter__(self) -> HypernodesEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        return (
            f"HypernodesEngine(node_executor={self.node_executor!r}, "
            f"map_executor={self.map_executor!r}, max_workers={self.max_workers!r})"
        )


_DEFAULT: HypernodesEngine | None = None


def default_engine() -> HypernodesEngine:
    """The shared sequential engine used by pipelines that set none."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = HypernodesEngine()
    return _DEFAULT
