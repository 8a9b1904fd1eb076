"""The remote kit: everything that runs map items in another process and brings their work back.

Every engine whose items leave the caller's process (``map_executor="parallel"``, a user's
process-based executor, Dask workers, Daft UDFs) uses the same three parts:

- :class:`PlanSpec` (caller side): a picklable description of a compiled plan and the context it
  runs in - the plan's nodes, requested outputs and provided names, the cache (a ``DiskCache``
  travels as its path, a ``MemoryCache`` as a snapshot that journals its writes), the hooks the
  caller's callbacks handle, the node executor and the error policy.  Its bytes are made once per
  (plan, context) and sent with every chunk; a worker compiles them once (keyed by ``token``).
- :func:`run_chunk` / :func:`run_items` (worker side): run a chunk of items and return a
  :class:`Reply` - rows, the callback events recorded while running them, the cache entries
  written (for stores that do not share state across processes), and the error that stopped the
  chunk, if any.  Nothing is raised across the process boundary, so an error keeps its type and
  note even where the transport (Daft) would flatten it.
- :meth:`PlanSpec.receive` (caller side): replay the events in item order through the caller's
  dispatcher, import the cache writes, raise the chunk's error or return its rows.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pickle
import threading
import traceback
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..cache.base import collect_warnings, drain_warnings, relay_warnings
from ..cache.signatures import CallInfo, cache_plan
from ..exceptions import UnpicklableError, WorkerCrashedError
from ..model.graph import PipelineGraph
from ..observe.callbacks import EventRecorder
from . import byvalue
from .context import RunContext
from .item_error import ItemError
from .loops import run_chunk_items
from .plan import Plan, compile_plan
from .portable import RemoteError, dumps

#: compiled plans in this (worker) process, by spec token, most recently used last
_COMPILED: OrderedDict[str, _WorkerPlan] = OrderedDict()
_COMPILED_LOCK = threading.Lock()
_KEEP = 16

#: the specs this process made, by token (for a backend that re-sends one item of a chunk)
_SPECS: weakref.WeakValueDictionary[str, PlanSpec] = weakref.WeakValueDictionary()

#: bumped when a pipeline is changed in place (hypernodes.testing.patch): specs pickled before
#: then may hold its old nodes, so they are not reused
_EPOCH = [0]

_state = threading.local()
#: set in a process that runs chunks for another one (a pool or cluster worker)
_WORKER_PROCESS = False
#: names this process in the specs it makes, so that a chunk run by a thread of the caller's own
#: process (a Dask cluster started with ``processes=False``) does not mark it as a worker
_PROCESS = uuid.uuid4().hex


def _process_id() -> str:
    """This process: a forked child keeps the module's uuid, so its pid is part of the name."""
    return f"{_PROCESS}-{os.getpid()}"


def in_worker() -> bool:
    """Whether this process (or thread) runs remote items: a map nested in one runs right there."""
    return _WORKER_PROCESS or getattr(_state, "depth", 0) > 0


@dataclass(slots=True)
class Reply:
    """What a worker sends back for one chunk of items."""

    rows: list[dict[str, Any]]
    #: callback events recorded in the worker (only hooks the caller handles)
    events: list[Any] = field(default_factory=list)
    #: cache entries written by a store that does not share state across processes
    writes: list[tuple[bytes, Any]] = field(default_factory=list)
    #: the exception that stopped the chunk (``on_error="raise"``): the items after it did not run
    error: BaseException | None = None
    #: cache warnings issued in the worker (a full disk, a cache that cannot open)
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Caller side


