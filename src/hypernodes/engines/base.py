"""The contract every engine meets: run one item of a plan, and map a plan over many items."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol, runtime_checkable

from ..exceptions import MapError, UnsupportedEngineError
from ..execution.context import RunContext
from ..execution.plan import Plan


def is_tolerant(on_error: str) -> bool:
    """Whether a map's ``on_error`` asks every item to be attempted (``"continue"``); raises
    :class:`~hypernodes.exceptions.MapError` for anything but ``"raise"``/``"continue"``."""
    if on_error not in ("raise", "continue"):
        raise MapError(f"on_error must be 'raise' or 'continue', got {on_error!r}")
    return on_error == "continue"


def engine_settings(engine: Any, cache: Any, callbacks: Any) -> tuple[Any, Any]:
    """The cache and callbacks of a top-level call on ``engine``: the pipeline's, else those the
    engine holds (0.4's ``SeqEngine(cache=, callbacks=)``); checks that every callback's
    ``supported_engines`` (0.4: a list of engine class names, None for all) names the engine."""
    if cache is None:
        cache = getattr(engine, "cache", None)
    if callbacks is None:
        callbacks = getattr(engine, "callbacks", None) or None
    for callback in callbacks or ():
        supported = getattr(callback, "supported_engines", None)
        if supported:
            names = {cls.__name__ for cls in type(engine).__mro__}
            if not names.intersection(supported):
                raise UnsupportedEngineError(
                    f"callback {type(callback).__name__} supports the engines "
                    f"{list(supported)}, not {type(engine).__name__}; run the pipeline on one "
                    "of those, or leave the callback out"
                )
    return cache, callbacks


@runtime_checkable
class Engine(Protocol):
    """Decides *how* the steps of a :class:`~hypernodes.execution.plan.Plan` and the items of a map run.

    An engine never validates or prunes: the pipeline hands it a compiled plan and seeded value
    dicts.  ``run`` returns the plan's outputs for one item; ``map`` returns them for every item,
    in input order.  Engines are context managers; ``shutdown`` releases what they started.

    ``map`` is called with ``on_error="continue"`` (a keyword) only when the user asked for it:
    every item is then attempted and outputs a failed node could not produce hold an
    :class:`~hypernodes.ItemError`.  ``count`` is None for a stream of unknown length.

    Optional, used when present (the pipeline falls back on ``map``/``run`` otherwise):

    - ``imap(plan, items, count, ctx, on_error, ordered)`` yields ``(index, row)`` as items
      finish, for ``Pipeline.imap``;
    - ``async arun(plan, values, ctx)`` and the async generator ``aimap(...)`` (``imap``'s
      arguments), for ``Pipeline.arun``/``amap``/``aimap`` on the caller's event loop.

    Engines whose items run in other processes build on :mod:`hypernodes.execution.remote`.
    """

    def run(self, plan: Plan, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        """The plan's outputs for one item, from its seeded ``values``; a node's exception
        propagates as its own type."""
        ...

    def map(
        self,
        plan: Plan,
        items: Iterable[dict[str, Any]],
        count: int | None,
        ctx: RunContext,
        on_error: str = "raise",
    ) -> list[dict[str, Any]]:
        """The plan's outputs for every item of ``items`` (``count`` of them, or None when
        unknown), in input order; with ``on_error="continue"`` failed outputs hold an
        :class:`~hypernodes.ItemError` instead of raising."""
        ...

    def shutdown(self, wait: bool = True) -> None:
        """Release what the engine started (threads, worker processes, a cluster); with
        ``wait`` until they are gone.  Using the engine again afterwards starts them anew."""
        ...


class ClusterEngine:
    """What the engines whose maps run on a cluster (Dask, Ray) share: one item (``run``) runs
    in this process on ``self._local`` (the maps nested in it are distributed), and ``map`` is
    ``imap`` collected in input order.  Subclasses set ``_local`` and define ``imap``."""

    _local: Any

    def run(self, plan: Plan, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        """Run one item in this process (the maps nested in it are distributed)."""
        result: dict[str, Any] = self._local.run(plan, values, ctx)
        return result

    def map(
        self,
        plan: Plan,
        items: Iterable[dict[str, Any]],
        count: int | None,
        ctx: RunContext,
        on_error: str = "raise",
    ) -> list[dict[str, Any]]:
        """Run every item on the cluster; rows in input order (see ``Pipeline.map``)."""
        return [row for _, row in self.imap(plan, items, count, ctx, on_error)]

    def imap(
        self,
        plan: Plan,
        items: Iterable[dict[str, Any]],
        count: int | None,
        ctx: RunContext,
        on_error: str = "raise",
        ordered: bool = True,
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(item index, row)`` pairs as the cluster returns them."""
        raise NotImplementedError
