"""What the Ray tests share: finding Ray's processes on this machine and where they listen."""

from __future__ import annotations

from pathlib import Path


def ray_processes() -> dict[int, str]:
    """Ray's own processes (GCS, raylet, workers) on this machine, by pid."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(part in command for part in ("gcs_server", "raylet", "ray::", "ray/_private")):
            found[int(entry.name)] = command
    return found


def listening(pids) -> set[str]:
    """The addresses the processes ``pids`` listen on."""
    import psutil

    found = set()
    for connection in psutil.net_connections("inet"):
        if connection.status == psutil.CONN_LISTEN and connection.pid in pids:
            found.add(connection.laddr.ip)
    return found
