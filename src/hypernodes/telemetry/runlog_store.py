"""The run log's database: one SQLite file per folder, its tables, and the queries that read it.

The file is ``<folder>/runs.sqlite`` in WAL mode, so several processes can write runs to the same
folder while others read it (``hypernodes runs watch``).  Only the standard library's ``sqlite3``
is used.  Tables:

- ``runs``: one row per top-level call (``run``, ``map``, ``imap`` ...): id, pipeline name,
  kind, items total, the pipeline's structure (JSON), engine, versions, host and pid, start, end,
  status (``running``, ``ok``, ``failed``: a node call failed, ``stopped``: the map ended before
  all its items, as on Ctrl-C or an ``imap`` closed early) and ``updated`` (the last write, a heartbeat);
- ``node_batches``: the node calls that ran or were cached, one row per run, pipeline path,
  node and status for each write (about every half second): ``count``, ``seconds`` (their total
  time) and ``slowest``, then per call, packed as little-endian arrays, the top-level item index
  (``items``, int64, -1 outside a map), the end time and the duration (``ended``,
  ``durations``, float64), and ``subs``: the item indices of nested maps (JSON, NULL when none);
- ``item_batches``: the map items that finished, the same way, by status (``ok``, ``cached``,
  ``failed``);
- ``failures``: one row per node call that failed, timed out or was retried: path, item,
  sub-items, node, status (``failed``, ``timed_out``, ``retried``), end, attempt, error type and
  message, and the failing inputs' short reprs (JSON).

Packing the calls that went well keeps the cost of logging near a microsecond per node call;
:func:`unpack` reads a batch back, and SQL sums ``count``/``seconds`` directly.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import sys
import time
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..exceptions import HyperNodesError

#: the file name of the run log inside its folder
FILENAME = "runs.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, pipeline TEXT, kind TEXT, total INTEGER, structure TEXT,
    engine TEXT, versions TEXT, host TEXT, pid INTEGER, started REAL, ended REAL,
    status TEXT, error TEXT, updated REAL
);
CREATE TABLE IF NOT EXISTS node_batches (
    run_id TEXT, path TEXT, node TEXT, status TEXT, count INTEGER, seconds REAL, slowest REAL,
    items BLOB, subs TEXT, ended BLOB, durations BLOB
);
CREATE INDEX IF NOT EXISTS node_batches_run ON node_batches (run_id);
CREATE TABLE IF NOT EXISTS item_batches (
    run_id TEXT, path TEXT, status TEXT, count INTEGER, seconds REAL, slowest REAL,
    items BLOB, subs TEXT, ended BLOB, durations BLOB
);
CREATE INDEX IF NOT EXISTS item_batches_run ON item_batches (run_id);
CREATE TABLE IF NOT EXISTS failures (
    run_id TEXT, path TEXT, item INTEGER, sub TEXT, node TEXT, status TEXT, ended REAL,
    attempt INTEGER, error_type TEXT, error_message TEXT, inputs TEXT
);
CREATE INDEX IF NOT EXISTS failures_run ON failures (run_id);
"""

#: a batch's columns after run_id, path (and node), status: as written by the run log
BATCH_COLUMNS = "count, seconds, slowest, items, subs, ended, durations"
FAILURE_COLUMNS = (
    "run_id, path, item, sub, node, status, ended, attempt, error_type, error_message, inputs"
)


def pack(
    items: list[int], subs: list[str], ended: list[float], durations: list[float]
) -> tuple[Any, ...]:
    """The packed columns of one batch (``BATCH_COLUMNS``): count, total and slowest time, and
    the per-call arrays as little-endian int64/float64 bytes (``subs`` as JSON, or NULL when
    every call was at the top level)."""
    return (
        len(items),
        math.fsum(durations),
        max(durations, default=0.0),
        _bytes("q", items),
        json.dumps(subs) if any(subs) else None,
        _bytes("d", ended),
        _bytes("d", durations),
    )


def _bytes(code: str, values: list[Any]) -> bytes:
    data = array(code, values)
    if sys.byteorder != "little":
        data.byteswap()
    return data.tobytes()


def _unbytes(code: str, blob: bytes) -> array[Any]:
    data = array(code)
    data.frombytes(blob)
    if sys.byteorder != "little":
        data.byteswap()
    return data


def unpack(row: sqlite3.Row) -> Iterator[tuple[int | None, str, float, float]]:
    """The calls of one batch row: (item or None, sub-items, end, duration)."""
    items = _unbytes("q", row["items"])
    subs = json.loads(row["subs"]) if row["subs"] else None
    ended = _unbytes("d", row["ended"])
    durations = _unbytes("d", row["durations"])
    for i, item in enumerate(items):
        yield (None if item < 0 else item), (subs[i] if subs else ""), ended[i], durations[i]


