"""The scheduler core every executor shares: the steps of one item by dataflow, and many tasks
streamed back in input order under one error policy.

Executors differ only in *how a task is submitted* (this thread, a thread pool, an event loop, a
worker process).  What runs is always ``plan.steps_for`` then ``plan.run_step`` (or
``plan.arun_step`` for an ``async def`` node), so caching, callbacks, retries and timeouts behave
the same everywhere.

Error policy (:class:`Policy`), the same for the steps of one item and the items of a map: with
``raise`` the failure that a sequential run would meet first wins - the lowest step of the plan,
the lowest item of the map - and nothing new starts once a failure is seen; with ``continue`` a
failing step's outputs, and everything computed from them, become :class:`~hypernodes.ItemError`
values and every other step and item still runs.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any

from ..context import RunContext
from ..item_error import ItemError
from ..plan import Plan, Step, add_failure_note, failure_inputs, locate_failure, mark_item

#: how often a waiting caller wakes up, so that Ctrl-C reaches the main thread promptly
POLL_SECONDS = 0.2

Submit = Callable[..., Future]
Offload = Callable[..., Awaitable[Any]]


class Policy:
    """What a failing step does to its item: ``raise`` it, or ``continue`` with error values.

    A policy object lives for one item; with ``continue`` it collects the item's failures
    (output name -> :class:`ItemError`).
    """

    __slots__ = ("failed",)

    def __init__(self, tolerant: bool) -> None:
        #: output name -> its error (``continue``); None with ``raise``
        self.failed: dict[str, ItemError] | None = {} if tolerant else None

    @property
    def tolerant(self) -> bool:
        return self.failed is not None

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


# ---------------------------------------------------------------------------------------------
# The steps of one item


def located_step(plan: Plan, step: Step, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    """Run ``step`` through ``plan.run_step`` and return the values it stored, so that an executor
    whose workers hold a copy of ``values`` can send the outputs back."""
    plan.run_step(step, values, ctx)
    return {key: values[key] for key in step.store}


def run_inline(
    plan: Plan,
    steps: Iterable[Step],
    values: dict[str, Any],
    ctx: RunContext,
    policy: Policy,
    index: int,
) -> None:
    """Run ``steps`` one after the other in this thread."""
    if policy.failed is None:
        for step in steps:
            plan.run_step(step, values, ctx)
        return
    for step in steps:
        if policy.blocked(step):
            continue
        try:
            plan.run_step(step, values, ctx)
        except Exception as exc:
            policy.record(exc, step, ctx, index, values)


def run_item_inline(
    plan: Plan, values: dict[str, Any], ctx: RunContext, tolerant: bool, index: int
) -> dict[str, Any]:
    """One item, its steps one after the other (``continue`` policy or instrumented runs)."""
    policy = Policy(tolerant)
    run_inline(plan, plan.steps_for(values, ctx), values, ctx, policy, index)
    return policy.row(plan, values)


class _Flow:
    """Dataflow bookkeeping for one item: which steps wait for which, which are ready, and what
    the finished ones gave (the same for the thread and the event-loop schedulers)."""

    __slots__ = ("waiting", "consumers", "ready", "order", "policy", "errors")

    def __init__(self, steps: Sequence[Step], policy: Policy) -> None:
        producer = {key: step for step in steps for key in step.store}
        #: step -> how many of its producers among ``steps`` have not finished
        self.waiting: dict[int, int] = {}
        self.consumers: dict[int, list[Step]] = {id(step): [] for step in steps}
        self.order = {id(step): i for i, step in enumerate(steps)}
        self.ready: deque[Step] = deque()
        self.policy = policy
        #: ``(plan position, error)`` of failures under ``raise``: the first in plan order wins
        self.errors: list[tuple[int, BaseException]] = []
        for step in steps:
            producers = {id(producer[k]) for k in step.arg_keys if k in producer}
            for p in producers:
                self.consumers[p].append(step)
            self.waiting[id(step)] = len(producers)
            if not producers:
                self.ready.append(step)

    def next_ready(self) -> Step | None:
        """A step that can start now (None if none, or once a failure stops new work)."""
        while self.ready and not self.errors:
            step = self.ready.popleft()
            if not self.policy.blocked(step):
                return step
            self.finished(step)  # its outputs hold the error of what it reads
        return None

    def finished(self, step: Step) -> None:
        """``step`` is done (or failed under ``continue``): release the steps that read it."""
        for consumer in self.consumers[id(step)]:
            key = id(consumer)
            self.waiting[key] -= 1
            if self.waiting[key] == 0:
                self.ready.append(consumer)

    def settle(
        self,
        step: Step,
        exc: BaseException | None,
        stored: dict[str, Any] | None,
        values: dict[str, Any],
        ctx: RunContext,
        index: int,
    ) -> None:
        """Take the outcome of a step that ran elsewhere: its outputs, or its error."""
        if exc is None:
            if stored:
                values.update(stored)
        elif self.policy.failed is None or not isinstance(exc, Exception):
            self.errors.append((self.order[id(step)], exc))
            return
        else:
            self.policy.record(exc, step, ctx, index, values)
        self.finished(step)

    def by_order(self, done: Iterable[Any], running: dict[Any, Step]) -> list[Any]:
        """``done`` futures in plan order, so errors are recorded as a sequential run would."""
        return sorted(done, key=lambda f: self.order[id(running[f])])

    def raise_first(self) -> None:
        if self.errors:
            raise min(self.errors, key=lambda pair: pair[0])[1]


def run_dataflow(
    plan: Plan,
    values: dict[str, Any],
    ctx: RunContext,
    submit: Submit,
    tolerant: bool,
    index: int,
    inline_single: bool = True,
) -> dict[str, Any]:
    """One item with each step starting as soon as its own inputs are ready.

    Ready steps go to ``submit``; when only one step can run and nothing else is in flight it
    runs in this thread (``inline_single``), so a chain costs no thread hops.
    """
    policy = Policy(tolerant)
    flow = _Flow(plan.steps_for(values, ctx), policy)
    running: dict[Future, Step] = {}
    try:
        while True:
            step = flow.next_ready()
            while step is not None:
                if inline_single and not running and not flow.ready:
                    run_inline(plan, (step,), values, ctx, policy, index)
                    flow.finished(step)
                else:
                    running[submit(located_step, plan, step, values, ctx)] = step
                step = flow.next_ready()
            if not running:
                break
            done, _ = wait(running, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            for future in flow.by_order(done, running):
                step = running.pop(future)
                exc = future.exception()
                flow.settle(step, exc, None if exc else future.result(), values, ctx, index)
    except BaseException:
        for future in running:
            future.cancel()
        raise
    flow.raise_first()
    return policy.row(plan, values)


async def arun_dataflow(
    plan: Plan,
    values: dict[str, Any],
    ctx: RunContext,
    offload: Offload,
    tolerant: bool,
    index: int,
) -> dict[str, Any]:
    """:func:`run_dataflow` on an event loop: ``async def`` steps are awaited on the loop, the
    others go to ``offload`` (a thread pool) so they do not block it."""
    policy = Policy(tolerant)
    flow = _Flow(plan.steps_for(values, ctx), policy)
    running: dict[asyncio.Future[Any], Step] = {}

    def start(step: Step) -> asyncio.Future[Any]:
        if step.arun is not None:
            return asyncio.ensure_future(plan.arun_step(step, values, ctx))
        return asyncio.ensure_future(offload(located_step, plan, step, values, ctx))

    try:
        while True:
            step = flow.next_ready()
            while step is not None:
                running[start(step)] = step
                step = flow.next_ready()
            if not running:
                break
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in flow.by_order(done, running):
                step = running.pop(task)
                exc = task.exception()
                flow.settle(step, exc, None if exc else task.result(), values, ctx, index)
    except BaseException:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        raise
    flow.raise_first()
    return policy.row(plan, values)


async def arun_sequential(
    plan: Plan,
    values: dict[str, Any],
    ctx: RunContext,
    offload: Offload,
    tolerant: bool,
    index: int,
) -> dict[str, Any]:
    """One item on an event loop, one step at a time: each run of consecutive sync steps is one
    trip to ``offload``; ``async def`` steps are awaited on the loop in between."""
    if not tolerant and not any(step.arun is not None for step in plan.steps):
        return await offload(plan.run_item, values, ctx)
    policy = Policy(tolerant)
    segment: list[Step] = []
    for step in plan.steps_for(values, ctx):
        if step.arun is None:
            segment.append(step)
            continue
        if segment:
            await offload(run_inline, plan, segment, values, ctx, policy, index)
            segment = []
        if policy.blocked(step):
            continue
        try:
            await plan.arun_step(step, values, ctx)
        except Exception as exc:
            policy.record(exc, step, ctx, index, values)
    if segment:
        await offload(run_inline, plan, segment, values, ctx, policy, index)
    return policy.row(plan, values)


# ---------------------------------------------------------------------------------------------
# Many tasks, streamed back


def item_task(
    node: Any, plan: Plan, values: dict[str, Any], ctx: RunContext, tolerant: bool, index: int
) -> dict[str, Any]:
    """Run map item ``index`` with the node executor ``node``; a failure is marked with the index."""
    try:
        return node.run_item(plan, values, ctx, tolerant, index)
    except BaseException as exc:
        mark_item(exc, ctx.depth, index)
        raise


async def aitem_task(
    node: Any,
    plan: Plan,
    values: dict[str, Any],
    ctx: RunContext,
    tolerant: bool,
    index: int,
    offload: Offload,
) -> dict[str, Any]:
    """:func:`item_task` on an event loop."""
    try:
        return await node.arun_item(plan, values, ctx, tolerant, index, offload)
    except BaseException as exc:
        mark_item(exc, ctx.depth, index)
        raise


def stream(
    submit: Submit, tasks: Iterable[tuple[Any, ...]], window: int, ordered: bool = True
) -> Iterator[tuple[int, Any]]:
    """``(task index, result)`` of ``tasks`` run through ``submit``, in order or as completed."""
    if ordered:
        return enumerate(stream_ordered(submit, tasks, window))
    return stream_completed(submit, tasks, window)


def stream_ordered(submit: Submit, tasks: Iterable[tuple[Any, ...]], window: int) -> Iterator[Any]:
    """Submit ``tasks`` (argument tuples for ``submit``) with at most ``window`` in flight and
    yield their results in task order, as soon as each is next in line.

    Tasks are drawn lazily, so memory holds ``window`` tasks whatever the length of ``tasks``.
    When a task fails, no further task is submitted; the tasks before it are still yielded (one
    of them may fail first, and a sequential run would have raised that one), then its error is
    raised and the tasks after it are cancelled.  Ctrl-C, or a consumer that stops early,
    cancels what has not started.
    """
    source = iter(tasks)
    pending: deque[Future] = deque()
    stop = [False]

    def watch(future: Future) -> None:
        if not future.cancelled() and future.exception() is not None:
            stop[0] = True

    try:
        while True:
            while not stop[0] and len(pending) < window:
                args = next(source, None)
                if args is None:
                    break
                future = submit(*args)
                future.add_done_callback(watch)
                pending.append(future)
            if not pending:
                return
            head = pending[0]
            while not head.done():
                wait((head,), timeout=POLL_SECONDS)
            pending.popleft()
            yield head.result()
    finally:
        for future in pending:
            future.cancel()


def stream_completed(
    submit: Submit, tasks: Iterable[tuple[Any, ...]], window: int
) -> Iterator[tuple[int, Any]]:
    """Like :func:`stream_ordered`, but yield ``(task index, result)`` as tasks complete.

    The first failure seen is raised; tasks not yet started are cancelled.
    """
    source = iter(tasks)
    in_flight: dict[Future, int] = {}
    count = 0
    try:
        while True:
            while len(in_flight) < window:
                args = next(source, None)
                if args is None:
                    break
                in_flight[submit(*args)] = count
                count += 1
            if not in_flight:
                return
            done, _ = wait(in_flight, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=in_flight.__getitem__):
                index = in_flight.pop(future)
                yield index, future.result()
    finally:
        for future in in_flight:
            future.cancel()


class _Window:
    """The bookkeeping of :func:`astream`: tasks in flight, results waiting for their turn, and
    the failure that wins so far."""

    __slots__ = ("running", "ready", "next_index", "failed", "ordered")

    def __init__(self, ordered: bool) -> None:
        self.running: dict[asyncio.Future[Any], int] = {}
        self.ready: dict[int, Any] = {}
        self.next_index = 0
        self.failed: tuple[int, BaseException] | None = None
        self.ordered = ordered

    def settle(self, done: Iterable[asyncio.Future[Any]]) -> list[tuple[int, Any]]:
        """Take finished tasks; the ``(index, result)`` pairs that may be handed out now."""
        batch: list[tuple[int, Any]] = []
        for task in sorted(done, key=self.running.__getitem__):
            index = self.running.pop(task)
            if task.cancelled():
                continue
            exc = task.exception()
            if exc is not None:
                self.fail(index, exc)
            elif self.ordered:
                self.ready[index] = task.result()
            else:
                batch.append((index, task.result()))
        while self.next_index in self.ready:
            batch.append((self.next_index, self.ready.pop(self.next_index)))
            self.next_index += 1
        return batch

    def fail(self, index: int, exc: BaseException) -> None:
        """Keep the failure that wins and cancel the tasks it makes pointless."""
        if self.failed is not None and index > self.failed[0]:
            return
        self.failed = (index, exc)
        for task, where in self.running.items():
            if where > index or not self.ordered:
                task.cancel()

    @property
    def over(self) -> bool:
        """Whether the winning failure can be raised: every row before it was handed out."""
        failed = self.failed
        return failed is not None and (not self.ordered or self.next_index >= failed[0])


async def astream(
    start: Callable[[int, Any], Awaitable[Any]],
    items: Iterable[Any],
    window: int,
    ordered: bool = True,
) -> AsyncIterator[list[tuple[int, Any]]]:
    """The event-loop twin of :func:`stream`: ``start(index, item)`` for each item as a task, at
    most ``window`` at once, yielding batches of ``(index, result)`` as they are ready.

    Ordered, a result waits for the ones before it and the lowest failing index wins; unordered,
    the first failure seen is raised.  Either way nothing new starts after a failure, and the
    tasks still running are cancelled when the stream ends early.
    """
    source = enumerate(items)
    state = _Window(ordered)
    running = state.running
    try:
        while True:
            while state.failed is None and len(running) < window:
                pair = next(source, None)
                if pair is None:
                    break
                running[asyncio.ensure_future(start(*pair))] = pair[0]
            if not running:
                break
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            batch = state.settle(done)
            if batch:
                yield batch
            if state.over:
                break
        if state.failed is not None:
            raise state.failed[1]
    finally:
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)


def wait_all(futures: Iterable[Future]) -> None:
    """Wait until every future is done, waking up regularly so Ctrl-C is seen; cancel on Ctrl-C."""
    pending = set(futures)
    try:
        while pending:
            _, pending = wait(pending, timeout=POLL_SECONDS)
    except BaseException:
        for future in pending:
            future.cancel()
        raise
