"""``RunLog``: a callback that records every run in a SQLite database, as the run goes.

``callbacks=[RunLog("runs/")]`` (or ``HYPERNODES_RUN_LOG=runs/`` for every pipeline of a
process) writes, for each top-level call, who ran what with which engine, and per node and item
when it ran, how long, and how it ended: ran, cached, failed, retried or timed out, with the
error and the failing inputs' short reprs.  ``hypernodes runs list/show/watch`` and
``hypernodes report`` read it back (the tables are described in
:mod:`hypernodes.telemetry.runlog_store`).

A hook only appends a tuple to a queue; a writer thread turns the queue into rows every
``flush_interval`` seconds (``executemany`` in one transaction), and the end of a top-level call
writes what is left before the call returns.  Events from worker processes (``parallel``, Dask)
come through the usual relay, with the times they happened there.
"""

from __future__ import annotations

import atexit
import json
import os
import platform
import secrets
import socket
import sys
import threading
import time
import weakref
from collections import deque
from pathlib import Path
from typing import Any

from ..exceptions import NodeTimeoutError
from ..execution.failure import failure_inputs
from ..observe.callbacks import CallbackContext, PipelineCallback
from . import runlog_store as store

_MISSING = object()
#: how long a failure waits for the run to attach its inputs before it is written without them
_INPUTS_GRACE = 2.0
#: packages whose versions a run records when they are imported
_PACKAGES = ("hypernodes", "dask", "distributed", "daft", "ray", "numpy", "pandas", "cloudpickle")

_structures: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def short_repr(value: Any, limit: int = 120) -> str:
    """``repr(value)`` cut to ``limit`` characters (a repr that raises is named, not raised)."""
    try:
        text = repr(value)
    except Exception as exc:
        text = f"<{type(value).__name__}: repr failed: {exc}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def structure_of(pipeline: Any) -> dict[str, Any]:
    """A JSON-ready description of ``pipeline``'s graph: inputs, outputs and nodes (each with its
    inputs, outputs and, for a nested pipeline, its own structure and ``map_over``)."""
    nodes = []
    for item in pipeline.pgraph.nodes:
        entry: dict[str, Any] = {
            "name": item.name,
            "inputs": list(item.inputs),
            "outputs": list(item.outputs),
        }
        inner = getattr(item, "pipeline", None)
        if inner is not None:
            entry["pipeline"] = structure_of(inner)
            entry["map_over"] = list(getattr(item, "map_over", None) or ())
        nodes.append(entry)
    return {
        "name": pipeline.label,
        "inputs": list(pipeline.root_args),
        "outputs": list(pipeline.output_names),
        "nodes": nodes,
    }


def _structure_json(pipeline: Any) -> str | None:
    """The structure as JSON, worked out once per pipeline object."""
    try:
        return _structures[pipeline]
    except KeyError:
        pass
    except TypeError:  # not weak-referenceable
        return json.dumps(structure_of(pipeline))
    text = _structures[pipeline] = json.dumps(structure_of(pipeline))
    return text


def _engine_info(engine: Any) -> dict[str, Any]:
    info = {"engine": type(engine).__name__, "repr": short_repr(engine, 300)}
    for role in ("node_executor", "map_executor"):
        executor = getattr(engine, role, None)
        if executor is not None:
            info[role] = executor if isinstance(executor, str) else short_repr(executor, 200)
    return info


_VERSIONS: dict[str, str] = {}


