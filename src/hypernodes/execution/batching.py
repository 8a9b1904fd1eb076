"""Batch nodes: one call of a node for many map items, in a plan whose other nodes run per item.

A node with a batch implementation (``@node(batch=True)``, or a dual node made with
``node.batch(fn)``/``@node(batch=fn)``) compiles to a step with two runners: ``run`` for one item
(a batch of one, or the per-item function of a dual node), which every per-item path uses
(``Pipeline.run``, nested runs, any executor), and ``batch(values_list, ctx)`` which calls the
batch function once with a list per input and hands each item its element of the result.

A plan with batch steps is cut into *segments* (:func:`segments`): runs of per-item steps, and
the batch steps between them.  :func:`run_batch` runs a group of items through the segments -
each per-item segment item by item, then each batch step once over the items that need it - with
the same cache (per item), callback events (per item) and error policy as a per-item run.  Every
engine uses it: the local engine hands groups of items to its map executor as single tasks
(:func:`iter_batched`), and the remote kit's workers (``"parallel"``, Dask, Daft UDFs) cut each
chunk they receive into groups (:func:`run_groups`).

Errors: a batch call that raises fails every item in it.  With ``on_error="raise"`` the lowest
failing item of the group wins, as in a sequential run (items before it still finish); with
``"continue"`` each item of the failed call holds the :class:`~hypernodes.ItemError`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ..exceptions import OutputShapeError
from ..model.checks import unfinished_hint, unfinished_kind
from ..model.resources import Resource
from ..observe import events
from .plan import locate_failure, mark_item
from .scheduling import Policy

if TYPE_CHECKING:
    from .context import RunContext
    from .plan import Plan, Step

#: items per batch when neither the node (``resources={"batch_size": n}``) nor the engine says
DEFAULT_BATCH_SIZE = 64

#: keys of the pseudo-item that carries a group of items through a map executor
GROUP_KEY = "\x00batch:items"
START_KEY = "\x00batch:start"


# ---------------------------------------------------------------------------------------------
# Compiling


def segments(steps: Sequence[Step]) -> tuple[tuple[tuple[Step, ...] | Step, ...], int | None]:
    """The plan's steps as segments (a tuple of per-item steps, or one batch step), and the
    batch size its batch nodes ask for (the smallest ``batch_size`` hint, or None)."""
    parts: list[tuple[Step, ...] | Step] = []
    run: list[Step] = []
    sizes: list[int] = []
    for step in steps:
        if step.batch is None:
            run.append(step)
            continue
        if run:
            parts.append(tuple(run))
            run = []
        parts.append(step)
        hints = getattr(step.node, "resources", None) or {}
        if "batch_size" in hints:
            sizes.append(hints["batch_size"])
    if run:
        parts.append(tuple(run))
    return tuple(parts), (min(sizes) if sizes else None)


def one_item(
    call: Callable[..., Any], n_args: int, whole: tuple[int, ...], n_outputs: int, name: str
) -> Callable[..., Any]:
    """A batch function as a per-item function: each argument (but resources) in a one-element
    list, and the one element of each output taken back."""
    listed = tuple(i not in whole for i in range(n_args))

    def call_one(*args: Any) -> Any:
        result = call(*[[a] if wrap else a for a, wrap in zip(args, listed)])
        if n_outputs == 1:
            return _column(result, 1, name, None)[0]
        columns = _columns(result, n_outputs, 1, name)
        return tuple(column[0] for column in columns)

    return call_one


_FREE: Any = object()  # an argument read from the values, not bound


def batch_runner(
    node: Any,
    call: Callable[..., Any],
    keys: tuple[str, ...],
    store: tuple[str, ...],
    whole: tuple[int, ...],
    fixed: dict[int, Any],
) -> Callable[[list[dict[str, Any]], Any], None]:
    """``run(values_list, ctx)``: call the batch function once with one list per argument (a
    resource whole, a bound default repeated per item) and store each item's outputs in its
    values dict."""
    name = node.name
    outputs = node.outputs
    parts = tuple((key, i in whole, fixed.get(i, _FREE)) for i, key in enumerate(keys))
    pairs = tuple((i, out) for i, out in enumerate(outputs) if out in store)

    def args_of(group: list[dict[str, Any]]) -> list[Any]:
        args = []
        for key, is_whole, default in parts:
            if default is not _FREE:
                args.append([default] * len(group))
            elif is_whole:
                value = group[0][key]
                args.append(value.get() if isinstance(value, Resource) else value)
            else:
                args.append([values[key] for values in group])
        return args

    if len(outputs) == 1:
        (out,) = outputs

        def run(group: list[dict[str, Any]], ctx: Any) -> None:
            result = _column(call(*args_of(group)), len(group), name, None)
            for values, value in zip(group, result):
                values[out] = value

        return run

    def run_many(group: list[dict[str, Any]], ctx: Any) -> None:
        columns = _columns(call(*args_of(group)), len(outputs), len(group), name)
        for i, out in pairs:
            for values, value in zip(group, columns[i]):
                values[out] = value

    return run_many


def _column(result: Any, n: int, name: str, output: str | None) -> Any:
    """``result`` checked to be a sequence of ``n`` values (a list, tuple, array, ...)."""
    try:
        size = len(result)
    except TypeError:
        size = -1
    if size != n or isinstance(result, (str, bytes, dict)):
        what = f"output {output!r} of batch node {name!r}" if output else f"batch node {name!r}"
        kind = unfinished_kind(result)
        advice = unfinished_hint(kind) if kind else "return a list with one value per item"
        shown = f"{type(result).__name__}" + ("" if size < 0 else f" of length {size}")
        raise OutputShapeError(f"{what} got {n} item(s) but returned {shown}; {advice}")
    return result


def _columns(result: Any, n_outputs: int, n: int, name: str) -> Sequence[Any]:
    if not isinstance(result, (tuple, list)) or len(result) != n_outputs:
        kind = unfinished_kind(result)
        advice = (
            unfinished_hint(kind)
            if kind
            else f"return a tuple of {n_outputs} lists, each with one value per item"
        )
        raise OutputShapeError(
            f"batch node {name!r} declares {n_outputs} outputs but returned "
            f"{type(result).__name__}; {advice}"
        )
    return [_column(column, n, name, f"#{i}") for i, column in enumerate(result)]


# ---------------------------------------------------------------------------------------------
# Running a group of items


def run_batch(
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
    """:func:`run_batch` with a cache, callbacks or ``on_error="continue"``."""
    from .layers import _after, _before, _error

    n = len(group)
    observed = ctx.dispatcher is not None
    started: list[tuple[RunContext, float]] = []
    if observed:
        started = [events._item_started(start + k, ctx) for k in range(n)]
    ctxs = [pair[0] for pair in started] if observed else [ctx] * n
    policies = [Policy(tolerant) for _ in range(n)]
    todo: list[set[int] | None] = []
    for k, values in enumerate(group):
        steps, ctxs[k] = plan.steps_for(values, ctxs[k])
        todo.append(None if steps is plan.steps else {step.index for step in steps})
    layers = _layers(plan, ctx)
    limit = n
    failure: BaseException | None = None
    try:
        for part in plan.segments or ():
            if limit == 0:
                break
            if type(part) is tuple:
                k = 0
                while k < limit:
                    values, item_ctx, policy, wanted = group[k], ctxs[k], policies[k], todo[k]
                    for step in part:
                        if (wanted is not None and step.index not in wanted) or policy.blocked(
                            step
                        ):
                            continue
                        try:
                            plan.run_step(step, values, item_ctx)
                        except Exception as exc:
                            if not tolerant:
                                limit, failure = k, exc
                                break
                            policy.record(exc, step, item_ctx, start + k, values)
                    k += 1
                continue
            step: Step = part  # type: ignore[assignment]
            members = [
                k
                for k in range(limit)
                if (todo[k] is None or step.index in todo[k])  # type: ignore[operator]
                and not policies[k].blocked(step)
            ]
            tokens: dict[int, Any] = {}
            if layers:
                for k in list(members):
                    found = _before(layers, step, group[k], ctxs[k])
                    if found is None:  # a pending step turned out a cache hit: loaded
                        members.remove(k)
                    else:
                        tokens[k] = found
            if not members:
                continue
            try:
                step.batch([group[k] for k in members], ctx)  # type: ignore[misc]
            except Exception as exc:
                first = members[0]
                locate_failure(exc, step, ctxs[first], plan, group[first])
                for k in members:
                    if layers:
                        _error(layers, tokens[k], step, group[k], ctxs[k], exc)
                    if tolerant:
                        policies[k].record(exc, step, ctxs[k], start + k, group[k])
                if not tolerant:
                    limit, failure = first, exc
                continue
            if layers:
                for k in members:
                    _after(layers, tokens[k], step, group[k], ctxs[k])
    finally:
        if observed:
            for k, (item_ctx, began) in enumerate(started):
                events._item_finished(plan, group[k], start + k, item_ctx, began, k < limit)
    if failure is not None:
        mark_item(failure, ctx.depth, start + limit)
    rows = [policies[k].row(plan, group[k]) for k in range(limit)]
    return rows, failure


def _layers(plan: Plan, ctx: RunContext) -> list[Any]:
    """The around layers a step of ``plan`` gets in ``ctx`` (as ``Plan.composed`` builds them)."""
    layers: list[Any] = []
    if ctx.cache is not None:
        from .layers.cache import CacheLayer

        layers.append(CacheLayer(plan))
    if ctx.dispatcher is not None:
        from .layers.events import EVENTS

        layers.append(EVENTS)
    return layers


def batch_size_for(plan: Plan, engine_size: int | None) -> int:
    """Items per group: the batch nodes' hint, else the engine's, else the default."""
    return plan.batch_size or engine_size or DEFAULT_BATCH_SIZE


def chunk_size_for(plan: Plan, size: int, engine_size: int | None) -> int:
    """A chunk size for a remote map of ``plan``: ``size``, rounded up to whole batches when
    the plan has batch nodes (a worker groups each chunk it receives)."""
    if plan.segments is None:
        return size
    batch = batch_size_for(plan, engine_size)
    return max(batch, -(-size // batch) * batch)


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
        done, error = run_batch(plan, group, start + offset, ctx, tolerant)
        rows.extend(done)
        if error is not None:
            return rows, error
    return rows, None


# ---------------------------------------------------------------------------------------------
# Through a local map executor


class _GroupRunner:
    """Stands in for the node executor: the map executor hands it one pseudo-item per group."""

    def run_item(
        self, plan: Plan, values: dict[str, Any], ctx: RunContext, tolerant: bool, index: int
    ) -> tuple[int, list[dict[str, Any]], BaseException | None]:
        first = values[START_KEY]
        rows, error = run_batch(plan, values[GROUP_KEY], first, ctx, tolerant)
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
    executor: Any,
    plan: Plan,
    items: Iterable[dict[str, Any]],
    count: int | None,
    ctx: RunContext,
    tolerant: bool,
    size: int,
) -> list[dict[str, Any]]:
    """Every row of the map, in input order: :func:`iter_batched` collected (sequentially, the
    groups run one after the other in this thread without a stream)."""
    if type(executor).__name__ != "SequentialExecutor":
        return [
            row for _, row in iter_batched(executor, plan, items, count, ctx, tolerant, True, size)
        ]
    rows: list[dict[str, Any]] = []
    for start, group in groups(items, size):
        done, error = run_batch(plan, group, start, ctx, tolerant)
        rows.extend(done)
        if error is not None:
            raise error
    return rows


def iter_batched(
    executor: Any,
    plan: Plan,
    items: Iterable[dict[str, Any]],
    count: int | None,
    ctx: RunContext,
    tolerant: bool,
    ordered: bool,
    size: int,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """The map's ``(index, row)`` pairs, its items run in groups of ``size``: each group is one
    task of the map executor ``executor`` (sequential, threads, an event loop)."""
    tasks = None if count is None else -(-count // size)
    results = executor.iter_items(
        GROUPS, plan, pseudo_items(items, size), tasks, ctx, tolerant, ordered
    )
    for _, (first, rows, error) in results:
        for offset, row in enumerate(rows):
            yield first + offset, row
        if error is not None:
            raise error
