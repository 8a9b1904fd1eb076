"""The loops that every executor shares: the steps of one item by generation, and many tasks in
input order with one error rule.

Executors differ only in *where* a step or an item runs (this thread, a thread pool, an event
loop, a worker process).  What runs is always ``plan.steps_for`` then ``plan.run_step`` (or
``plan.arun_step`` for an ``async def`` node), so caching and callbacks behave the same everywhere.

Error rule, the same for steps of one generation and for items of a map: the failure with the
lowest index wins, as if the tasks had run one after the other.  When task ``i`` fails, tasks
after ``i`` that have not started are cancelled and not waited for; tasks before ``i`` are
finished, since one of them could fail too and would then be the one a sequential run raises.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any

from ..context import RunContext
from ..events import RAN_KEY
from ..item_error import ItemError
from ..plan import Plan, Step, add_failure_note, locate_failure, mark_item

#: how often a waiting caller wakes up, so that Ctrl-C reaches the main thread promptly
POLL_SECONDS = 0.2

Submit = Callable[..., Future]
Offload = Callable[..., Awaitable[Any]]
Failures = dict[str, ItemError]


# ---------------------------------------------------------------------------------------------
# One step


def located_step(plan: Plan, step: Step, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    """Run ``step`` through ``plan.run_step`` (which records the step on a failure) and return the
    values it stored, so that an executor whose workers hold a copy of ``values`` (another process)
    can send the outputs back."""
    plan.run_step(step, values, ctx)
    stored = {key: values[key] for key in step.store}
    if RAN_KEY in values:  # tell a copied item's owner that a node really ran (callbacks)
        stored[RAN_KEY] = True
    return stored


def item_error(exc: BaseException, step: Step, ctx: RunContext, index: int) -> ItemError:
    """The error value for the outputs of ``step`` in map item ``index`` (``on_error="continue"``)."""
    locate_failure(exc, step, ctx)
    mark_item(exc, ctx.depth, index)
    add_failure_note(exc)
    return ItemError(exc, step.name, index)


def blocked_by(step: Step, failed: Failures) -> ItemError | None:
    """The error of a failed upstream value ``step`` reads, if any."""
    for key in step.arg_keys:
        error = failed.get(key)
        if error is not None:
            return error
    return None


def unblocked(batch: Sequence[Step], failed: Failures) -> list[Step]:
    """The steps of ``batch`` that can run; the outputs of the others inherit their input's error."""
    runnable = []
    for step in batch:
        error = blocked_by(step, failed)
        if error is None:
            runnable.append(step)
        else:
            failed.update(dict.fromkeys(step.store, error))
    return runnable


def row(plan: Plan, values: dict[str, Any], failed: Failures | None) -> dict[str, Any]:
    """The outputs of one item, with the error value in place of what could not be computed."""
    if not failed:
        return plan.extract(values)
    return {name: failed[name] if name in failed else values[name] for name in plan.output_names}


# ---------------------------------------------------------------------------------------------
# The steps of one item


def run_segment(
    plan: Plan,
    steps: Iterable[Step],
    values: dict[str, Any],
    ctx: RunContext,
    failed: Failures | None,
    index: int,
) -> None:
    """Run ``steps`` one after the other in this thread.

    With ``failed`` (a dict, ``on_error="continue"``) a failing step's outputs and everything that
    reads them become error values and the other steps still run; without it the error is raised.
    """
    if failed is None:
        for step in steps:
            located_step(plan, step, values, ctx)
        return
    for step in steps:
        if failed:
            error = blocked_by(step, failed)
            if error is not None:
                failed.update(dict.fromkeys(step.store, error))
                continue
        try:
            plan.run_step(step, values, ctx)
        except Exception as exc:
            failed.update(dict.fromkeys(step.store, item_error(exc, step, ctx, index)))


def run_item_tolerant(
    plan: Plan, values: dict[str, Any], ctx: RunContext, index: int
) -> dict[str, Any]:
    """One item with ``on_error="continue"``, its steps one after the other."""
    failed: Failures = {}
    run_segment(plan, plan.steps_for(values, ctx), values, ctx, failed, index)
    return row(plan, values, failed)


def pending_levels(plan: Plan, values: dict[str, Any], ctx: RunContext) -> Iterator[list[Step]]:
    """The generations of the steps that ``plan.steps_for`` says still have to run."""
    steps = plan.steps_for(values, ctx)
    if steps is plan.steps:
        for level in plan.levels:
            yield list(level)
        return
    grouped: dict[int, list[Step]] = {}
    for step in steps:
        grouped.setdefault(step.level, []).append(step)
    for level in sorted(grouped):
        yield grouped[level]


def run_levels(
    plan: Plan,
    values: dict[str, Any],
    ctx: RunContext,
    submit: Submit,
    tolerant: bool,
    index: int,
    inline_single: bool = True,
) -> dict[str, Any]:
    """One item, generation by generation: the steps of a generation go to ``submit`` together.

    A generation of one step runs in this thread when ``inline_single`` (no hop for a chain).
    """
    failed: Failures | None = {} if tolerant else None
    for batch in pending_levels(plan, values, ctx):
        if failed:
            batch = unblocked(batch, failed)
        if not batch:
            continue
        if len(batch) == 1 and inline_single:
            run_segment(plan, batch, values, ctx, failed, index)
            continue
        futures = [submit(located_step, plan, step, values, ctx) for step in batch]
        if failed is None:
            results, _, error = gather_ordered(futures)
            if error is not None:
                raise error
            for result in results:
                values.update(result)
            continue
        wait_all(futures)
        for step, future in zip(batch, futures):
            exc = future.exception()
            if exc is None:
                values.update(future.result())
            elif isinstance(exc, Exception):
                failed.update(dict.fromkeys(step.store, item_error(exc, step, ctx, index)))
            else:
                raise exc
    return row(plan, values, failed)


