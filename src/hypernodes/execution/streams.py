"""Task streams: many tasks run through a ``submit`` and streamed back under one error policy.

Executors supply only ``submit(fn, *args) -> Future`` (or, on an event loop, a coroutine
starter); these streams decide what is in flight.  :func:`stream` hands out one task per
``submit``; :func:`stream_batched` and :func:`astream_batched` hand out *batches* of map items,
sized to how long items take.  With ``raise`` semantics the lowest failing task wins (ordered)
and nothing new starts after a failure; Ctrl-C or a consumer that stops early cancels what has
not started.
"""

from __future__ import annotations

import asyncio
import sys
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from time import perf_counter, thread_time
from typing import Any

#: how often a waiting caller wakes up, so that Ctrl-C reaches the main thread promptly
POLL_SECONDS = 0.2

Submit = Callable[..., Future]


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


# ---------------------------------------------------------------------------------------------
# Many items, handed to workers in batches
#
# One future (or task) per item costs tens of microseconds - more than a trivial item itself.  So
# a map's items go to the workers in *batches*: one task runs several items one after the other.
# The size adapts to how long items take: 1 until items are seen to be quick, then as many as
# fit in ``BATCH_SECONDS``.  A batch that runs past ``CUTOFF_SECONDS`` (its items turned slow:
# a warm prefix of cache hits followed by real I/O) stops and hands its remaining items back, to
# be run as batches of their own, so batching never serialises slow items.  Rows keep the
# ``(index, row)`` contract and the error policy of the per-task streams above.

#: how long a batch aims to run: long enough that handing it to a worker costs ~1%
BATCH_SECONDS = 0.002


#: a batch that has run this long gives its remaining items back, to run concurrently
CUTOFF_SECONDS = 0.01


#: the most items one batch holds
MAX_BATCH = 512


#: a map holds at most this many times ``window`` batches (when ordered, done ones wait for
#: the slowest running one before them), and at most ``HOLD_FACTOR * (window + MAX_BATCH)``
#: items, so memory stays bounded whatever the input's length
HOLD_FACTOR = 4


#: what a batch returns: the rows of the items it ran (in order), the exception of the item after
#: them if that one failed, the seconds it ran, and the CPU seconds of its thread meanwhile
Outcome = tuple[list[Any], BaseException | None, float, float]


class StopLine:
    """Shared by a map and its running batches: items with an index above ``limit`` must not
    start (a failure at a lower index was seen, Ctrl-C, or the consumer stopped)."""

    __slots__ = ("limit",)

    def __init__(self) -> None:
        self.limit = sys.maxsize


def run_batch(
    run: Callable[[int, dict[str, Any]], Any],
    pairs: Sequence[tuple[int, dict[str, Any]]],
    stop: StopLine,
) -> Outcome:
    """Run ``(index, values)`` pairs one after the other (in a worker); see :data:`Outcome`.

    Stops early - the caller sees fewer rows than pairs - before an item past ``stop.limit``,
    at the first failure, or once the batch has run for ``CUTOFF_SECONDS``.
    """
    rows: list[Any] = []
    append = rows.append
    start, cpu = perf_counter(), thread_time()
    last = len(pairs) - 1
    try:
        prefetch = getattr(run, "prefetch", None)
        hints = prefetch(pairs) if prefetch is not None else None
        if hints is not None:
            prefetched = run.prefetched  # type: ignore[attr-defined]
        for k, (index, values) in enumerate(pairs):
            if index > stop.limit:
                break
            append(run(index, values) if hints is None else prefetched(index, values, hints[k]))
            if k < last and perf_counter() - start > CUTOFF_SECONDS:
                break
    except BaseException as exc:
        return rows, exc, perf_counter() - start, thread_time() - cpu
    return rows, None, perf_counter() - start, thread_time() - cpu


class _Slot:
    """Consecutive items of a map that are handed over as one batch."""

    __slots__ = ("pairs", "rows", "state", "error")

    def __init__(self, pairs: list[tuple[int, Any]]) -> None:
        self.pairs = pairs
        #: ``(index, row)`` of the items that ran
        self.rows: list[tuple[int, Any]] = []
        #: 0 waiting to be submitted, 1 running, 2 done
        self.state = 0
        self.error: BaseException | None = None