class PlanSpec:
    """A plan and its running context, in a form that can be sent to other processes.

    Build it with :meth:`for_call`, which reuses the bytes while the same plan runs in the same
    context.  ``token`` names the spec in workers; ``blob`` is the cloudpickle of what a worker
    needs to compile the plan and rebuild the context.  ``where`` names the destination in
    error messages (``"a worker process of map_executor='parallel'"``).
    """

    __slots__ = ("token", "blob", "outputs", "tolerant", "where", "local", "_refs", "__weakref__")

    def __init__(
        self,
        plan: Plan,
        ctx: RunContext,
        node_executor: Any,
        on_error: str,
        where: str,
        local: bool = False,
    ) -> None:
        self.outputs = plan.output_names
        self.tolerant = on_error == "continue"
        self.where = where
        #: the workers run on this machine, with this sys.path (see byvalue.user_modules)
        self.local = local
        nodes = [step.node for step in plan.steps]
        label = ctx.path[-1] if ctx.path else "pipeline"
        hooks = recorded_hooks(ctx)
        # Callbacks stay in this process: workers record the events the caller handles.
        recorder = EventRecorder(hooks) if hooks else None
        worker_ctx = RunContext(ctx.engine, ctx.cache, recorder, ctx.path, ctx.items)
        payload = (
            nodes,
            plan.output_names,
            plan.provided,
            label,
            worker_ctx,
            node_executor,
            plan.resources,
            _statics(plan, ctx),
        )
        try:
            self.blob = byvalue.dumps((payload, on_error == "continue", _process_id()), local)
        except Exception as exc:
            raise unpicklable_payload(nodes, worker_ctx, exc, where) from exc
        self.token = uuid.uuid4().hex
        _SPECS[self.token] = self
        # Weak references only: a plan outlives engines, and must not keep them (or their
        # worker processes) alive.
        self._refs = _weak((ctx.engine, ctx.cache, node_executor))

    @staticmethod
    def forget_all() -> None:
        """Make every spec made so far stale: a pipeline was changed in place, and the bytes of
        a spec that nests it would still hold its old nodes."""
        _EPOCH[0] += 1

    @staticmethod
    def for_token(token: str) -> PlanSpec:
        """The spec named ``token`` in this (the caller's) process, while it is in use."""
        return _SPECS[token]

    @classmethod
    def for_call(
        cls,
        plan: Plan,
        ctx: RunContext,
        node_executor: Any,
        on_error: str,
        where: str,
        local: bool = False,
    ) -> PlanSpec:
        """The spec for ``plan`` in ``ctx``, kept on the plan and reused while the engine, cache,
        node executor, path, recorded hooks and error policy stay the same."""
        key = (
            ctx.path,
            ctx.items,
            recorded_hooks(ctx),
            on_error,
            where,
            local,
            _statics(plan, ctx),
            _EPOCH[0],
        )
        objects = (ctx.engine, ctx.cache, node_executor)
        specs: dict[Any, PlanSpec] = plan.specs
        found = specs.get(key)
        refs = found._refs if found is not None else None
        if refs is not None and all(ref() is obj for ref, obj in zip(refs, objects)):
            return found  # type: ignore[return-value]
        spec = cls(plan, ctx, node_executor, on_error, where, local)
        if len(specs) >= _KEEP:
            specs.clear()
        specs[key] = spec
        return spec

    def chunks(
        self,
        items: Iterable[dict[str, Any]],
        size: int | Iterable[int],
        tokens: dict[str, bytes] | None = None,
        first: int = 0,
    ) -> Iterator[tuple[int, bytes]]:
        """``(start index, pickled items)`` chunks of at most ``size`` items (or of the sizes
        it gives, see :func:`split`), made lazily and numbered from ``first``.

        ``tokens`` are the cache tokens of the inputs every item shares (see :func:`tokens_of`).
        """
        for start, chunk in split(items, size, first):
            yield start, self.dump_items(chunk, start, tokens)

    def dump_items(
        self, chunk: list[dict[str, Any]], start: int, tokens: dict[str, bytes] | None = None
    ) -> bytes:
        """The pickled values of ``chunk`` (with the ``tokens`` of its shared inputs, so that
        a worker need not hash them again); an unpicklable input is named with its item index."""
        try:
            return byvalue.dumps((chunk, tokens), self.local)
        except Exception as exc:
            raise unpicklable_values(chunk, start, exc, "input", f"sent to {self.where}") from exc

    def receive(self, reply: Reply | bytes, ctx: RunContext) -> list[dict[str, Any]]:
        """Replay a chunk's events and cache writes here; raise its error or return its rows."""
        rows, error = self.accept(reply, ctx)
        if error is not None:
            raise error
        return rows

    def accept(
        self, reply: Reply | bytes, ctx: RunContext
    ) -> tuple[list[dict[str, Any]], BaseException | None]:
        """Replay a chunk's events and cache writes here; its rows, and the error that stopped it
        (the rows are those of the items before the failing one)."""
        if not isinstance(reply, Reply):
            reply = pickle.loads(reply)
        if reply.events and ctx.dispatcher is not None:
            ctx.dispatcher.replay(reply.events)
        if reply.writes and ctx.cache is not None:
            ctx.cache.import_writes(reply.writes)
        if reply.warnings:
            relay_warnings(reply.warnings)
        return reply.rows, reply.error


