"""Every loop that runs steps and items: one item's steps (in a row, or by dataflow through a
``submit``), a map's items one after the other, a group of items through a plan's batch
segments, and the chunk a worker process runs.

What runs is always :func:`steps_for` (the cache loads its hits and drops the steps it need not
run) and then each step's runner, with the around layers the context turns on (see
:meth:`Plan.composed <hypernodes.execution.plan.Plan.composed>`); the fast paths below are
specialisations of that for a context without cache and callbacks.  So caching, callbacks,
retries and timeouts behave the same under every executor and engine.

Error policy (:class:`~hypernodes.execution.context.Policy`), the same for the steps of one item
and the items of a map: with ``raise`` the failure that a sequential run would meet first wins -
the lowest step of the plan, the lowest item of the map - and nothing new starts once a failure
is seen; with ``continue`` a failing step's outputs, and everything computed from them, become
:class:`~hypernodes.ItemError` values and every other step and item still runs.  Failure
locations are recorded by :mod:`hypernodes.execution.failure`.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any

from ..cache import item as _cache
from ..observe import events
from .context import MapCall, Policy, RunContext
from .failure import locate_failure, mark_item
from .layers import around_key, around_layers, run_after, run_before, run_error
from .plan import Plan, batch_size_for
from .step import Step
from .streams import POLL_SECONDS, Submit

Offload = Callable[..., Awaitable[Any]]


# ---------------------------------------------------------------------------------------------
# One item, its steps one after the other


def steps_for(
    plan: Plan, values: dict[str, Any], ctx: RunContext
) -> tuple[Sequence[Step], RunContext]:
    """The steps that still have to run for this item, and the context to run them in.

    Without a cache that is every step, in ``ctx``.  With one, the cache loads hits into
    ``values``, drops the steps it need not run and keeps its state for the item in the returned
    context; every loop calls this first, then :func:`run_step` for each step returned, with that
    context.
    """
    if ctx.cache is None:
        return plan.steps, ctx
    steps, item_ctx = _cache.steps_for(plan, values, ctx)
    if ctx.dispatcher is not None:
        events.cached_steps(plan, steps, item_ctx)
    return steps, item_ctx


def run_item(plan: Plan, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    """Run every step for one item (``values`` is filled in place) and return the outputs."""
    if ctx.cache is not None or ctx.dispatcher is not None:
        runners = plan.composed(ctx)[0]
        step = None
        try:
            steps, item_ctx = steps_for(plan, values, ctx)
            for step in steps:
                runners[step.index](values, item_ctx)
        except Exception as exc:
            locate_failure(exc, step, ctx, plan, values)
            raise
        return plan.extract(values)
    try:
        for run in plan.runners:
            run(values, ctx)
    except Exception as exc:
        locate_failure(exc, plan.failed_step(values), ctx, plan, values)
        raise
    return plan.extract(values)


def run_step(plan: Plan, step: Step, values: dict[str, Any], ctx: RunContext) -> None:
    """Run one step with the layers the context asks for around it (cache, callbacks)."""
    try:
        if ctx.cache is not None or ctx.dispatcher is not None:
            plan.composed(ctx)[0][step.index](values, ctx)
        else:
            step.run(values, ctx)
    except Exception as exc:
        # Name this step: with a cache, steps before it may have been skipped, not stored.
        locate_failure(exc, step, ctx, plan, values)
        raise


async def arun_step(plan: Plan, step: Step, values: dict[str, Any], ctx: RunContext) -> None:
    """:func:`run_step` for a step with an ``arun`` (an ``async def`` node), awaited natively
    on the running loop, with the same layers."""
    try:
        if ctx.cache is not None or ctx.dispatcher is not None:
            await plan.composed(ctx)[1][step.index](values, ctx)
        else:
            await step.arun(values, ctx)  # type: ignore[misc]
    except Exception as exc:
        locate_failure(exc, step, ctx, plan, values)
        raise


# ---------------------------------------------------------------------------------------------
# The steps of one item


def located_step(plan: Plan, step: Step, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    """Run ``step`` through :func:`run_step` and return the values it stored, so that an executor
    whose workers hold a copy of ``values`` can send the outputs back."""
    run_step(plan, step, values, ctx)
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
            run_step(plan, step, values, ctx)
        return
    for step in steps:
        if policy.blocked(step):
            continue
        try:
            run_step(plan, step, values, ctx)
        except Exception as exc:
            policy.record(exc, step, ctx, index, values)


def run_item_inline(
    plan: Plan, values: dict[str, Any], ctx: RunContext, tolerant: bool, index: int
) -> dict[str, Any]:
    """One item, its steps one after the other (``continue`` policy or instrumented runs)."""
    policy = Policy(tolerant)
    steps, ctx = steps_for(plan, values, ctx)
    run_inline(plan, steps, values, ctx, policy, index)
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
    steps, ctx = steps_for(plan, values, ctx)
    flow = _Flow(steps, policy)
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
    steps, ctx = steps_for(plan, values, ctx)
    flow = _Flow(steps, policy)
    running: dict[asyncio.Future[Any], Step] = {}

    def start(step: Step) -> asyncio.Future[Any]:
        if step.arun is not None:
            return asyncio.ensure_future(arun_step(plan, step, values, ctx))
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
        return await offload(run_item, plan, values, ctx)
    policy = Policy(tolerant)
    segment: list[Step] = []
    steps, ctx = steps_for(plan, values, ctx)
    for step in steps:
        if step.arun is None:
            segment.append(step)
            continue
        if segment:
            await offload(run_inline, plan, segment, values, ctx, policy, index)
            segment = []
        if policy.blocked(step):
            continue
        try:
            await arun_step(plan, step, values, ctx)
        except Exception as exc:
            policy.record(exc, step, ctx, index, values)
    if segment:
        await offload(run_inline, plan, segment, values, ctx, policy, index)
    return policy.row(plan, values)


# ---------------------------------------------------------------------------------------------
# Many tasks, streamed back


class ItemRunner:
    """Runs one map item of a :class:`~hypernodes.execution.context.MapCall`: the unit of work
    of a batch.

    With ``reads`` (a plain sequential item with a cache that prefers batched reads, such as
    DiskCache) a batch's items are signed and their requested entries read in one query first
    (:meth:`prefetch`), then each item runs with what was found (:meth:`prefetched`).
    """

    __slots__ = ("call", "reads")

    def __init__(self, call: MapCall) -> None:
        self.call = call
        ctx = call.ctx
        self.reads = (
            call.node.inline
            and not call.tolerant
            and ctx.dispatcher is None
            and getattr(ctx.cache, "batch_reads", False)
        )

    def __call__(self, index: int, values: dict[str, Any]) -> dict[str, Any]:
        return self.call.item(index, values)

    def prefetch(self, pairs: Sequence[tuple[int, dict[str, Any]]]) -> list[Any] | None:
        """One read for the entries a batch's items request (None: items read on their own)."""
        if not self.reads or len(pairs) < 2:
            return None
        call = self.call
        signed, wanted = _cache.prefetch(call.plan, [v for _, v in pairs], call.ctx.call)
        fetched = call.ctx.cache.get_many(wanted) if wanted else {}
        return [(keys, fetched) for keys in signed]

    def prefetched(self, index: int, values: dict[str, Any], hint: Any) -> dict[str, Any]:
        """Run one item with the keys and entries :meth:`prefetch` found for it."""
        ctx = self.call.ctx
        try:
            return run_prefetched(self.call.plan, values, ctx, *hint)
        except BaseException as exc:
            mark_item(exc, ctx.depth, index)
            raise


