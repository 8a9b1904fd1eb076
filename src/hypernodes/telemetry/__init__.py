"""Seeing what a pipeline does: progress bars, the run log and OpenTelemetry tracing, built on
callbacks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # type checkers see the classes; at run time __getattr__ imports them
    from .progress import ProgressCallback
    from .tracing import TelemetryCallback

__all__ = ["ProfileCallback", "ProgressCallback", "RunLog", "TelemetryCallback"]


def __getattr__(name: str) -> Any:
    # Imported lazily: rich and opentelemetry are optional extras.
    if name == "ProgressCallback":
        from .progress import ProgressCallback

        return ProgressCallback
    if name == "ProfileCallback":
        from .profile import ProfileCallback

        return ProfileCallback
    if name == "RunLog":
        from .runlog import RunLog

        return RunLog
    if name == "TelemetryCallback":
        from .tracing import TelemetryCallback

        return TelemetryCallback
    raise AttributeError(name)