def _weak(objects: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """Weak references to ``objects`` (``None`` stands for itself); None if one has none."""
    refs = []
    for obj in objects:
        if obj is None:
            refs.append(lambda: None)
            continue
        try:
            refs.append(weakref.ref(obj))
        except TypeError:
            return None
    return tuple(refs)


def crashed_reply(spec: PlanSpec, index: int, detail: str) -> Reply:
    """The reply for map item ``index`` that killed its worker process even when run alone:
    an :class:`~hypernodes.ItemError` row under ``continue``, else the error."""
    error = WorkerCrashedError(
        f"map item {index} killed the worker process running it, also when run alone ({detail}); "
        "the other items were not affected",
        [index],
    )
    if spec.tolerant:
        failed = ItemError(error, None, index)
        return Reply([dict.fromkeys(spec.outputs, failed)])
    return Reply([], error=error)


def merge_replies(replies: Sequence[Reply]) -> Reply:
    """One reply for consecutive chunks: rows, events and writes in order, the first error."""
    merged = Reply([])
    for reply in replies:
        merged.rows.extend(reply.rows)
        merged.events.extend(reply.events)
        merged.writes.extend(reply.writes)
        merged.warnings.extend(reply.warnings)
        if reply.error is not None:
            merged.error = reply.error
            break
    return merged


def split(
    items: Iterable[dict[str, Any]], size: int | Iterable[int], first: int = 0
) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """``(start index, items)`` chunks of at most ``size`` items (or of the successive sizes
    ``size`` gives), numbered from ``first`` (their values hold the user's names only: nothing
    to strip before they travel)."""
    source = iter(items)
    sizes = itertools.repeat(size) if isinstance(size, int) else iter(size)
    start = first
    while True:
        chunk = list(itertools.islice(source, next(sizes)))
        if not chunk:
            return
        yield start, chunk
        start += len(chunk)


def _statics(plan: Plan, ctx: RunContext) -> tuple[bytes | None, ...] | None:
    """The static digests of ``plan``'s steps that the caller's cache computed for this call,
    for workers to sign with (None: workers compute them, as for a plan cut out of this one)."""
    call = ctx.call
    return call.statics if call is not None and call.plan is plan else None


def tokens_of(ctx: RunContext) -> dict[str, bytes] | None:
    """The cache tokens of the inputs every item of this map call shares, or None."""
    call = ctx.call
    return call.shared_tokens() if call is not None else None


def recorded_hooks(ctx: RunContext) -> tuple[str, ...]:
    """The hooks the caller's callbacks handle: what workers must record."""
    dispatcher = ctx.dispatcher
    if dispatcher is None:
        return ()
    return tuple(hook for hook, listeners in dispatcher.listeners.items() if listeners)


# ---------------------------------------------------------------------------------------------
# Worker side


class _WorkerPlan:
    """A spec compiled in a worker: the plan, the worker context and how items run."""

    __slots__ = ("plan", "ctx", "node", "tolerant", "lock", "caller", "statics")

    def __init__(self, blob: bytes) -> None:
        payload, tolerant, caller = byvalue.loads(blob, "the pipeline")
        nodes, outputs, provided, label, ctx, node, resources, statics = payload
        #: the process that made the spec (this one, for an in-process cluster's threads)
        self.caller: str = caller
        if caller != _process_id():
            collect_warnings()  # cache warnings go back to the caller with the rows
        pgraph = PipelineGraph(nodes, label)
        self.plan = compile_plan(pgraph, outputs, provided, label, resources)
        self.ctx: RunContext = ctx
        #: the node executor items run with (None: their steps one after the other)
        self.node = node
        self.tolerant: bool = tolerant
        #: one chunk at a time per compiled spec: the recorder and the cache journal are shared
        self.lock = threading.Lock()
        #: the caller's static digests of the steps, when it had them for this very plan
        self.statics = statics

    def call_info(
        self, items: Sequence[dict[str, Any]], tokens: dict[str, bytes] | None
    ) -> CallInfo:
        """The cache's per-call data for a chunk: the caller's static digests (else made here,
        once per chunk), and the caller's tokens of the inputs every item shares."""
        plan = self.plan
        call = CallInfo(plan, cache_plan(plan), self.statics)
        if tokens and items:
            call.recall(items[0], tokens)  # a pickled chunk keeps shared values one object
        return call

    def run(
        self,
        items: Sequence[dict[str, Any]],
        start: int | None,
        tokens: dict[str, bytes] | None = None,
    ) -> Reply:
        plan, ctx, node, tolerant = self.plan, self.ctx, self.node, self.tolerant
        if ctx.cache is not None:
            ctx = ctx.for_call(self.call_info(items, tokens))
        _state.depth = getattr(_state, "depth", 0) + 1
        defer = getattr(ctx.cache, "defer", None)
        deferred = defer() if defer is not None else contextlib.nullcontext()
        try:
            with deferred:
                rows, error = run_chunk_items(plan, items, start, ctx, node, tolerant)
        finally:
            _state.depth -= 1
        recorder = ctx.dispatcher
        events = recorder.drain() if isinstance(recorder, EventRecorder) else []
        cache = ctx.cache
        writes = cache.export_writes() if cache is not None else []
        relayed = drain_warnings() if self.caller != _process_id() else []
        return Reply(rows, events, writes, error, relayed)


def compiled(token: str, blob: bytes) -> _WorkerPlan:
    """The worker's compiled plan for a spec (compiled on first use, kept for the next chunks)."""
    with _COMPILED_LOCK:
        found = _COMPILED.get(token)
        if found is not None:
            _COMPILED.move_to_end(token)
            return found
    made = _WorkerPlan(blob)
    with _COMPILED_LOCK:
        found = _COMPILED.setdefault(token, made)
        while len(_COMPILED) > _KEEP:
            _COMPILED.popitem(last=False)
    return found


def run_items(
    token: str,
    blob: bytes,
    items: Sequence[dict[str, Any]],
    start: int | None,
    tokens: dict[str, bytes] | None = None,
) -> Reply:
    """Run ``items`` (numbered from ``start``) of the spec ``token``/``blob`` in this process.

    For engines whose workers hand back Python objects (a Daft UDF); the reply is not pickled.
    The item dicts are the worker's own: running fills them in place.  ``start=None`` runs one item as ``Pipeline.run`` does: not as a map item.  ``tokens`` are
    the cache tokens of inputs every item shares (see :func:`tokens_of`).
    """
    worker = compiled(token, blob)
    with worker.lock:
        return worker.run(items, start, tokens)


def run_chunk(token: str, blob: bytes, chunk: bytes, start: int) -> bytes:
    """Run a pickled chunk of items in this (worker) process; the :class:`Reply` as bytes."""
    global _WORKER_PROCESS
    if compiled(token, blob).caller != _process_id():
        _WORKER_PROCESS = True  # maps nested in this process's items run right here
    items, tokens = byvalue.loads(chunk, "the map's items")
    reply = run_items(token, blob, items, start, tokens)
    return dump_reply(reply, start)


def dump_reply(reply: Reply, start: int) -> bytes:
    """Pickle a reply; what cannot travel is replaced by an error naming it."""
    try:
        return dumps(reply)
    except Exception as exc:
        if reply.error is not None and pickles(reply.error) is not None:
            reply.error = _portable_error(reply.error)
            return dump_reply(reply, start)
        if pickles(reply.rows) is not None:
            reply.error = unpicklable_values(
                reply.rows, start, exc, "output", "sent back from a worker process"
            )
        elif pickles(reply.events) is not None:
            reply.error = UnpicklableError(
                f"callback events of the map items from {start} on cannot be sent back from a "
                f"worker process: {exc}"
            )
        else:
            reply.error = _portable_error(exc)
        reply.rows, reply.events, reply.writes = [], [], []
        return dumps(reply)


def _portable_error(exc: BaseException) -> RemoteError:
    text = "".join(traceback.format_exception(exc)).strip()
    error = RemoteError(
        f"{type(exc).__module__}.{type(exc).__qualname__} raised in a worker process could not be "
        f"sent back as itself:\n{text}"
    )
    for note in getattr(exc, "__notes__", ()):
        error.add_note(note)
    return error


# ---------------------------------------------------------------------------------------------
# Saying what cannot be pickled


def pickles(obj: Any) -> Exception | None:
    """The error pickling ``obj`` raises, or None when it pickles."""
    import cloudpickle

    try:
        cloudpickle.dumps(obj)
    except Exception as exc:
        return exc
    return None


def unpicklable_values(
    dicts: Sequence[dict[str, Any]], start: int, exc: Exception, kind: str, where: str
) -> UnpicklableError:
    """Name the first value of ``dicts`` that cannot be pickled, with its item index."""
    for offset, values in enumerate(dicts):
        for name, value in values.items():
            problem = pickles(value)
            if problem is not None:
                return UnpicklableError(
                    f"{kind} {name!r} of map item {start + offset} cannot be {where}: {problem}. "
                    "Use picklable values (plain data, arrays, dataframes, dataclasses), create "
                    "such objects inside the node, or use map_executor='threaded'"
                )
    return UnpicklableError(f"map items cannot be {where}: {exc}")


def unpicklable_payload(
    nodes: Sequence[Any], ctx: RunContext, exc: Exception, where: str
) -> UnpicklableError:
    """Name the node (or cache, or engine) that keeps a plan from being sent to ``where``."""
    culprit = _find_unpicklable_node(nodes, ())
    if culprit is not None:
        path, problem = culprit
        return UnpicklableError(
            f"node {' > '.join(path)!r} must be sent to {where}, but it cannot be pickled: "
            f"{problem}. Its function, or something it uses (a global, a closure variable, a "
            "default value), holds an object that cannot be copied to another process, such as "
            "a lock, an open file or a client connection. Create that object inside the "
            "function, or use map_executor='threaded'"
        )
    for what, obj in (("the cache", ctx.cache), ("the engine", ctx.engine)):
        problem = pickles(obj)
        if problem is not None:
            return UnpicklableError(
                f"{what} ({obj!r}) must be sent to {where}, but it cannot be pickled: {problem}"
            )
    return UnpicklableError(f"the pipeline cannot be sent to {where}: {exc}")


def _find_unpicklable_node(
    nodes: Sequence[Any], path: tuple[str, ...]
) -> tuple[tuple[str, ...], Exception] | None:
    for item in nodes:
        problem = pickles(item)
        if problem is None:
            continue
        where = (*path, item.name)
        nested = getattr(item, "pipeline", None)  # a pipeline used as a node
        if nested is not None:
            inner = _find_unpicklable_node(nested.nodes, where)
            if inner is not None:
                return inner
        return where, problem
    return None