#: keys of the pseudo-item that carries a group of items through a map executor
GROUP_KEY = "\x00batch:items"


START_KEY = "\x00batch:start"


def run_group(
    plan: Plan, group: list[dict[str, Any]], start: int, ctx: RunContext, tolerant: bool
) -> tuple[list[dict[str, Any]], BaseException | None]:
    """Run map items ``start, start + 1, ...`` (their value dicts, filled in place) through the
    plan's segments; their rows, and the error that stopped the group (``raise``: the rows are
    those of the items before the failing one)."""
    if not tolerant and not ctx.instrumented:
        return _run_bare(plan, group, start, ctx)
    return _run_observed(plan, group, start, ctx, tolerant)


def _run_bare(
    plan: Plan, group: list[dict[str, Any]], start: int, ctx: RunContext
) -> tuple[list[dict[str, Any]], BaseException | None]:
    limit = len(group)
    failure: BaseException | None = None
    for part in plan.segments or ():
        if limit == 0:
            break
        if type(part) is tuple:
            runners = tuple(step.run for step in part)
            for k in range(limit):
                values = group[k]
                try:
                    for run in runners:
                        run(values, ctx)
                except Exception as exc:
                    locate_failure(exc, plan.failed_step(values), ctx, plan, values)
                    limit, failure = k, exc
                    break
        else:
            try:
                part.batch(group[:limit] if limit < len(group) else group, ctx)  # type: ignore[union-attr]
            except Exception as exc:
                locate_failure(exc, part, ctx, plan, group[0])  # type: ignore[arg-type]
                limit, failure = 0, exc
    extract = plan.extract
    rows = [extract(group[k]) for k in range(limit)]
    if failure is not None:
        mark_item(failure, ctx.depth, start + limit)
    return rows, failure


