"""Where a node error happened: recorded on the exception as it unwinds (the innermost place
wins), written once as a PEP 678 note by the public entry point.

Every loop that runs steps calls :func:`locate_failure` when a step raises and
:func:`mark_item` when a map item fails; the note then reads ``hypernodes: raised by node 'f'
of pipeline outer[item 2] > inner[item 0]; inputs: x=1``.
"""

from __future__ import annotations

import inspect
import sys
from typing import TYPE_CHECKING, Any

from ..cache.base import CacheTimeout
from ..exceptions import UNNAMED, HyperNodesError, OutputCheckError
from ..model.checks import unfinished_inputs_note
from ..model.node import Node
from ..model.resources import Resource
from .aio import run_sync

if TYPE_CHECKING:
    from .context import RunContext
    from .plan import Plan
    from .step import Step


_WHERE = "__hypernodes_where__"


class _Where:
    __slots__ = ("node", "path", "items", "noted", "inputs", "callee")

    def __init__(self, node: str | None, path: tuple[str, ...]) -> None:
        self.node = node
        self.path = path
        self.items: dict[int, int] = {}
        self.noted = False
        #: the failing step's inputs by name (None when unknown)
        self.inputs: dict[str, Any] | None = None
        #: the failing node (a Node, to call again), or None
        self.callee: Any = None

    def __getstate__(self) -> dict[str, Any]:
        # An error travels back from a worker process with its place; inputs that cannot travel
        # (a coroutine, a lock) go as their reprs rather than losing the whole error, and a node
        # that cannot travel is left out (the snapshot then cannot reproduce).
        state = {name: getattr(self, name) for name in self.__slots__}
        import cloudpickle

        if self.inputs:
            try:
                cloudpickle.dumps(self.inputs)
            except Exception:
                state["inputs"] = {k: _Shown(_short(v)) for k, v in self.inputs.items()}
        if self.callee is not None:
            try:
                cloudpickle.dumps(self.callee)
            except Exception:
                state["callee"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)


class _Shown(str):
    """The repr of a value that could not be sent back from a worker (shown without quotes)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


def locate_failure(
    exc: BaseException,
    step: Step | None,
    ctx: RunContext,
    plan: Plan | None = None,
    values: dict[str, Any] | None = None,
) -> None:
    """Record on ``exc`` the node that raised it, its inputs and the pipeline path, once (the
    innermost place wins).

    Given the ``plan`` and the item's ``values``, also note when the step read a coroutine (or
    generator) that another node returned instead of a value (a function not ``async def``).
    """
    if getattr(exc, _WHERE, None) is not None or isinstance(exc, CacheTimeout):
        return  # a busy cache is not the node's doing: its own message says what happened
    where = _Where(step.name if step is not None else None, ctx.path)
    if step is not None and values is not None:
        where.inputs = step_inputs(step, values)
    if step is not None and isinstance(step.node, Node):
        where.callee = step.node
    try:
        setattr(exc, _WHERE, where)
        setattr(exc, SNAPSHOT, ErrorSnapshot(where))
    except (AttributeError, TypeError):  # an exception type that takes no attributes
        exc.add_note(describe(where))
    if plan is not None and values is not None and step is not None:
        note = unfinished_inputs_note(plan.steps, step.name, step.arg_keys, values)
        if note is not None:
            exc.add_note(note)


def step_inputs(step: Step, values: dict[str, Any]) -> dict[str, Any]:
    """What ``step`` was called with, by the node's input names (for error notes)."""
    return step.inputs(values)


def failure_inputs(exc: BaseException) -> dict[str, Any] | None:
    """The inputs of the node that raised ``exc``, if recorded."""
    where = getattr(exc, _WHERE, None)
    return where.inputs if where is not None else None


def mark_item(exc: BaseException, depth: int, index: int) -> None:
    """Record that ``exc`` happened in map item ``index`` of the pipeline at ``depth``."""
    where = getattr(exc, _WHERE, None)
    if where is not None:
        where.items.setdefault(depth, index)
    if isinstance(exc, OutputCheckError) and exc.item is None:  # the innermost map's item
        exc.item = index


def add_failure_note(exc: BaseException) -> None:
    """Write the recorded location as a PEP 678 note (called once, by the public entry point)."""
    where = getattr(exc, _WHERE, None)
    if where is not None and not where.noted:
        where.noted = True
        exc.add_note(describe(where))