async def arun_levels(
    plan: Plan,
    values: dict[str, Any],
    ctx: RunContext,
    offload: Offload,
    tolerant: bool,
    index: int,
) -> dict[str, Any]:
    """One item on an event loop, generation by generation: ``async def`` steps are awaited on the
    loop, the others go to ``offload`` (a thread pool) so they do not block it."""
    failed: Failures | None = {} if tolerant else None

    def start(step: Step) -> Awaitable[Any]:
        if step.arun is not None:
            return plan.arun_step(step, values, ctx)
        return offload(located_step, plan, step, values, ctx)

    for batch in pending_levels(plan, values, ctx):
        if failed:
            batch = unblocked(batch, failed)
        if not batch:
            continue
        if failed is None:
            if len(batch) == 1:
                await start(batch[0])
            else:
                _, error = await agather_ordered([start(step) for step in batch])
                if error is not None:
                    raise error
            continue
        outcomes = await asyncio.gather(*(start(step) for step in batch), return_exceptions=True)
        for step, outcome in zip(batch, outcomes):
            if isinstance(outcome, Exception):
                failed.update(dict.fromkeys(step.store, item_error(outcome, step, ctx, index)))
            elif isinstance(outcome, BaseException):
                raise outcome
    return row(plan, values, failed)


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
    failed: Failures | None = {} if tolerant else None
    segment: list[Step] = []
    for step in plan.steps_for(values, ctx):
        if step.arun is None:
            segment.append(step)
            continue
        if segment:
            await offload(run_segment, plan, segment, values, ctx, failed, index)
            segment = []
        if failed is not None:
            error = blocked_by(step, failed)
            if error is not None:
                failed.update(dict.fromkeys(step.store, error))
                continue
            try:
                await plan.arun_step(step, values, ctx)
            except Exception as exc:
                failed.update(dict.fromkeys(step.store, item_error(exc, step, ctx, index)))
        else:
            await plan.arun_step(step, values, ctx)
    if segment:
        await offload(run_segment, plan, segment, values, ctx, failed, index)
    return row(plan, values, failed)


# ---------------------------------------------------------------------------------------------
# Many tasks in order


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
            for future in done:
                index = in_flight.pop(future)
                yield index, future.result()
    finally:
        for future in in_flight:
            future.cancel()


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


def gather_ordered(futures: Sequence[Future]) -> tuple[list[Any], int, BaseException | None]:
    """Results of already submitted ``futures`` in order, under the module's error rule.

    Returns ``(results, failed_index, error)``; ``error`` is ``None`` when all succeeded.
    """
    return run_ordered(_submitted, ((f,) for f in futures), len(futures) or 1)


def _submitted(future: Future) -> Future:
    return future


def run_ordered(
    submit: Submit, tasks: Iterable[tuple[Any, ...]], window: int
) -> tuple[list[Any], int, BaseException | None]:
    """Submit ``tasks`` (argument tuples for ``submit``) keeping at most ``window`` in flight, and
    collect their results in order under the module's error rule.

    Tasks are drawn from ``tasks`` lazily, so a map over many items holds only ``window`` of them.
    Returns ``(results, failed_index, error)``; on Ctrl-C the pending tasks are cancelled.
    """
    source = iter(tasks)
    results: list[Any] = []
    in_flight: dict[Future, int] = {}
    first = -1  # index of the failure that wins so far
    error: BaseException | None = None
    try:
        while True:
            while first < 0 and len(in_flight) < window:
                args = next(source, None)
                if args is None:
                    break
                in_flight[submit(*args)] = len(results)
                results.append(None)
            if not in_flight:
                break
            done, _ = wait(in_flight, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            for future in done:
                position = in_flight.pop(future, None)
                if position is None or future.cancelled():
                    continue
                exc = future.exception()
                if exc is None:
                    results[position] = future.result()
                elif first < 0 or position < first:
                    first, error = position, exc
                    for other, where in list(in_flight.items()):
                        if where > position:
                            other.cancel()
                            del in_flight[other]
    except BaseException:
        for future in in_flight:
            future.cancel()
        raise
    return results, first, error


async def agather_ordered(aws: Sequence[Awaitable[Any]]) -> tuple[list[Any], BaseException | None]:
    """:func:`gather_ordered` for awaitables on the running loop: ``(results, error)``."""
    tasks = [asyncio.ensure_future(aw) for aw in aws]
    position = {task: i for i, task in enumerate(tasks)}
    pending = set(tasks)
    first, error = len(tasks), None
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task.cancelled():
                    continue
                exc = task.exception()
                i = position[task]
                if exc is not None and i < first:
                    first, error = i, exc
                    for other in pending:
                        if position[other] > i:
                            other.cancel()
                    pending = {t for t in pending if position[t] < i}
    except BaseException:
        for task in tasks:
            task.cancel()
        raise
    if error is not None:
        return [], error
    return [task.result() for task in tasks], None
