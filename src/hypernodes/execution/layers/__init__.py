"""Step layers: what wraps the call of one step - cache, callback events, retries, timeouts.

A step's runner is composed once per (plan, kind of context) from the layers that context needs,
so a run without cache and callbacks pays for nothing, and the sync and async paths share each
layer.  Two kinds of layer:

- *around* layers (:class:`Layer`: cache, events) have ``before``/``after``/``error`` parts
  called around the step; ``before`` may return :data:`SKIP` (a cache hit found once the step's
  inputs existed), and the layers after it are told with ``skipped``;
- *call* wrappers (retry, timeout) change how the node's function itself is called; they are
  built into the step when the plan is compiled, since they depend only on the node's options.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..context import RunContext
    from ..plan import Step

#: returned by a layer's ``before`` when the step must not run (its outputs are already there)
SKIP: Any = object()

Runner = Callable[[dict[str, Any], "RunContext"], None]
AsyncRunner = Callable[[dict[str, Any], "RunContext"], Awaitable[None]]


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
        tokens = _before(layers, step, values, ctx)
        if tokens is None:
            return
        try:
            call(values, ctx)
        except BaseException as exc:
            _error(layers, tokens, step, values, ctx, exc)
            raise
        _after(layers, tokens, step, values, ctx)

    return run


def acompose(step: Step, layers: Sequence[Layer]) -> AsyncRunner:
    """:func:`compose` for an ``async def`` step: the call is awaited on the running loop."""
    call = step.arun
    assert call is not None
    layers = tuple(layers)

    async def arun(values: dict[str, Any], ctx: RunContext) -> None:
        tokens = _before(layers, step, values, ctx)
        if tokens is None:
            return
        try:
            await call(values, ctx)
        except BaseException as exc:
            _error(layers, tokens, step, values, ctx, exc)
            raise
        _after(layers, tokens, step, values, ctx)

    return arun


def _before(
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


def _after(
    layers: tuple[Layer, ...],
    tokens: list[Any],
    step: Step,
    values: dict[str, Any],
    ctx: RunContext,
) -> None:
    for i in range(len(layers) - 1, -1, -1):
        layers[i].after(step, values, ctx, tokens[i])


def _error(
    layers: tuple[Layer, ...],
    tokens: list[Any],
    step: Step,
    values: dict[str, Any],
    ctx: RunContext,
    exc: BaseException,
) -> None:
    for i in range(len(layers) - 1, -1, -1):
        layers[i].error(step, values, ctx, tokens[i], exc)
