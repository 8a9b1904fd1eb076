"""The parts every layer is made of: the :class:`Layer` base of *around* layers, the
:class:`Entry` that registers a layer, and how around layers are composed around a step."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from ..context import RunContext
    from ..step import Step

#: returned by a layer's ``before`` when the step must not run (its outputs are already there)
SKIP: Any = object()

Runner = Callable[[dict[str, Any], "RunContext"], None]
AsyncRunner = Callable[[dict[str, Any], "RunContext"], Awaitable[None]]


#: where a layer sits: around the node's function (``call``), around the step's runner
#: (``runner``), both built in when the plan is compiled from the node's options; or ``around``
#: the step for each kind of context (cache, callbacks), composed on first use
Kind = Literal["call", "runner", "around"]


@dataclass(frozen=True, slots=True)
class Entry:
    """How one layer registers: its name, where it sits, and when and how it wraps a step.

    ``call`` and ``runner`` layers: ``wanted(node)`` says whether the node needs the layer, and
    ``wrap(fn, node)`` / ``awrap(fn, node)`` return ``fn`` wrapped (the sync function or runner,
    and its ``async def`` twin).  ``around`` layers: ``field`` names the
    :class:`~hypernodes.execution.context.RunContext` attribute that turns the layer on when it is
    not None, and ``make(plan)`` returns the :class:`Layer` for a plan.
    """

    name: str
    kind: Kind
    wanted: Callable[[Any], bool] | None = None
    wrap: Callable[[Any, Any], Any] | None = None
    awrap: Callable[[Any, Any], Any] | None = None
    field: str = ""
    make: Callable[[Any], Layer] | None = None


class Layer:
    """An around layer: parts called before a step, after it, on its error, or when skipped."""

    def before(self, step: Step, values: dict[str, Any], ctx: RunContext) -> Any:
        """Called before the step; the return value is handed to ``after``/``error``."""
        return None

    def after(self, step: Step, values: dict[str, Any], ctx: RunContext, token: Any) -> None:
        """Called after the step stored its outputs in ``values``."""

    def error(
        self, step: Step, values: dict[str, Any], ctx: RunContext, token: Any, exc: BaseException
    ) -> None:
        """Called when the step raised ``exc`` (which is raised on afterwards); also for
        ``KeyboardInterrupt`` and the like, so a layer can release what it holds."""

    def skipped(self, step: Step, values: dict[str, Any], ctx: RunContext) -> None:
        """Called when an earlier layer's ``before`` returned :data:`SKIP`."""

    def wrap(self, step: Step, call: Runner) -> Runner:
        """The runner of ``step`` with this layer alone around ``call``.  Layers may override
        it with a faster path that behaves the same."""
        before, after, error = self.before, self.after, self.error

        def run(values: dict[str, Any], ctx: RunContext) -> None:
            token = before(step, values, ctx)
            if token is SKIP:
                return
            try:
                call(values, ctx)
            except BaseException as exc:
                error(step, values, ctx, token, exc)
                raise
            after(step, values, ctx, token)

        return run


def compose(step: Step, layers: Sequence[Layer]) -> Runner:
    """The runner of ``step`` with ``layers`` around its call (outermost first)."""
    call = step.run
    if not layers:
        return call
    layers = tuple(layers)
    if len(layers) == 1:
        return layers[0].wrap(step, call)

    def run(values: dict[str, Any], ctx: RunContext) -> None:
        tokens = run_before(layers, step, values, ctx)
        if tokens is None:
            return
        try:
            call(values, ctx)
        except BaseException as exc:
            run_error(layers, tokens, step, values, ctx, exc)
            raise
        run_after(layers, tokens, step, values, ctx)

    return run


def acompose(step: Step, layers: Sequence[Layer]) -> AsyncRunner:
    """:func:`compose` for an ``async def`` step: the call is awaited on the running loop."""
    call = step.arun
    assert call is not None
    layers = tuple(layers)

    async def arun(values: dict[str, Any], ctx: RunContext) -> None:
        tokens = run_before(layers, step, values, ctx)
        if tokens is None:
            return
        try:
            await call(values, ctx)
        except BaseException as exc:
            run_error(layers, tokens, step, values, ctx, exc)
            raise
        run_after(layers, tokens, step, values, ctx)

    return arun


def run_before(
    layers: tuple[Layer, ...], step: Step, values: dict[str, Any], ctx: RunContext
) -> list[Any] | None:
    tokens: list[Any] = []
    for i, layer in enumerate(layers):
        token = layer.before(step, values, ctx)
        if token is SKIP:
            for rest in layers[i + 1 :]:
                rest.skipped(step, values, ctx)
            return None
        tokens.append(token)
    return tokens


def run_after(
    layers: tuple[Layer, ...],
    tokens: list[Any],
    step: Step,
    values: dict[str, Any],
    ctx: RunContext,
) -> None:
    # Outermost first: the cache (outside the events layer) stores a step's outputs before
    # callbacks see them, so a callback that mutates ``outputs`` cannot change what is stored.
    for i, layer in enumerate(layers):
        layer.after(step, values, ctx, tokens[i])


def run_error(
    layers: tuple[Layer, ...],
    tokens: list[Any],
    step: Step,
    values: dict[str, Any],
    ctx: RunContext,
    exc: BaseException,
) -> None:
    for i in range(len(layers) - 1, -1, -1):
        layers[i].error(step, values, ctx, tokens[i], exc)
