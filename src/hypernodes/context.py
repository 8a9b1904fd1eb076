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
    #: delivers callback events (a ``Dispatcher``, or an ``EventRecorder`` in a worker); None: no callbacks
    dispatcher: Any = None
    path: tuple[str, ...] = ()
    #: per level of ``path``, the map item index being run there (None outside a map item)
    items: tuple[int | None, ...] = ()

    @property
    def instrumented(self) -> bool:
        """Whether steps need more than a bare call (a cache or callbacks are set)."""
        return self.cache is not None or self.dispatcher is not None

    @property
    def depth(self) -> int:
        return len(self.path) - 1

    def child(self, pipeline: Any, name: str) -> RunContext:
        """The context for ``pipeline`` running as the step ``name`` inside this one."""
        return replace(
            self,
            engine=pipeline.engine if pipeline.engine is not None else self.engine,
            cache=pipeline.cache if pipeline.cache is not None else self.cache,
            dispatcher=_dispatcher(pipeline.callbacks)
            if pipeline.callbacks is not None
            else self.dispatcher,
            path=(*self.path, name),
            items=(*self.items, None),
        )

    def for_item(self, index: int) -> RunContext:
        """The context of map item ``index`` of the pipeline this context runs."""
        return replace(self, items=(*self.items[:-1], index))


def _dispatcher(callbacks: Any) -> Any:
    """A dispatcher for ``callbacks``, or None when there are none."""
    if not callbacks:
        return None
    from .callbacks import Dispatcher

    return Dispatcher(callbacks)