class Batches:
    """The bookkeeping of a batched map, shared by the thread and event-loop drivers.

    Slots (batches) are kept in index order; at most ``window`` of them run at once, and at
    most ``HOLD_FACTOR * window`` slots holding at most ``HOLD_FACTOR * (window + MAX_BATCH)``
    items are held (running, waiting, or - when ``ordered`` - done but waiting for the ones
    before them).  Items are drawn from ``items`` lazily, in the driver's
    thread.  With ``adaptive`` False every batch
    holds one item (tasks that must run one by one, such as coroutines on the loop).
    """

    def __init__(
        self, items: Iterable[Any], window: int, ordered: bool, adaptive: bool = True
    ) -> None:
        self.source = enumerate(items)
        self.window = max(1, window)
        #: slots held at most: running ones plus, when ordered, done ones waiting for earlier ones
        self.hold = HOLD_FACTOR * self.window
        self.hold_items = HOLD_FACTOR * (self.window + MAX_BATCH)
        #: items drawn and not yet handed out
        self.held = 0
        self.ordered = ordered
        self.adaptive = adaptive
        self.slots: deque[_Slot] = deque()
        self.stop = StopLine()
        self.exhausted = False
        self.running = 0
        #: (index, exception) of the failure that wins (lowest index when ordered)
        self.failed: tuple[int, BaseException] | None = None
        #: seconds per item of the last batch seen (None: none seen yet)
        self.per_item: float | None = None
        #: the last ``to_submit`` stopped drawing early: call it again without waiting
        self.more = False

    def size(self) -> int:
        """How many items the next batch takes."""
        per = self.per_item
        if per is None or not self.adaptive:
            return 1
        if per * MAX_BATCH <= BATCH_SECONDS:
            return MAX_BATCH
        return max(1, int(BATCH_SECONDS / per))

    def to_submit(self) -> list[_Slot]:
        """The slots to hand to workers now (marked running): waiting ones first, then new ones
        drawn from the items while the window has room."""
        out: list[_Slot] = []
        limit = self.stop.limit
        if self.running < self.window:
            for slot in self.slots:
                if slot.state == 0:
                    if slot.pairs[0][0] > limit:
                        slot.state, slot.pairs = 2, []
                        continue
                    slot.state = 1
                    self.running += 1
                    out.append(slot)
                    if self.running >= self.window:
                        break
        start = perf_counter()
        while (
            not self.exhausted
            and self.failed is None
            and len(self.slots) < self.hold
            and self.running < self.window
            and self.held < self.hold_items
        ):
            pairs = self._draw(min(self.size(), self.hold_items - self.held))
            if not pairs:
                break
            self.held += len(pairs)
            slot = _Slot(pairs)
            slot.state = 1
            self.running += 1
            self.slots.append(slot)
            out.append(slot)
            if perf_counter() - start > BATCH_SECONDS:
                # Items arrive slowly (a live stream): hand out the rows done meanwhile, and
                # come back for more without waiting for a batch to finish.
                self.more = True
                return out
        self.more = False
        return out

    def _draw(self, size: int) -> list[tuple[int, Any]]:
        source = self.source
        if size == 1:
            pair = next(source, None)
            if pair is None:
                self.exhausted = True
                return []
            return [pair]
        pairs: list[tuple[int, Any]] = []
        append = pairs.append
        start = perf_counter()
        for pair in source:
            append(pair)
            if len(pairs) >= size:
                return pairs
            if perf_counter() - start > BATCH_SECONDS:
                return pairs  # items arrive slowly (a live stream): do not hold them back
        self.exhausted = True
        return pairs

    def settle(self, slot: _Slot, future: Future | asyncio.Future[Any]) -> None:
        """Record a done batch from its future: cancelled (no rows), the executor itself failed
        (a broken pool: the error), or the batch's own outcome."""
        if future.cancelled():
            self.finished(slot, ([], None, 0.0, 0.0))
            return
        exc = future.exception()
        self.finished(slot, ([], exc, 0.0, 0.0) if exc is not None else future.result())

    def finished(self, slot: _Slot, outcome: Outcome) -> None:
        """Record what a batch returned: rows, a failure, and the items it gave back."""
        rows, error, seconds, cpu = outcome
        pairs = slot.pairs
        n = len(rows)
        rate = None
        if n:
            # Many batches at once share the GIL: a batch of quick items then takes longer by
            # about the number running.  When that explains its time, size by the CPU time
            # its items took; otherwise (waiting on I/O) by the time they took.
            crowded = seconds <= cpu * (self.running + 1) * 1.5
            rate = (cpu if crowded else seconds) / n
            # Follow items getting quicker at once, slower gradually: one slow batch (a worker
            # opening a connection, say) does not make every batch one item again.
            before = self.per_item
            self.per_item = (
                rate if before is None or rate < before else before + (rate - before) / 4
            )
            slot.rows.extend(zip([i for i, _ in pairs[:n]], rows))
        self.running -= 1
        slot.state = 2
        slot.pairs = []
        if error is not None:
            slot.error = error
            self._fail(pairs[n][0], error)
            return
        rest = [pair for pair in pairs[n:] if pair[0] <= self.stop.limit]
        if not rest:
            return
        # Items given back (they turned slow): new slots right after this one, sized by how
        # long this batch's items took.
        size = 1 if not rate else max(1, min(MAX_BATCH, int(BATCH_SECONDS / rate)))
        parts = [_Slot(rest[i : i + size]) for i in range(0, len(rest), size)]
        position = self.slots.index(slot) + 1
        for offset, part in enumerate(parts):
            self.slots.insert(position + offset, part)

    def _fail(self, index: int, error: BaseException) -> None:
        if self.ordered:
            if self.failed is None or index < self.failed[0]:
                self.failed = (index, error)
                self.stop.limit = min(self.stop.limit, index - 1)
        elif self.failed is None:
            self.failed = (index, error)
            self.stop.limit = -1

    def ready(self) -> tuple[list[tuple[int, Any]], BaseException | None]:
        """Rows that can be handed out now, and the error to raise after them (if any)."""
        slots = self.slots
        out: list[tuple[int, Any]] = []
        if self.ordered:
            while slots and slots[0].state == 2:
                slot = slots.popleft()
                out.extend(slot.rows)
                self.held -= len(slot.rows)
                if slot.error is not None:
                    return out, slot.error
            return out, None
        error = None
        for slot in [s for s in slots if s.state == 2]:
            slots.remove(slot)
            out.extend(slot.rows)
            self.held -= len(slot.rows)
            if slot.error is not None and error is None:
                error = slot.error
        return out, error

    def over(self) -> bool:
        """Nothing is held and nothing more will be drawn."""
        return not self.slots and (self.exhausted or self.failed is not None)

    def halt(self) -> None:
        """Let no further item start (the map ends early: Ctrl-C, an error, an early stop)."""
        self.stop.limit = -1


