"""The remote driver: a map whose items run in other processes, on any backend.

A backend (``"parallel"``'s process pool, a Dask cluster) is a :class:`Backend`: it runs one
chunk as a task and says what a dead worker looks like.  A user's process executor gives a plain
``submit``.  The driver does the rest, the same for all: it runs a map nested inside a worker right
there, makes the plan's spec once, cuts the items into pickled chunks with at most a window of
them in flight (each waited on by a relay thread), replays each chunk's events and cache writes
here, in item order, before its rows are yielded, and isolates crashes: a chunk whose worker died
is run again, then item by item, so that only the item that kills its worker fails.
"""

from __future__ import annotations

import itertools
import pickle
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from ..cache.item import leading_hits
from .context import MapCall, RunContext
from .remote import PlanSpec, Reply, crashed_reply, in_worker, merge_replies, run_chunk, tokens_of
from .streams import stream

Rows = Iterator[tuple[int, dict[str, Any]]]

#: most items sent to a worker in one task by default
MAX_CHUNK = 1024


class Backend:
    """What a remote backend gives the driver: :meth:`once` runs one pickled chunk as a task and
    returns its pickled reply; :attr:`crashes` are the exceptions that mean the worker running
    it died.

    A chunk whose worker died is run again whole :attr:`whole_retries` times (most of its items
    were only bystanders of another chunk's culprit), then one item per task, each item
    :attr:`item_tries` times before it is blamed with
    :class:`~hypernodes.exceptions.WorkerCrashedError` (its row's value under
    ``on_error="continue"``).  ``isolating`` is held while a chunk runs item by item, so that its
    items do not die with another chunk's culprit; share one lock per pool or cluster.
    """

    crashes: tuple[type[BaseException], ...] = ()
    whole_retries = 0
    item_tries = 1

    def __init__(self, isolating: threading.Lock | None = None) -> None:
        self.isolating = isolating or threading.Lock()

    def once(self, token: str, blob: Any, chunk: bytes, start: int) -> bytes | Reply:
        """Run ``chunk`` (items numbered from ``start``) as one task and wait for its reply."""
        raise NotImplementedError

    def stop(self) -> None:
        """The map is over (an error or a consumer that stopped may end it early): cancel the
        tasks still running, so that the relay threads return."""

    def interrupt(self) -> None:
        """Ctrl-C reached the map: stop at once (before the relay threads are waited for)."""
        self.stop()

    def run(self, fn: Any, token: str, blob: Any, chunk: bytes, start: int) -> bytes | Reply:
        """Run a chunk, surviving the crash of the workers it lands on (see the class)."""
        try:
            return self.once(token, blob, chunk, start)
        except self.crashes:
            pass
        with self.isolating:
            for _ in range(self.whole_retries):
                try:
                    return self.once(token, blob, chunk, start)
                except self.crashes:
                    pass
            spec = PlanSpec.for_token(token)
            items, tokens = pickle.loads(chunk)
            replies: list[Reply] = []
            for offset, values in enumerate(items):
                reply = self._single(spec, blob, values, start + offset, tokens)
                replies.append(reply)
                if reply.error is not None:
                    break
            return merge_replies(replies)

    def _single(
        self, spec: PlanSpec, blob: Any, values: dict[str, Any], index: int, tokens: Any
    ) -> Reply:
        """One item alone; a crash is blamed on it when it happens ``item_tries`` times."""
        single = spec.dump_items([values], index, tokens)
        for attempt in range(self.item_tries):
            try:
                reply = self.once(spec.token, blob, single, index)
                return reply if isinstance(reply, Reply) else pickle.loads(reply)
            except self.crashes as exc:
                if attempt == self.item_tries - 1:
                    return crashed_reply(spec, index, first_line(exc))
        raise AssertionError("unreachable")


def remote_map(
    where: str,
    call: MapCall,
    items: Iterable[dict[str, Any]],
    count: int | None,
    *,
    workers: int,
    backend: Backend | None = None,
    submit: Any = None,
    chunk_size: int | Iterator[int] | None = None,
    window: int | None = None,
    local: bool = False,
) -> Rows:
    """Run the items of ``call`` on a :class:`Backend` (or through a plain ``submit``) in chunks
    and yield ``(index, row)``.  ``local``: the workers run on this machine with this
    ``sys.path``, so only the user's modules they could not import travel by value.

    ``where`` names the destination in error messages (``"a worker process of
    map_executor='parallel'"``).  Inside a worker (a map nested in a remote item), or for no
    items, the items run here one by one.
    """
    if in_worker() or count == 0:
        yield from ((index, call.item(index, values)) for index, values in enumerate(items))
        return
    left_over: list[Any] = []
    yield from warm_prefix(call, items, left_over)
    rest, first = left_over
    if rest is None:
        return  # every item was a cache hit: no worker was needed
    on_error = "continue" if call.tolerant else "raise"
    spec = PlanSpec.for_call(call.plan, call.ctx, call.node.inner, on_error, where, local)
    left = None if count is None else count - first
    ctx, ordered = call.ctx, call.ordered
    if backend is None:
        yield from remote_items(
            submit, spec, rest, left, workers, ctx, ordered, chunk_size, window, first
        )
    else:
        yield from drive(
            backend, spec, rest, left, workers, ctx, ordered, chunk_size, window, first
        )