def _run_observed(
    plan: Plan, group: list[dict[str, Any]], start: int, ctx: RunContext, tolerant: bool
) -> tuple[list[dict[str, Any]], BaseException | None]:
    """:func:`run_group` with a cache, callbacks or ``on_error="continue"``."""
    run = _Group(plan, group, start, ctx, tolerant)
    started: list[tuple[RunContext, float]] = []
    if ctx.dispatcher is not None:
        started = [events.item_started(start + k, ctx) for k in range(len(group))]
        run.ctxs = [pair[0] for pair in started]
    try:
        run.plan_items()
        for part in plan.segments or ():
            if run.limit == 0:
                break
            if type(part) is tuple:
                run.per_item(part)
            else:
                run.batch(part)  # type: ignore[arg-type]
    finally:
        for k, (item_ctx, began) in enumerate(started):
            events.item_finished(plan, group[k], start + k, item_ctx, began, k < run.limit)
    if run.failure is not None:
        mark_item(run.failure, ctx.depth, start + run.limit)
    rows = [run.policies[k].row(plan, group[k]) for k in range(run.limit)]
    return rows, run.failure


class _Group:
    """The state of a group of items run through a plan's segments with a cache, callbacks or
    ``on_error="continue"``: each item's context, policy and steps to run, and where it stops."""

    __slots__ = (
        "plan",
        "group",
        "start",
        "ctx",
        "tolerant",
        "ctxs",
        "policies",
        "todo",
        "layers",
        "limit",
        "failure",
    )

    def __init__(
        self, plan: Plan, group: list[dict[str, Any]], start: int, ctx: RunContext, tolerant: bool
    ) -> None:
        self.plan, self.group, self.start, self.ctx, self.tolerant = (
            plan,
            group,
            start,
            ctx,
            tolerant,
        )
        self.ctxs = [ctx] * len(group)
        self.policies = [Policy(tolerant) for _ in group]
        #: per item, the numbers of the steps it runs (None: every step)
        self.todo: list[set[int] | None] = []
        self.layers = around_layers(plan, around_key(ctx)) if ctx.instrumented else []
        #: items from this one on are not run any more (a failure under ``raise``)
        self.limit = len(group)
        self.failure: BaseException | None = None

    def plan_items(self) -> None:
        """Ask the cache, item by item, which steps still have to run."""
        plan = self.plan
        for k, values in enumerate(self.group):
            steps, self.ctxs[k] = steps_for(plan, values, self.ctxs[k])
            self.todo.append(None if steps is plan.steps else {step.index for step in steps})

    def wants(self, k: int, step: Step) -> bool:
        """Whether item ``k`` runs ``step`` (not a cache hit, and not blocked by a failure)."""
        wanted = self.todo[k]
        return (wanted is None or step.index in wanted) and not self.policies[k].blocked(step)

    def per_item(self, part: tuple[Step, ...]) -> None:
        """A segment of per-item steps, item after item."""
        k = 0
        while k < self.limit:
            values, item_ctx, policy = self.group[k], self.ctxs[k], self.policies[k]
            for step in part:
                if not self.wants(k, step):
                    continue
                try:
                    run_step(self.plan, step, values, item_ctx)
                except Exception as exc:
                    if not self.tolerant:
                        self.limit, self.failure = k, exc
                        break
                    policy.record(exc, step, item_ctx, self.start + k, values)
            k += 1

    def batch(self, step: Step) -> None:
        """A batch step, called once for the items that need it, with the layers around each."""
        group, ctxs, layers = self.group, self.ctxs, self.layers
        members = [k for k in range(self.limit) if self.wants(k, step)]
        tokens: dict[int, Any] = {}
        for k in list(members) if layers else ():
            found = run_before(layers, step, group[k], ctxs[k])
            if found is None:  # a pending step turned out a cache hit: loaded
                members.remove(k)
            else:
                tokens[k] = found
        if not members:
            return
        try:
            step.batch([group[k] for k in members], self.ctx)  # type: ignore[misc]
        except Exception as exc:
            self.batch_failed(step, members, tokens, exc)
            return
        for k in members if layers else ():
            run_after(layers, tokens[k], step, group[k], ctxs[k])

    def batch_failed(
        self, step: Step, members: list[int], tokens: dict[int, Any], exc: Exception
    ) -> None:
        """Every member of a failed batch call fails with its error."""
        group, ctxs = self.group, self.ctxs
        first = members[0]
        locate_failure(exc, step, ctxs[first], self.plan, group[first])
        for k in members:
            if self.layers:
                run_error(self.layers, tokens[k], step, group[k], ctxs[k], exc)
            if self.tolerant:
                self.policies[k].record(exc, step, ctxs[k], self.start + k, group[k])
        if not self.tolerant:
            self.limit, self.failure = first, exc