def stream_batched(
    submit: Submit,
    run: Callable[[int, dict[str, Any]], Any],
    items: Iterable[dict[str, Any]],
    window: int,
    ordered: bool = True,
) -> Iterator[tuple[int, Any]]:
    """``(index, run(index, item))`` for every item, run in batches through ``submit``: in input
    order, or as batches complete when not ``ordered``.

    At most ``window`` batches run at once (see :class:`Batches`).  Ordered, the lowest failing
    index wins and the rows before it are yielded first; unordered, the first failure seen is
    raised.  Either way no item after a failure starts, and the items running then finish
    before it is raised; Ctrl-C, or a consumer that stops early, stops every batch before its
    next item and cancels the batches not started.
    """
    batches = Batches(items, window, ordered)
    running: dict[Future, _Slot] = {}
    failed = False
    try:
        while True:
            for slot in batches.to_submit():
                running[submit(run_batch, run, slot.pairs, batches.stop)] = slot
            rows, error = batches.ready()
            if rows:
                yield from rows
            if error is not None:
                raise error
            if not running:
                if batches.over():
                    return
                continue
            pause = 0 if batches.more else POLL_SECONDS
            done, _ = wait(running, timeout=pause, return_when=FIRST_COMPLETED)
            for future in done:
                batches.settle(running.pop(future), future)
    except Exception:
        failed = True
        raise
    finally:
        batches.halt()
        for future in running:
            future.cancel()
        if failed:
            # An item failed: the items already running (a thread cannot be stopped) finish
            # first, so their work is stored and their events are over before the error
            # reaches the caller.  Ctrl-C and an early stop do not wait.
            wait(running)


async def astream_batched(
    start: Callable[[list[tuple[int, Any]], StopLine], Awaitable[Outcome]],
    items: Iterable[Any],
    window: int,
    ordered: bool = True,
    adaptive: bool = True,
) -> AsyncIterator[list[tuple[int, Any]]]:
    """The event-loop twin of :func:`stream_batched`: ``start(pairs, stop)`` runs a batch (in a
    thread, or as a coroutine); yields lists of ``(index, row)`` as they are ready.  With
    ``adaptive`` False every batch holds one item."""
    batches = Batches(items, window, ordered, adaptive)
    running: dict[asyncio.Future[Any], _Slot] = {}
    failed = False
    try:
        while True:
            for slot in batches.to_submit():
                running[asyncio.ensure_future(start(slot.pairs, batches.stop))] = slot
            rows, error = batches.ready()
            if rows:
                yield rows
            if error is not None:
                raise error
            if not running:
                if batches.over():
                    return
                continue
            pause = 0 if batches.more else None
            done, _ = await asyncio.wait(
                running, timeout=pause, return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                batches.settle(running.pop(task), task)
    except Exception:
        failed = True
        raise
    finally:
        batches.halt()
        if failed and running:
            # As in stream_batched: the items already running finish (work offloaded to a
            # thread would go on anyway) before the error reaches the caller.
            await asyncio.wait(running)
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)


async def arun_one(
    start: Callable[[int, Any], Awaitable[Any]], pairs: list[tuple[int, Any]], stop: StopLine
) -> Outcome:
    """A batch of one item run as a coroutine on the loop (``start(index, item)``)."""
    index, values = pairs[0]
    if index > stop.limit:
        return [], None, 0.0, 0.0
    began = perf_counter()
    try:
        row = await start(index, values)
    except asyncio.CancelledError:
        raise
    except BaseException as exc:
        return [], exc, perf_counter() - began, 0.0
    return [row], None, perf_counter() - began, 0.0
