"""Seeing what a pipeline does: progress bars and OpenTelemetry tracing, built on callbacks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # type checkers see the classes; at run time __getattr__ imports them
    from .progress import ProgressCallback
    from .tracing import TelemetryCallback

__all__ = ["ProgressCallback", "TelemetryCallback"]


def __getattr__(name: str) -> Any:
    # Imported lazily: rich and opentelemetry are optional extras.
    if name == "ProgressCallback":
        from .progress import ProgressCallback

        return ProgressCallback
    if name == "TelemetryCallback":
        from .tracing import TelemetryCallback

        return TelemetryCallback
    raise AttributeError(name)