def groups(
    items: Iterable[dict[str, Any]], size: int
) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """``(start index, items)`` groups of at most ``size``, drawn lazily."""
    source = iter(items)
    start = 0
    while True:
        group = list(itertools.islice(source, size))
        if not group:
            return
        yield start, group
        start += len(group)


def run_groups(
    plan: Plan,
    items: Sequence[dict[str, Any]],
    start: int,
    ctx: RunContext,
    tolerant: bool,
    size: int,
) -> tuple[list[dict[str, Any]], BaseException | None]:
    """Run a chunk of items (numbered from ``start``) in groups of ``size``: the remote kit's
    worker side.  Rows up to the first failure (``raise``), and that failure."""
    rows: list[dict[str, Any]] = []
    for offset, group in groups(items, size):
        done, error = run_group(plan, group, start + offset, ctx, tolerant)
        rows.extend(done)
        if error is not None:
            return rows, error
    return rows, None


class _GroupRunner:
    """Stands in for the node executor: the map executor hands it one pseudo-item per group."""

    inline = False

    @property
    def inner(self) -> _GroupRunner:
        return self

    def offloads_items(self, plan: Plan) -> bool:
        return False

    def run_item(
        self, plan: Plan, values: dict[str, Any], ctx: RunContext, tolerant: bool, index: int
    ) -> tuple[int, list[dict[str, Any]], BaseException | None]:
        first = values[START_KEY]
        rows, error = run_group(plan, values[GROUP_KEY], first, ctx, tolerant)
        return first, rows, error

    async def arun_item(
        self,
        plan: Plan,
        values: dict[str, Any],
        ctx: RunContext,
        tolerant: bool,
        index: int,
        offload: Any,
    ) -> tuple[int, list[dict[str, Any]], BaseException | None]:
        return await offload(self.run_item, plan, values, ctx, tolerant, index)


GROUPS = _GroupRunner()


def pseudo_items(items: Iterable[dict[str, Any]], size: int) -> Iterator[dict[str, Any]]:
    """One pseudo-item per group of ``size`` items, for a map executor to schedule as a task."""
    for start, group in groups(items, size):
        yield {GROUP_KEY: group, START_KEY: start}


def map_batched(
    executor: Any, call: MapCall, items: Iterable[dict[str, Any]], count: int | None, size: int
) -> list[dict[str, Any]]:
    """Every row of the map, in input order: :func:`iter_batched` collected (sequentially, the
    groups run one after the other in this thread without a stream)."""
    if not executor.inline:
        return [row for _, row in iter_batched(executor, call, items, count, size)]
    rows: list[dict[str, Any]] = []
    for start, group in groups(items, size):
        done, error = run_group(call.plan, group, start, call.ctx, call.tolerant)
        rows.extend(done)
        if error is not None:
            raise error
    return rows