#: how many items the caller looks up at first (then :data:`PROBE_ITEMS` at a time) before a
#: remote map, to run the leading cache hits here without starting a worker
PROBE_FIRST = 8
PROBE_ITEMS = 256


def warm_prefix(call: MapCall, items: Iterable[dict[str, Any]], left_over: list[Any]) -> Rows:
    """Run here the leading items of ``call`` whose every requested output is in the cache
    (loading them, with the usual events), so that a warm map never starts a worker pool or a
    cluster; yield their ``(index, row)`` pairs.  ``left_over`` receives the items left from the
    first miss on (None when there are none) and the index of that first miss.

    The look-ups stop at the first miss: a cold map pays for one small batch of them, a map that
    grew (new items at the end) runs its warm prefix here and the rest on the workers.
    """
    ctx = call.ctx
    source = iter(items)
    if ctx.cache is None or ctx.call is None:
        left_over[:] = [source, 0]
        return
    index, size = 0, PROBE_FIRST
    while True:
        chunk = list(itertools.islice(source, size))
        if not chunk:
            left_over[:] = [None, index]
            return
        hits = leading_hits(call.plan, chunk, ctx.call, ctx.cache)
        for values in chunk[:hits]:
            yield index, call.item(index, values)
            index += 1
        if hits < len(chunk):
            left_over[:] = [itertools.chain(chunk[hits:], source), index]
            return
        size = PROBE_ITEMS


def drive(
    backend: Backend,
    spec: PlanSpec,
    items: Iterable[dict[str, Any]],
    count: int | None,
    workers: int,
    ctx: RunContext,
    ordered: bool = True,
    chunk_size: int | Iterator[int] | None = None,
    window: int | None = None,
    first: int = 0,
) -> Rows:
    """:func:`remote_items` on ``backend``: one relay thread per chunk in flight waits on its
    task (and, after a crash, runs it again or item by item) for the stream's loop.  Ctrl-C
    interrupts the backend before the relay threads are waited for."""
    window = window or 2 * workers
    relays = ThreadPoolExecutor(window, thread_name_prefix="hypernodes-relay")
    submit = partial(relays.submit, backend.run)
    try:
        yield from remote_items(
            submit, spec, items, count, workers, ctx, ordered, chunk_size, window, first
        )
    except KeyboardInterrupt:
        backend.interrupt()
        raise
    finally:
        backend.stop()
        relays.shutdown(wait=True, cancel_futures=True)


def remote_items(
    submit: Any,
    spec: PlanSpec,
    items: Iterable[dict[str, Any]],
    count: int | None,
    workers: int,
    ctx: RunContext,
    ordered: bool = True,
    chunk_size: int | Iterator[int] | None = None,
    window: int | None = None,
    first: int = 0,
) -> Rows:
    """Run ``items`` (numbered from ``first``) in chunks through ``submit(run_chunk, token,
    blob, chunk, start)`` (which returns a ``concurrent.futures.Future``) and yield ``(index,
    row)``, in input order or chunk by chunk as they complete, after replaying each chunk's
    events and cache writes here.

    At most ``window`` chunks (default ``2 * workers``) are in flight, so a long map holds only
    that many; the default chunk size spreads ``count`` items over about four chunks per worker,
    at most :data:`MAX_CHUNK` items each; for an unknown count the chunks grow (see
    :func:`growing_sizes`).  ``chunk_size`` may also be an iterator of successive sizes.
    """
    if chunk_size is None and count is None:
        size: int | Iterator[int] = growing_sizes(UNKNOWN_FIRST, MAX_CHUNK)
    else:
        size = chunk_size or default_chunk_size(count, workers)
    chunks = spec.chunks(items, size, tokens_of(ctx), first)
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


#: the first chunk of a map of unknown length (an iterator): small, so the first rows come soon
UNKNOWN_FIRST = 64


def growing_sizes(first: int, cap: int) -> Iterator[int]:
    """Chunk sizes for a map of unknown length: ``first`` items, then twice as many each chunk
    up to ``cap``.  Small chunks first give early rows and keep a short stream short; large ones
    later keep a long stream from paying one task per few hundred items (a multiple of a batch
    size stays one)."""
    size = first
    while True:
        yield size
        size = min(cap, size * 2) if size < cap else size


def default_chunk_size(count: int | None, workers: int) -> int:
    """About four chunks per worker (so that uneven items even out), at most :data:`MAX_CHUNK`;
    for an unknown count, small chunks first would be ideal, so a moderate fixed size."""
    if count is None:
        return 64
    return max(1, min(MAX_CHUNK, -(-count // (max(1, workers) * 4))))


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type when it has none)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
