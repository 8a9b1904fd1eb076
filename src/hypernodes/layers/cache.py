"""The cache layer: a step signed once its inputs exist is loaded instead of run (``SKIP``), and
a step that ran has its outputs written (or hashed by value for the steps that read them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..cache import item as _cache
from . import SKIP, Layer

if TYPE_CHECKING:
    from ..context import RunContext
    from ..plan import Plan, Step


class CacheLayer(Layer):
    """Around each step of ``plan``: the two halves of the per-item cache state machine."""

    __slots__ = ("plan",)

    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    def before(self, step: Step, values: dict[str, Any], ctx: RunContext) -> Any:
        action = _cache.before_step(self.plan, step, values)
        return SKIP if action is _cache.SKIP else action

    def after(self, step: Step, values: dict[str, Any], ctx: RunContext, token: Any) -> None:
        if token is not None:
            _cache.after_step(step, values, token)