def _versions() -> dict[str, str]:
    """The Python version and those of the packages of :data:`_PACKAGES` that are imported."""
    from importlib import metadata

    found = {"python": platform.python_version()}
    for name in _PACKAGES:
        if name not in sys.modules:
            continue
        if name not in _VERSIONS:
            try:
                _VERSIONS[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                _VERSIONS[name] = getattr(sys.modules[name], "__version__", "?")
        found[name] = _VERSIONS[name]
    return found


def _error_status(error: BaseException) -> str:
    return "timed_out" if isinstance(error, NodeTimeoutError) else "failed"


class _Run:
    """What the log keeps about one top-level call while it runs: its id, how many node calls
    failed, and the status of map items that did not simply run (cached, failed)."""

    __slots__ = ("run_id", "failed", "marks", "errors", "total", "done")

    def __init__(self, run_id: str, total: int | None) -> None:
        self.run_id = run_id
        self.failed = 0
        #: the top-level map's items, and how many of them finished
        self.total = total
        self.done = 0
        self.marks: dict[tuple[Any, ...], str] = {}
        #: the errors recorded so far (the last few), so that one error is one failure
        self.errors: deque[BaseException] = deque(maxlen=64)


_LOGS: weakref.WeakSet[RunLog] = weakref.WeakSet()


@atexit.register
def _flush_all() -> None:
    """At exit, write what every run log still has queued."""
    for log in list(_LOGS):
        log.flush(final=True)


def _after_fork() -> None:
    """In a forked child: the parent's connection, locks and writer thread are not ours."""
    for log in list(_LOGS):
        log._reset()


os.register_at_fork(after_in_child=_after_fork)


def new_run_id() -> str:
    """A run id that sorts by start time: ``20260101-120000-1a2b3c``."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


class RunLog(PipelineCallback):
    """Records runs in ``<folder>/runs.sqlite`` (see the module docstring).

    ``folder`` is created if needed; many processes may log to the same folder at once.
    ``flush_interval`` is how often (seconds) rows are written while a call runs;
    ``inputs_limit`` cuts the repr of each failing input.  ``enable=False`` turns it off (it
    then receives no events).  ``flush()`` writes what is queued now; ``close()`` also stops the
    writer and closes the database.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        flush_interval: float = 0.5,
        inputs_limit: int = 120,
        enable: bool = True,
    ) -> None:
        self.folder = Path(folder).resolve()
        self.path = store.database_path(self.folder)
        self.flush_interval = flush_interval
        self.inputs_limit = inputs_limit
        self.enabled = bool(enable)
        self._key = f"hypernodes.runlog.{id(self)}"
        self._nodes: deque[tuple[Any, ...]] = deque()
        self._items: deque[tuple[Any, ...]] = deque()
        self._meta: deque[tuple[Any, ...]] = deque()
        self._held: list[tuple[Any, ...]] = []  # failures waiting for their inputs
        self._write_lock = threading.Lock()
        self._conn: Any = None
        self._active = 0  # top-level calls in flight
        self._thread_lock = threading.Lock()  # guards _active and _thread
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._host = socket.gethostname()
        _LOGS.add(self)

    def _reset(self) -> None:
        """Start afresh (a forked child): no queue, connection, writer or call in flight."""
        self._nodes.clear()
        self._items.clear()
        self._meta.clear()
        self._held = []
        self._write_lock = threading.Lock()
        self._thread_lock = threading.Lock()
        self._conn = None  # the parent's: never used (nor closed) here
        self._active = 0
        self._wake = threading.Event()
        self._thread = None

    def __repr__(self) -> str:
        return f"RunLog({os.fspath(self.folder)!r})"

    # -- runs ---------------------------------------------------------------------------------

    def _begin(self, context: CallbackContext, kind: str, pipeline: str, total: int | None) -> None:
        if context.depth != 0 or self._key in context.state:
            return
        run = context.state[self._key] = _Run(new_run_id(), total)
        origin = context.origin
        structure = engine = None
        if origin is not None:
            structure = _structure_json(origin.pipeline)
            engine = json.dumps(_engine_info(origin.engine))
        started = context.event_time
        self._meta.append(
            (
                "INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    run.run_id,
                    pipeline,
                    kind,
                    total,
                    structure,
                    engine,
                    json.dumps(_versions()),
                    self._host,
                    os.getpid(),
                    started,
                    None,
                    "running",
                    None,
                    started,
                ),
            )
        )
        with self._thread_lock:
            self._active += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="hypernodes-runlog", daemon=True
                )
                self._thread.start()

    def _finish(self, context: CallbackContext) -> None:
        if context.depth != 0:
            return
        run = context.state.pop(self._key, None)
        if run is None:
            return
        ended = context.event_time
        status = "failed" if run.failed else "ok"
        if not run.failed and run.total is not None and run.done < run.total:
            status = "stopped"  # interrupted, or an imap closed before its end
        self._meta.append(
            (
                "UPDATE runs SET ended = ?, status = ?, updated = ? WHERE run_id = ?",
                (ended, status, ended, run.run_id),
            )
        )
        with self._thread_lock:
            self._active -= 1
        self.flush(final=True)

    def _run(self, context: CallbackContext) -> _Run | None:
        return context.state.get(self._key)

    # -- hooks --------------------------------------------------------------------------------

    def on_pipeline_start(
        self, *, pipeline: str, inputs: Any, context: CallbackContext, **kwargs: Any
    ) -> None:
        self._begin(context, "run", pipeline, None)

    def on_pipeline_end(
        self, *, pipeline: str, outputs: Any, duration: float, context: CallbackContext, **kw: Any
    ) -> None:
        self._finish(context)

    def on_map_start(
        self, *, pipeline: str, total: int, context: CallbackContext, **kwargs: Any
    ) -> None:
        self._begin(context, "map", pipeline, total)

    def on_map_end(
        self, *, pipeline: str, total: int, duration: float, context: CallbackContext, **kw: Any
    ) -> None:
        self._finish(context)

    def on_node_end(
        self, *, node: str, outputs: Any, duration: float, context: CallbackContext, **kw: Any
    ) -> None:
        run = context.state.get(self._key)
        if run is not None:
            end = context.event_time
            self._nodes.append(
                (run.run_id, context.path, context.items, node, "ran", end, duration)
            )

    def on_node_cached(
        self, *, node: str, signature: str, context: CallbackContext, **kwargs: Any
    ) -> None:
        run = context.state.get(self._key)
        if run is not None:
            end = context.event_time
            self._nodes.append((run.run_id, context.path, context.items, node, "cached", end, 0.0))

    def on_node_retry(
        self,
        *,
        node: str,
        attempt: int,
        error: BaseException,
        delay: float,
        context: CallbackContext,
        **kwargs: Any,
    ) -> None:
        run = context.state.get(self._key)
        if run is not None:
            row = (run.run_id, context.path, context.items, node, "retried", context.event_time)
            self._nodes.append((*row, None, attempt, error))

    def on_error(
        self, *, node: str | None, error: BaseException, context: CallbackContext, **kwargs: Any
    ) -> None:
        run = context.state.get(self._key)
        if run is None:
            return
        for depth in range(len(context.path)):  # the item fails, and the items it is nested in
            run.marks[(context.path[: depth + 1], context.items[: depth + 1])] = "failed"
        if any(seen is error for seen in run.errors):
            return  # a nested pipeline step passing on the error of a node inside it
        run.errors.append(error)
        run.failed += 1
        status = _error_status(error)
        row = (run.run_id, context.path, context.items, node or "", status, context.event_time)
        self._nodes.append((*row, None, None, error))

    def on_map_item_cached(self, *, index: int, context: CallbackContext, **kwargs: Any) -> None:
        run = context.state.get(self._key)
        if run is not None:
            run.marks.setdefault((context.path, context.items), "cached")

    def on_map_item_end(
        self, *, index: int, duration: float, context: CallbackContext, **kwargs: Any
    ) -> None:
        run = context.state.get(self._key)
        if run is not None:
            status = run.marks.pop((context.path, context.items), "ok")
            if context.depth == 0:
                run.done += 1
            end = context.event_time
            self._items.append((run.run_id, context.path, context.items, status, end, duration))

    # -- writing ------------------------------------------------------------------------------

    def _loop(self) -> None:
        """The writer thread: a flush every ``flush_interval`` while calls are in flight."""
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            self.flush()
            with self._thread_lock:
                if self._active <= 0:
                    self._thread = None
                    return

    def flush(self, final: bool = False) -> None:
        """Write the queued rows now (``final``: also failures still waiting for inputs)."""
        with self._write_lock:
            if not (self._nodes or self._items or self._meta or self._held):
                return
            if self._conn is None:
                self._conn = store.connect(self.path)
            meta = _drain(self._meta)
            nodes, failed = self._node_rows(_drain(self._nodes), final or self._active <= 0)
            items = _batches(_drain(self._items))
            self._write(meta, nodes, failed, items)

    def _write(
        self,
        meta: list[tuple[Any, ...]],
        nodes: list[tuple[Any, ...]],
        failed: list[tuple[Any, ...]],
        items: list[tuple[Any, ...]],
    ) -> None:
        conn = self._conn
        runs = {row[0] for row in nodes} | {row[0] for row in items} | {r[0] for r in failed}
        stamp = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for sql, params in meta:
                conn.execute(sql, params)
            if nodes:
                conn.executemany(_INSERT_NODES, nodes)
            if items:
                conn.executemany(_INSERT_ITEMS, items)
            if failed:
                conn.executemany(_INSERT_FAILURES, failed)
            conn.executemany(
                "UPDATE runs SET updated = ? WHERE run_id = ? AND ended IS NULL",
                [(stamp, run_id) for run_id in runs],
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _node_rows(
        self, raw: list[tuple[Any, ...]], final: bool
    ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """The node batches (calls that ran or were cached) and the failure rows."""
        groups: dict[tuple[Any, ...], tuple[list[Any], list[str], list[float], list[float]]] = {}
        held, self._held = self._held, []
        for entry in raw:
            if len(entry) != 7:  # failed, timed out or retried
                held.append(entry)
                continue
            # ran or cached: (run_id, path, items, node, status, end, duration)
            key = (entry[0], entry[1], entry[3], entry[4])
            group = groups.get(key)
            if group is None:
                group = groups[key] = ([], [], [], [])
            items = entry[2]
            group[0].append(-1 if items[0] is None else items[0])
            group[1].append(_sub(items) if len(items) > 1 else "")
            group[2].append(entry[5])
            group[3].append(entry[6])
        now = time.time()
        failed = [row for row in (self._failure_row(e, final, now) for e in held) if row]
        nodes = [
            (run_id, "/".join(path), node, status, *store.pack(*lists))
            for (run_id, path, node, status), lists in groups.items()
        ]
        return nodes, failed

    def _failure_row(self, entry: tuple[Any, ...], final: bool, now: float) -> Any:
        """The row of a failed, timed-out or retried call (None: held until its inputs are known)."""
        run_id, path, items, node, status, end, _, attempt, error = entry
        inputs = failure_inputs(error) if status != "retried" else None
        if inputs is None and status != "retried" and not final and now - end < _INPUTS_GRACE:
            self._held.append(entry)  # the run notes the inputs as the error unwinds
            return None
        shown = None
        if inputs:
            shown = json.dumps({k: short_repr(v, self.inputs_limit) for k, v in inputs.items()})
        item, sub = _item_of(items)
        message = _message(error)
        where = "/".join(path)
        return (
            run_id,
            where,
            item,
            sub,
            node,
            status,
            end,
            attempt,
            type(error).__name__,
            message,
            shown,
        )

    def close(self) -> None:
        """Write what is queued, stop the writer and close the database."""
        self.flush(final=True)
        with self._write_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        _LOGS.discard(self)


def _drain(queue: deque[Any]) -> list[Any]:
    out = []
    pop = queue.popleft
    try:
        while True:
            out.append(pop())
    except IndexError:
        return out


def _q(count: int) -> str:
    return ",".join("?" * count)


def _item_of(items: tuple[int | None, ...]) -> tuple[int | None, str]:
    """The top-level item index, and the indices of nested maps below it as ``"3/1"``."""
    return (items[0] if items else None), _sub(items)


def _sub(items: tuple[int | None, ...]) -> str:
    return "/".join("" if i is None else str(i) for i in items[1:]).strip("/")


def _batches(raw: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Item batches from queued ``(run_id, path, items, status, end, duration)`` entries."""
    groups: dict[tuple[Any, ...], tuple[list[Any], list[str], list[float], list[float]]] = {}
    for run_id, path, items, status, end, duration in raw:
        key = (run_id, path, status)
        group = groups.get(key)
        if group is None:
            group = groups[key] = ([], [], [], [])
        group[0].append(-1 if items[0] is None else items[0])
        group[1].append(_sub(items) if len(items) > 1 else "")
        group[2].append(end)
        group[3].append(duration)
    return [
        (run_id, "/".join(path), status, *store.pack(*lists))
        for (run_id, path, status), lists in groups.items()
    ]


_INSERT_NODES = (
    f"INSERT INTO node_batches (run_id, path, node, status, {store.BATCH_COLUMNS}) "
    f"VALUES ({_q(11)})"
)
_INSERT_ITEMS = (
    f"INSERT INTO item_batches (run_id, path, status, {store.BATCH_COLUMNS}) VALUES ({_q(10)})"
)
_INSERT_FAILURES = f"INSERT INTO failures ({store.FAILURE_COLUMNS}) VALUES ({_q(11)})"


def _message(error: BaseException) -> str:
    text = str(error)
    return text if len(text) <= 2000 else text[:1997] + "..."


__all__ = ["RunLog", "short_repr", "structure_of"]
