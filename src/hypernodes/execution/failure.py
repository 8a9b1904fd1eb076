"""Where a node error happened: recorded on the exception as it unwinds (the innermost place
wins), written once as a PEP 678 note by the public entry point.

Every loop that runs steps calls :func:`locate_failure` when a step raises and
:func:`mark_item` when a map item fails; the note then reads ``hypernodes: raised by node 'f'
of pipeline outer[item 2] > inner[item 0]; inputs: x=1``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..cache.base import CacheTimeout
from ..exceptions import UNNAMED, OutputCheckError
from ..model.checks import unfinished_inputs_note

if TYPE_CHECKING:
    from .context import RunContext
    from .plan import Plan
    from .step import Step


_WHERE = "__hypernodes_where__"


class _Where:
    __slots__ = ("node", "path", "items", "noted", "inputs")

    def __init__(self, node: str | None, path: tuple[str, ...]) -> None:
        self.node = node
        self.path = path
        self.items: dict[int, int] = {}
        self.noted = False
        #: the failing step's inputs by name (None when unknown)
        self.inputs: dict[str, Any] | None = None

    def __getstate__(self) -> dict[str, Any]:
        # An error travels back from a worker process with its place; inputs that cannot travel
        # (a coroutine, a lock) go as their reprs rather than losing the whole error.
        state = {name: getattr(self, name) for name in self.__slots__}
        if self.inputs:
            import cloudpickle

            try:
                cloudpickle.dumps(self.inputs)
            except Exception:
                state["inputs"] = {k: _Shown(_short(v)) for k, v in self.inputs.items()}
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
    try:
        setattr(exc, _WHERE, where)
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
