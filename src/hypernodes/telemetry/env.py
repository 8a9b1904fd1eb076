"""``HYPERNODES_RUN_LOG``: when set (to a folder), every pipeline call of the process is recorded
in the run log there, as if ``callbacks=[RunLog(folder)]`` were added to it.

The variable is read once, when HyperNodes is imported; :func:`set_run_log` changes it for the rest
of the process.  Unset, a pipeline call pays one attribute check and nothing else.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

#: the environment variable that names the run-log folder
VARIABLE = "HYPERNODES_RUN_LOG"

#: the folder every pipeline call logs to (None: no run log unless a pipeline has one)
PATH: str | None = os.environ.get(VARIABLE) or None

_LOGS: dict[str, Any] = {}


def set_run_log(path: str | Path | None) -> None:
    """Log every pipeline call of this process to ``path`` from now on (None: stop)."""
    global PATH
    PATH = None if path is None else os.fspath(path)


def with_run_log(callbacks: list[Any] | None) -> list[Any]:
    """``callbacks`` plus this process's run log for :data:`PATH` (one per folder), unless they
    already hold a run log writing to that folder."""
    from .runlog import RunLog

    assert PATH is not None
    log = _LOGS.get(PATH)
    if log is None:
        log = _LOGS[PATH] = RunLog(PATH)
    listed = list(callbacks or ())
    if any(isinstance(cb, RunLog) and cb.folder == log.folder for cb in listed):
        return listed
    return [*listed, log]