#: the attribute of a node's exception that holds its :class:`ErrorSnapshot`
SNAPSHOT = "hypernodes_snapshot"


class ErrorSnapshot:
    """Where a node failed and with what: ``err.hypernodes_snapshot`` on the node's exception
    (and ``ItemError.snapshot``), to look at the failure and call the node again by hand.

    ``node`` is the node's name, ``path`` the pipelines from the outermost in, ``items`` the map
    item at each of those levels (None where the level was not a map item), ``item`` the
    innermost map item, ``inputs`` the values the node was called with, by input name.
    :meth:`reproduce` calls the node's own function with them, in this process.
    """

    __slots__ = ("_where",)

    def __init__(self, where: _Where) -> None:
        self._where = where

    @property
    def node(self) -> str | None:
        return self._where.node

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(self._where.path)

    @property
    def items(self) -> tuple[int | None, ...]:
        found = self._where.items
        return tuple(found.get(depth) for depth in range(len(self._where.path)))

    @property
    def item(self) -> int | None:
        known = [index for index in self.items if index is not None]
        return known[-1] if known else None

    @property
    def inputs(self) -> dict[str, Any]:
        return dict(self._where.inputs or {})

    def reproduce(self) -> Any:
        """Call the failing node's function again with :attr:`inputs` (resources built here,
        an ``async def`` run to completion) and return what it returns, or let it raise: put a
        breakpoint in the function, or run this under a debugger, to step through the failure.
        """
        node = self._where.callee
        if node is None or self._where.inputs is None:
            raise HyperNodesError(
                f"this failure of {self._where.node or 'a step'!r} cannot be reproduced: its node "
                "or its inputs were not recorded (a nested pipeline's own step, or values that "
                "could not come back from a worker process); see the note on the error instead"
            )
        return call_again(own_node(node), self._where.inputs)

    def __reduce__(self) -> tuple[Any, ...]:
        return (ErrorSnapshot, (self._where,))

    def __repr__(self) -> str:
        return f"ErrorSnapshot({describe(self._where).removeprefix('hypernodes: raised by ')})"


def own_node(node: Node) -> Node:
    """This process's own copy of ``node``: a node that failed in a worker comes back with the
    error as a copy (its module travelled by value), whose function's globals are not the ones
    of the module here.  The node of the same module, name and code is the user's own, so a
    breakpoint set in it, or module state it reads, is the one the user sees."""
    module = sys.modules.get(getattr(node, "__module__", None) or "")
    found: Any = module
    for part in (getattr(node, "__qualname__", "") or "<locals>").split("."):
        found = getattr(found, part, None)
    if (
        isinstance(found, Node)
        and found is not node
        and found.name == node.name
        and getattr(found.func, "__code__", None) == getattr(node.func, "__code__", False)
    ):
        return found
    return node


def call_again(node: Node, inputs: dict[str, Any]) -> Any:
    """``node``'s own function called with ``inputs`` (by input name), as the pipeline did."""
    by_input = dict(zip(node.inputs, node.parameters))
    kwargs = {}
    for name, value in inputs.items():
        if isinstance(value, Resource):
            value = value.get()
        kwargs[by_input.get(name, name)] = value if node.per_item else [value]
    result = node.__wrapped__(**kwargs)
    if inspect.isawaitable(result):
        result = run_sync(result)
    return result


def describe(where: _Where) -> str:
    """``node 'f' of pipeline outer[item 2] > inner[item 0]; inputs: x=1``: where a node error
    happened, and with what (each value's repr cut to about 100 characters)."""
    parts = [
        f"{name}[item {where.items[depth]}]" if depth in where.items else name
        for depth, name in enumerate(where.path)
    ]
    node = f"node {where.node!r}" if where.node else "a step"
    if (
        where.path and where.path[0] == UNNAMED
    ):  # "of the pipeline[item 3]", not "pipeline pipeline"
        text = f"hypernodes: raised by {node} of the {' > '.join(parts)}"
    else:
        text = f"hypernodes: raised by {node} of pipeline {' > '.join(parts)}"
    if where.inputs:
        text += "; inputs: " + ", ".join(f"{k}={_short(v)}" for k, v in where.inputs.items())
    return text


def _short(value: Any, limit: int = 100) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # a repr that raises must not hide the real error
        text = f"<{type(value).__name__}: repr failed: {exc}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
