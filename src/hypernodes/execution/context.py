"""The per-call context handed down from ``Pipeline.run``/``map`` to every step and nested
pipeline, and the error policy of one item."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ..observe.callbacks import dispatcher_for
from .failure import add_failure_note, failure_inputs, locate_failure, mark_item
from .item_error import ItemError

if TYPE_CHECKING:
    from .plan import Plan
    from .step import Step


@dataclass(slots=True)
class RunContext:
    """What a running pipeline inherits from its caller: engine, cache, callbacks and where it is.

    ``path`` holds the pipeline names from the outermost one down to this one; ``depth`` is
    ``len(path) - 1``.  A nested pipeline that sets its own engine/cache/callbacks uses those;
    otherwise it inherits its caller's, without the nested pipeline object being changed.
    Treat it as immutable: make a new one with :meth:`child` or :meth:`for_item`.
    """

    engine: Any
    cache: Any = None
    #: delivers callback events (a ``Dispatcher``, or an ``EventRecorder`` in a worker); None: no callbacks
    dispatcher: Any = None
    path: tuple[str, ...] = ()
    #: per level of ``path``, the map item index being run there (None outside a map item)
    items: tuple[int | None, ...] = ()
    #: the CallbackContext events at this place report (None without callbacks)
    cb: Any = None
    #: with callbacks, marks that a node really ran in this map item (or a pipeline nested in it)
    flag: RanFlag | None = None
    #: with a cache, what the cache derives once per run or map call (``cache.signatures.CallInfo``)
    call: Any = None
    #: with a cache, the cache's state for the item being run (``cache.item.ItemState``)
    state: Any = None

    def __post_init__(self) -> None:
        if self.dispatcher is not None and self.cb is None:
            self.cb = self.dispatcher.context(self.path, self.items)

    @property
    def instrumented(self) -> bool:
        """Whether steps need more than a bare call (a cache or callbacks are set)."""
        return self.cache is not None or self.dispatcher is not None

    @property
    def depth(self) -> int:
        return len(self.path) - 1

    def child(self, pipeline: Any, name: str) -> RunContext:
        """The context for ``pipeline`` running as the step ``name`` inside this one."""
        return RunContext(
            pipeline.engine if pipeline.engine is not None else self.engine,
            pipeline.cache if pipeline.cache is not None else self.cache,
            dispatcher_for(pipeline.callbacks)
            if pipeline.callbacks is not None
            else self.dispatcher,
            (*self.path, name),
            (*self.items, None),
            flag=self.flag,
        )

    def for_item(self, index: int) -> RunContext:
        """The context of map item ``index`` of the pipeline this context runs."""
        flag = RanFlag(self.flag) if self.dispatcher is not None else None
        items = (*self.items[:-1], index)
        return RunContext(
            self.engine, self.cache, self.dispatcher, self.path, items, None, flag, self.call
        )

    def for_call(self, call: Any) -> RunContext:
        """This context for one run or map call of a plan, with what the cache derived for it."""
        return RunContext(
            self.engine,
            self.cache,
            self.dispatcher,
            self.path,
            self.items,
            self.cb,
            self.flag,
            call,
        )

    def with_state(self, state: Any) -> RunContext:
        """This context for one item, holding the cache's state for it.  Per-item machinery
        lives in the context, never in the item's values (they hold the user's names only)."""
        new = _new(RunContext)  # once per item with a cache: field by field, no __post_init__
        new.engine = self.engine
        new.cache = self.cache
        new.dispatcher = self.dispatcher
        new.path = self.path
        new.items = self.items
        new.cb = self.cb
        new.flag = self.flag
        new.call = self.call
        new.state = state
        return new


_new = object.__new__


class RanFlag:
    """Set when a node really runs (not a cache hit) in a map item or anything nested in it."""

    __slots__ = ("parent", "ran")

    def __init__(self, parent: RanFlag | None = None) -> None:
        self.ran = False
        self.parent = parent

    def mark(self) -> None:
        flag: RanFlag | None = self
        while flag is not None and not flag.ran:
            flag.ran = True
            flag = flag.parent


class Policy:
    """What a failing step does to its item: ``raise`` it, or ``continue`` with error values.

    A policy object lives for one item; with ``continue`` it collects the item's failures
    (output name -> :class:`ItemError`).
    """

    __slots__ = ("failed",)

    def __init__(self, tolerant: bool) -> None:
        #: output name -> its error (``continue``); None with ``raise``
        self.failed: dict[str, ItemError] | None = {} if tolerant else None

    def blocked(self, step: Step) -> bool:
        """Whether ``step`` reads a failed value; its outputs then inherit that error."""
        failed = self.failed
        if not failed:
            return False
        for key in step.arg_keys:
            error = failed.get(key)
            if error is not None:
                failed.update(dict.fromkeys(step.store, error))
                return True
        return False

    def record(
        self, exc: BaseException, step: Step, ctx: RunContext, index: int, values: dict[str, Any]
    ) -> None:
        """Keep ``exc`` as the value of ``step``'s outputs (``continue``), or raise it."""
        if self.failed is None or not isinstance(exc, Exception):
            raise exc
        locate_failure(exc, step, ctx, values)
        mark_item(exc, ctx.depth, index)
        add_failure_note(exc)
        error = ItemError(exc, step.name, index, failure_inputs(exc))
        self.failed.update(dict.fromkeys(step.store, error))

    def row(self, plan: Plan, values: dict[str, Any]) -> dict[str, Any]:
        """The item's outputs, with the error value in place of what could not be computed."""
        failed = self.failed
        if not failed:
            return plan.extract(values)
        return {name: failed.get(name, values.get(name)) for name in plan.output_names}


@dataclass(frozen=True, slots=True)
class MapCall:
    """One map call as the map executors see it: the compiled plan, the call's context, the node
    executor that runs each item's steps, the error policy (``tolerant``: ``on_error="continue"``)
    and whether rows come in input order."""

    plan: Plan
    ctx: RunContext
    node: Any
    tolerant: bool = False
    ordered: bool = True

    def item(self, index: int, values: dict[str, Any]) -> dict[str, Any]:
        """Run map item ``index`` with the node executor; a failure is marked with the index."""
        try:
            return self.node.run_item(self.plan, values, self.ctx, self.tolerant, index)
        except BaseException as exc:
            mark_item(exc, self.ctx.depth, index)
            raise

    async def aitem(
        self, index: int, values: dict[str, Any], offload: Callable[..., Awaitable[Any]]
    ) -> dict[str, Any]:
        """:meth:`item` on an event loop (``offload`` runs sync code in a thread)."""
        try:
            return await self.node.arun_item(
                self.plan, values, self.ctx, self.tolerant, index, offload
            )
        except BaseException as exc:
            mark_item(exc, self.ctx.depth, index)
            raise

    def with_node(self, node: Any) -> MapCall:
        """This call with items run by ``node`` (the group runner of batch nodes, say)."""
        return replace(self, node=node)