class RunLogError(HyperNodesError, LookupError):
    """A run log folder or a run in it could not be found: check the folder given (the one
    ``RunLog(path)`` or ``HYPERNODES_RUN_LOG`` wrote to) and the run id (``hypernodes runs list``)."""


def database_path(folder: str | os.PathLike[str]) -> Path:
    """The run log file of ``folder``."""
    return Path(folder) / FILENAME


def connect(path: Path, timeout: float = 30.0) -> sqlite3.Connection:
    """A connection in WAL mode, waiting up to ``timeout`` s for other writers; tables created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=timeout, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(SCHEMA)
    return conn


@contextmanager
def reading(folder: str | os.PathLike[str]) -> Iterator[sqlite3.Connection]:
    """A connection to read the run log of ``folder``; raises :class:`RunLogError` if none."""
    path = database_path(folder)
    if not path.exists():
        raise RunLogError(
            f"no run log in {os.fspath(folder)!r} (no {FILENAME} there); record runs with "
            "callbacks=[RunLog(folder)] or HYPERNODES_RUN_LOG=folder first"
        )
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    conn.row_factory = sqlite3.Row
    try:
        if not _has_runs_table(conn):  # the first writer made the file, not yet its tables
            raise RunLogError(
                f"the run log in {os.fspath(folder)!r} is being created; try again in a moment"
            )
        yield conn
    finally:
        conn.close()


def _has_runs_table(conn: sqlite3.Connection) -> bool:
    sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runs'"
    return conn.execute(sql).fetchone() is not None


# -- reading -----------------------------------------------------------------------------------


@dataclass
class RunInfo:
    """One row of ``runs``, with JSON fields decoded."""

    run_id: str
    pipeline: str
    kind: str
    total: int | None
    structure: dict[str, Any] | None
    engine: dict[str, Any]
    versions: dict[str, str]
    host: str
    pid: int
    started: float
    ended: float | None
    status: str
    updated: float

    @classmethod
    def of(cls, row: sqlite3.Row) -> RunInfo:
        return cls(
            run_id=row["run_id"],
            pipeline=row["pipeline"],
            kind=row["kind"],
            total=row["total"],
            structure=json.loads(row["structure"]) if row["structure"] else None,
            engine=json.loads(row["engine"] or "{}"),
            versions=json.loads(row["versions"] or "{}"),
            host=row["host"],
            pid=row["pid"],
            started=row["started"],
            ended=row["ended"],
            status=row["status"],
            updated=row["updated"],
        )

    @property
    def duration(self) -> float:
        """Seconds from start to end (to the last write while it runs)."""
        return (self.ended if self.ended is not None else self.updated) - self.started


def list_runs(conn: sqlite3.Connection, limit: int | None = None) -> list[RunInfo]:
    """The runs, newest first."""
    sql = "SELECT * FROM runs ORDER BY started DESC"
    rows = conn.execute(sql + (f" LIMIT {int(limit)}" if limit else "")).fetchall()
    return [RunInfo.of(row) for row in rows]


def find_run(conn: sqlite3.Connection, run: str | None) -> RunInfo:
    """The run named ``run``: an id, a unique prefix of one, ``last`` or None (the newest), or
    ``last-N`` (N runs before the newest).  Raises :class:`RunLogError` if there is no such run."""
    if run is None or run == "last":
        row = conn.execute("SELECT * FROM runs ORDER BY started DESC LIMIT 1").fetchone()
    elif run.startswith("last-") and run[5:].isdigit():
        offset = int(run[5:])
        row = conn.execute(
            "SELECT * FROM runs ORDER BY started DESC LIMIT 1 OFFSET ?", (offset,)
        ).fetchone()
    else:
        rows = conn.execute(
            "SELECT * FROM runs WHERE run_id LIKE ? ORDER BY started DESC", (run + "%",)
        ).fetchall()
        if len(rows) > 1:
            ids = ", ".join(r["run_id"] for r in rows[:5])
            raise RunLogError(f"run {run!r} is ambiguous ({ids}); give more of its id")
        row = rows[0] if rows else None
    if row is None:
        raise RunLogError(
            f"no run {run!r} in this run log; `hypernodes runs list FOLDER` shows the runs"
            if run not in (None, "last")
            else "this run log holds no runs yet"
        )
    return RunInfo.of(row)


@dataclass
class NodeStats:
    """What one node did in a run: counts by status and time."""

    path: str
    node: str
    ran: int = 0
    cached: int = 0
    failed: int = 0
    retried: int = 0
    timed_out: int = 0
    seconds: float = 0.0
    slowest: float = 0.0

    @property
    def status(self) -> str:
        """The worst status seen: failed, timed_out, retried, ran, cached."""
        for name in ("failed", "timed_out", "retried", "ran", "cached"):
            if getattr(self, name):
                return name
        return "pending"


def node_stats(conn: sqlite3.Connection, run_id: str) -> list[NodeStats]:
    """Per node (and pipeline path), the counts by status and the time spent, in first-seen order."""
    rows = conn.execute(
        "SELECT path, node, status, SUM(count), TOTAL(seconds), MAX(slowest), MIN(rowid) "
        "FROM node_batches WHERE run_id = ? GROUP BY path, node, status ORDER BY MIN(rowid)",
        (run_id,),
    ).fetchall()
    stats: dict[tuple[str, str], NodeStats] = {}
    for path, node, status, count, seconds, slowest, _ in rows:
        entry = stats.setdefault((path, node), NodeStats(path, node))
        setattr(entry, status, getattr(entry, status) + count)
        entry.seconds += seconds or 0.0
        entry.slowest = max(entry.slowest, slowest or 0.0)
    for path, node, status, count in conn.execute(
        "SELECT path, node, status, COUNT(*) FROM failures WHERE run_id = ? "
        "GROUP BY path, node, status",
        (run_id,),
    ):
        entry = stats.setdefault((path, node), NodeStats(path, node))
        setattr(entry, status, getattr(entry, status) + count)
    return list(stats.values())


def failures(conn: sqlite3.Connection, run_id: str, limit: int = 50) -> list[sqlite3.Row]:
    """The failed (and timed-out) node calls of a run, in the order they happened."""
    return conn.execute(
        f"SELECT {FAILURE_COLUMNS} FROM failures WHERE run_id = ? "
        "AND status IN ('failed', 'timed_out') ORDER BY ended LIMIT ?",
        (run_id, limit),
    ).fetchall()


def failure_count(conn: sqlite3.Connection, run_id: str) -> int:
    """How many node calls of the run failed or timed out."""
    return conn.execute(
        "SELECT COUNT(*) FROM failures WHERE run_id = ? AND status IN ('failed', 'timed_out')",
        (run_id,),
    ).fetchone()[0]


def item_rows(
    conn: sqlite3.Connection, run_id: str, path: str | None = None
) -> list[tuple[int | None, str, str, float, float]]:
    """The map items of a run (at ``path`` if given): (item, sub-items, status, end, duration)."""
    sql = "SELECT * FROM item_batches WHERE run_id = ?"
    args: tuple[Any, ...] = (run_id,)
    if path is not None:
        sql, args = sql + " AND path = ?", (run_id, path)
    found: list[Any] = []
    for row in conn.execute(sql + " ORDER BY rowid", args):
        status = row["status"]
        found.extend((item, sub, status, end, dur) for item, sub, end, dur in unpack(row))
    return found


def slowest_items(
    conn: sqlite3.Connection, run: RunInfo, limit: int = 10
) -> list[tuple[int | None, str, float]]:
    """The slowest top-level map items of a run: (item, status, duration)."""
    rows = item_rows(conn, run.run_id, run.pipeline)
    rows.sort(key=lambda r: r[4], reverse=True)
    return [(item, status, dur) for item, _, status, _, dur in rows[:limit]]


def item_counts(conn: sqlite3.Connection, run: RunInfo) -> dict[str, int]:
    """Top-level map items of the run finished so far, by status (``ok``, ``cached``, ``failed``)."""
    rows = conn.execute(
        "SELECT status, SUM(count) FROM item_batches WHERE run_id = ? AND path = ? GROUP BY status",
        (run.run_id, run.pipeline),
    ).fetchall()
    return {status: count for status, count in rows}


@dataclass(frozen=True, slots=True)
class Span:
    """One node call that ran or was cached (times in seconds since the epoch)."""

    path: str
    node: str
    status: str
    item: int | None
    sub: str
    start: float
    end: float


def spans(conn: sqlite3.Connection, run_id: str) -> list[Span]:
    """Every node call of a run that ran or was cached, in start order."""
    found: list[Span] = []
    for row in conn.execute("SELECT * FROM node_batches WHERE run_id = ?", (run_id,)):
        path, node, status = row["path"], row["node"], row["status"]
        found.extend(
            Span(path, node, status, item, sub, end - dur, end)
            for item, sub, end, dur in unpack(row)
        )
    found.sort(key=lambda s: s.start)
    return found


def now() -> float:
    """Wall-clock time, as stored in the run log."""
    return time.time()
