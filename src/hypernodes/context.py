"""The per-call context handed down from ``Pipeline.run``/``map`` to every step and nested pipeline."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True, slots=True)
class RunContext:
    """What a running pipeline inherits from its caller: engine, cache, callbacks and where it is.

    ``path`` holds the pipeline names from the outermost one down to this one; ``depth`` is
    ``len(path) - 1``.  A nested pipeline that sets its own engine/cache/callbacks uses those;
    otherwise it inherits its caller's, without the nested pipeline object being changed.
    """

    engine: Any
    cache: Any = None
    callbacks: tuple[Any, ...] = ()
    path: tuple[str, ...] = ()

    @property
    def instrumented(self) -> bool:
        """Whether steps need more than a bare call (a cache or callbacks are set)."""
        return self.cache is not None or bool(self.callbacks)

    @property
    def depth(self) -> int:
        return len(self.path) - 1

    def child(self, pipeline: Any, name: str) -> RunContext:
        """The context for ``pipeline`` running as the step ``name`` inside this one."""
        return replace(
            self,
            engine=pipeline.engine if pipeline.engine is not None else self.engine,
            cache=pipeline.cache if pipeline.cache is not None else self.cache,
            callbacks=tuple(pipeline.callbacks)
            if pipeline.callbacks is not None
            else self.callbacks,
            path=(*self.path, name),
        )
