"""``ItemError``: what a map with ``on_error="continue"`` returns in place of an output it could
not compute."""

from __future__ import annotations

from typing import Any, NoReturn

from ..exceptions import HyperNodesError


class ItemError:
    """Stands in for the outputs of a map item that a node failed to produce.

    With ``pipeline.map(..., on_error="continue")`` every item is attempted.  When a node raises,
    each output of that item that depends on it holds an ``ItemError`` (the same object for all of
    them); outputs that do not depend on it, and all other items, hold their values.  An
    ``ItemError`` is falsy, so ``[row for row in rows if all(row.values())]`` keeps the clean rows
    (as long as no real output is falsy); ``isinstance(value, ItemError)`` is the exact test.
    """

    __slots__ = ("exception", "node", "index", "inputs")

    def __init__(
        self,
        exception: BaseException,
        node: str | None,
        index: int,
        inputs: dict[str, Any] | None = None,
    ) -> None:
        #: the exception the node raised (with a note naming node, pipeline and item)
        self.exception = exception
        #: the name of the node that raised
        self.node = node
        #: the position of the item in the map's input
        self.index = index
        #: what the failing node was called with, by input name, to re-run it by hand
        #: (``node_function(**error.inputs)``); None where it is not known (a crashed worker)
        self.inputs = inputs

    def __bool__(self) -> bool:
        return False

    @property
    def snapshot(self) -> Any:
        """The :class:`~hypernodes.execution.failure.ErrorSnapshot` of the failure (node,
        pipeline path, item, inputs), or None when the error came from no node (a crashed
        worker)."""
        return getattr(self.exception, "hypernodes_snapshot", None)

    def reproduce(self) -> Any:
        """Call the failing node's function again with its inputs, here (see
        :meth:`ErrorSnapshot.reproduce <hypernodes.execution.failure.ErrorSnapshot.reproduce>`)."""
        snapshot = self.snapshot
        if snapshot is None:
            raise HyperNodesError(
                f"item {self.index} failed outside any node ({type(self.exception).__name__}); "
                "there is no node call to reproduce"
            )
        return snapshot.reproduce()

    def reraise(self) -> NoReturn:
        """Raise the original exception."""
        raise self.exception

    def __reduce__(self) -> tuple[object, ...]:
        return (ItemError, (self.exception, self.node, self.index, self.inputs))

    def __repr__(self) -> str:
        exc = self.exception
        return f"ItemError(item={self.index}, node={self.node!r}, {type(exc).__name__}: {exc})"