def iter_batched(
    executor: Any, call: MapCall, items: Iterable[dict[str, Any]], count: int | None, size: int
) -> Iterator[tuple[int, dict[str, Any]]]:
    """The map's ``(index, row)`` pairs, its items run in groups of ``size``: each group is one
    task of the map executor ``executor`` (sequential, threads, an event loop)."""
    tasks = None if count is None else -(-count // size)
    grouped = call.with_node(GROUPS)
    for _, (first, rows, error) in executor.iter_items(grouped, pseudo_items(items, size), tasks):
        for offset, row in enumerate(rows):
            yield first + offset, row
        if error is not None:
            raise error


#: items whose cache reads are batched into one read (for stores that set ``batch_reads``)
PREFETCH_ITEMS = 256


def run_prefetched(
    plan: Plan, values: dict[str, Any], ctx: RunContext, signed: Any, fetched: dict[bytes, Any]
) -> dict[str, Any]:
    """One item as :func:`run_item` runs it with a cache, from what ``cache.item.prefetch``
    found for its batch of items."""
    runners = plan.composed(ctx)[0]
    step = None
    try:
        steps, item_ctx = _cache.steps_for(plan, values, ctx, signed, fetched)
        for step in steps:
            runners[step.index](values, item_ctx)
    except Exception as exc:
        locate_failure(exc, step, ctx, plan, values)
        raise
    return plan.extract(values)


def run_items(plan: Plan, items: Iterable[dict[str, Any]], ctx: RunContext) -> list[dict[str, Any]]:
    """Run ``plan`` over ``items`` one after the other: the sequential map loop."""
    if ctx.cache is not None and ctx.dispatcher is None:
        return run_items_cached(plan, items, ctx)
    if ctx.dispatcher is not None:
        return _run_items_observed(plan, items, ctx)
    results: list[dict[str, Any]] = []
    append = results.append
    runners, extract = plan.runners, plan.extract
    values: dict[str, Any] = {}
    try:
        for values in items:  # run_item's bare loop, inlined: one frame less per node call
            for run in runners:
                run(values, ctx)
            append(extract(values))
    except Exception as exc:
        locate_failure(exc, plan.failed_step(values), ctx, plan, values)
        mark_item(exc, ctx.depth, len(results))
        raise
    return results


def _run_items_observed(
    plan: Plan, items: Iterable[dict[str, Any]], ctx: RunContext
) -> list[dict[str, Any]]:
    """:func:`run_items` with callbacks: item events around each item's steps."""
    results: list[dict[str, Any]] = []
    append = results.append
    runners, extract = plan.composed(ctx)[0], plan.extract
    for index, values in enumerate(items):
        item_ctx, start = events.item_started(index, ctx)
        ok = False
        step = None
        try:  # run_item's instrumented loop, inlined: one frame less per node call
            steps, step_ctx = steps_for(plan, values, item_ctx)
            for step in steps:
                runners[step.index](values, step_ctx)
            append(extract(values))
            ok = True
        except Exception as exc:
            locate_failure(exc, step, item_ctx, plan, values)
            mark_item(exc, ctx.depth, index)
            raise
        finally:
            events.item_finished(plan, values, index, item_ctx, start, ok)
    return results


def run_items_cached(
    plan: Plan, items: Iterable[dict[str, Any]], ctx: RunContext
) -> list[dict[str, Any]]:
    """The sequential map loop with a cache and no callbacks: per item, ``cache.item.steps_for``
    and the steps it returns.  A store that sets ``batch_reads`` (DiskCache: one query has a
    cost of its own) gets the items' requested keys in one read per :data:`PREFETCH_ITEMS`
    items."""
    runners = plan.composed(ctx)[0]
    extract = plan.extract
    cache = ctx.cache
    results: list[dict[str, Any]] = []
    append = results.append
    values: dict[str, Any] = {}
    step = None
    reuse = ctx.with_state(None)  # one item at a time: one item context, its state swapped
    try:
        if getattr(cache, "batch_reads", False):
            source = iter(items)
            while True:
                chunk = list(itertools.islice(source, PREFETCH_ITEMS))
                if not chunk:
                    break
                signed, wanted = _cache.prefetch(plan, chunk, ctx.call)
                fetched = cache.get_many(wanted) if wanted else {}
                for values, keys in zip(chunk, signed):
                    step = None
                    steps, item_ctx = _cache.steps_for(plan, values, ctx, keys, fetched, reuse)
                    for step in steps:
                        runners[step.index](values, item_ctx)
                    append(extract(values))
            return results
        for values in items:
            step = None
            steps, item_ctx = _cache.steps_for(plan, values, ctx, None, None, reuse)
            for step in steps:
                runners[step.index](values, item_ctx)
            append(extract(values))
    except Exception as exc:
        locate_failure(exc, step, ctx, plan, values)
        mark_item(exc, ctx.depth, len(results))
        raise
    return results


def run_map_item(
    plan: Plan,
    values: dict[str, Any],
    index: int,
    ctx: RunContext,
    run: Callable[[dict[str, Any], RunContext], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run one map item with item events around it; ``ctx`` is the map's context.

    ``run(values, item_ctx)`` runs the item (default: :func:`run_item`, the sequential loop).
    """
    item_ctx, start = events.item_started(index, ctx)
    ok = False
    try:
        result = run(values, item_ctx) if run is not None else run_item(plan, values, item_ctx)
        ok = True
        return result
    finally:
        events.item_finished(plan, values, index, item_ctx, start, ok)


class ObservedItems:
    """Wraps a node executor so that every map item it runs reports item events.

    Map executors only ever call ``run_item``/``arun_item`` of their node executor, so wrapping it
    gives the same item events under every map executor, worker processes included.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.inline = inner.inline

    def offloads_items(self, plan: Plan) -> bool:
        return self.inner.offloads_items(plan)

    def run_item(
        self, plan: Plan, values: dict[str, Any], ctx: RunContext, tolerant: bool, index: int
    ) -> dict[str, Any]:
        def run(item_values: dict[str, Any], item_ctx: RunContext) -> dict[str, Any]:
            return self.inner.run_item(plan, item_values, item_ctx, tolerant, index)

        return run_map_item(plan, values, index, ctx, run)

    async def arun_item(
        self,
        plan: Plan,
        values: dict[str, Any],
        ctx: RunContext,
        tolerant: bool,
        index: int,
        offload: Any,
    ) -> dict[str, Any]:
        item_ctx, start = events.item_started(index, ctx)
        ok = False
        try:
            row = await self.inner.arun_item(plan, values, item_ctx, tolerant, index, offload)
            ok = True
            return row
        finally:
            events.item_finished(plan, values, index, item_ctx, start, ok)

    def __repr__(self) -> str:
        return f"ObservedItems({self.inner!r})"


# ---------------------------------------------------------------------------------------------
# The chunk of items a worker process received


def run_chunk_items(
    plan: Plan,
    items: Sequence[dict[str, Any]],
    start: int | None,
    ctx: RunContext,
    node: Any,
    tolerant: bool,
) -> tuple[list[dict[str, Any]], BaseException | None]:
    """Run the items a worker received, numbered from ``start`` (None: ``Pipeline.run``'s one
    item, not a map item), with the node executor ``node`` (None: steps one after the other).

    Returns the rows and the error that stopped the chunk: nothing is raised, so that the
    remote kit can send it back whole.  A plan with batch nodes runs the chunk in groups.
    """
    rows: list[dict[str, Any]] = []
    single = start is None
    index = start or 0
    try:
        if plan.segments is not None and not single:
            size = batch_size_for(plan, getattr(ctx.engine, "batch_size", None))
            return run_groups(plan, list(items), index, ctx, tolerant, size)
        inline = node is None or node.inline
        observed = ctx.dispatcher is not None and not single
        if inline and not tolerant and not observed:
            for values in items:
                rows.append(run_item(plan, values, ctx))
                index += 1
            return rows, None
        runner = node if not inline else _INLINE
        if observed:
            runner = ObservedItems(runner)
        for values in items:
            rows.append(runner.run_item(plan, values, ctx, tolerant, index))
            index += 1
    except Exception as exc:
        if not single:
            mark_item(exc, ctx.depth, index)
        return rows, exc
    return rows, None


class _Inline:
    """An item's steps one after the other in this thread (a worker's default node executor)."""

    inline = True

    def run_item(
        self, plan: Plan, values: dict[str, Any], ctx: RunContext, tolerant: bool, index: int
    ) -> dict[str, Any]:
        if tolerant:
            return run_item_inline(plan, values, ctx, tolerant, index)
        return run_item(plan, values, ctx)


_INLINE = _Inline()
