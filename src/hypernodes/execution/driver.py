"""The remote driver: a map whose items run in other processes, on any backend that submits.

A backend (``"parallel"``'s process pool, a user's process executor, a Dask cluster) supplies
``submit(run_chunk, token, blob, chunk, start) -> Future``; the driver does the rest, the same
for all: it runs a map nested inside a worker right there, makes the plan's spec once, cuts the
items into pickled chunks with at most a window of them in flight, and replays each chunk's
events and cache writes here, in item order, before its rows are yielded.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from .context import RunContext
from .loops import item_task
from .plan import Plan
from .remote import PlanSpec, in_worker, run_chunk, tokens_of
from .streams import stream

Rows = Iterator[tuple[int, dict[str, Any]]]

#: most items sent to a worker in one task by default
MAX_CHUNK = 1024


def remote_map(
    submit: Any,
    workers: int,
    where: str,
    node: Any,
    plan: Plan,
    items: Iterable[dict[str, Any]],
    count: int | None,
    ctx: RunContext,
    tolerant: bool,
    ordered: bool = True,
    chunk_size: int | None = None,
) -> Rows:
    """Run a map's items through ``submit`` in chunks and yield ``(index, row)``.

    ``where`` names the destination in error messages (``"a worker process of
    map_executor='parallel'"``); ``node`` is the node executor items run with there.  Inside a
    worker (a map nested in a remote item), or for no items, the items run here one by one.
    """
    if in_worker() or count == 0:
        return (
            (index, item_task(node, plan, values, ctx, tolerant, index))
            for index, values in enumerate(items)
        )
    on_error = "continue" if tolerant else "raise"
    spec = PlanSpec.for_call(plan, ctx, node.inner, on_error, where)
    return remote_items(submit, spec, items, count, workers, ctx, ordered, chunk_size)


def remote_items(
    submit: Any,
    spec: PlanSpec,
    items: Iterable[dict[str, Any]],
    count: int | None,
    workers: int,
    ctx: RunContext,
    ordered: bool = True,
    chunk_size: int | None = None,
    window: int | None = None,
) -> Rows:
    """Run ``items`` in chunks through ``submit(run_chunk, token, blob, chunk, start)`` (which
    returns a ``concurrent.futures.Future``) and yield ``(index, row)``, in input order or chunk
    by chunk as they complete, after replaying each chunk's events and cache writes here.

    At most ``window`` chunks (default ``2 * workers``) are in flight, so a long map holds only
    that many; the default chunk size spreads ``count`` items over about four chunks per worker,
    at most :data:`MAX_CHUNK` items each.
    """
    size = chunk_size or default_chunk_size(count, workers)
    chunks = spec.chunks(items, size, tokens_of(ctx))
    tasks = ((run_chunk, spec.token, spec.blob, blob, start) for start, blob in chunks)
    starts: list[int] = []

    def numbered() -> Iterator[tuple[Any, ...]]:
        for task in tasks:
            starts.append(task[4])
            yield task

    for position, reply in stream(submit, numbered(), window or 2 * workers, ordered):
        start = starts[position]
        rows, error = spec.accept(reply, ctx)
        for offset, row in enumerate(rows):
            yield start + offset, row
        if error is not None:
            raise error


def default_chunk_size(count: int | None, workers: int) -> int:
    """About four chunks per worker (so that uneven items even out), at most :data:`MAX_CHUNK`;
    for an unknown count, small chunks first would be ideal, so a moderate fixed size."""
    if count is None:
        return 64
    return max(1, min(MAX_CHUNK, -(-count // (max(1, workers) * 4))))
