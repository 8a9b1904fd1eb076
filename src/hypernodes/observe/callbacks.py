"""Lifecycle hooks: ``PipelineCallback``, the ``CallbackContext`` each hook receives, and the
dispatcher that delivers events one at a time in the caller's process.

Hooks are called with keyword arguments, so an override may name just the ones it uses (and take
the rest, including fields added later, as ``**kwargs``).  Hooks written the original HyperNodes
way, positionally (``on_node_start(self, node_id, inputs, ctx)``), are recognised when the callback
is registered and called that way (see :mod:`hypernodes.observe.hook_calls`).  A callback that raises does
not break the run: it is disabled for the rest of that run and a :class:`CallbackWarning` says
which hook failed and why.
"""

from __future__ import annotations

import threading
import time
import traceback
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .hook_calls import hook_caller
from .hooks import HOOKS
from .original import ITEM_HOOKS, OriginalItems, wants_original_items

#: an event recorded in a worker: (hook, path, items, time.time(), keyword arguments)
Event = tuple[str, tuple[str, ...], tuple[int | None, ...], float, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class RunOrigin:
    """What the user called: the top-level ``Pipeline`` and the engine running it (for callbacks
    that record a run's structure and set-up, such as the run log)."""

    pipeline: Any
    engine: Any


class CallbackWarning(RuntimeWarning):
    """A callback raised; it was disabled for the rest of the run."""


@dataclass(frozen=True, slots=True)
class CallbackContext:
    """Where an event happened, and a place for callbacks to keep state across one run.

    ``path`` names the pipelines from the outermost down to the one that emitted the event;
    ``items`` holds, per level of ``path``, the map item index (``None`` where that level is not a
    map item).  ``state`` is one dict shared by every event of the same top-level call: key it by
    your callback (``context.state.setdefault(id(self), {})``); ``get``/``set`` read and write it.  ``timestamp`` is wall-clock time
    (``time.time()``) of an event relayed from a worker process, and None for a live event, which
    happens when the hook is called; ``event_time`` gives either.
    """

    path: tuple[str, ...]
    items: tuple[int | None, ...]
    state: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    #: when a relayed event happened (``time.time()``); None for live events, which happen now
    timestamp: float | None = None
    #: the pipeline and engine of the top-level call (None where not known, e.g. under a nested
    #: pipeline that has callbacks of its own)
    origin: RunOrigin | None = field(default=None, compare=False, repr=False)

    def get(self, key: str, default: Any = None) -> Any:
        """The value kept under ``key`` in the shared ``state`` (``default`` if none)."""
        return self.state.get(key, default)

    def set(self, key: str, value: Any) -> None:
        """Keep ``value`` under ``key`` in the shared ``state`` for later events of the call."""
        self.state[key] = value

    @property
    def event_time(self) -> float:
        """When the event happened: ``timestamp`` for relayed events, else now."""
        return self.timestamp if self.timestamp is not None else time.time()

    @property
    def depth(self) -> int:
        """0 for the pipeline the user called, 1 for a pipeline nested in it, and so on."""
        return len(self.path) - 1

    @property
    def pipeline(self) -> str:
        """The name of the pipeline that emitted the event."""
        return self.path[-1]

    @property
    def current_pipeline_id(self) -> str:
        """The original HyperNodes' name of :attr:`pipeline`."""
        return self.path[-1]

    @property
    def parent_pipeline_id(self) -> str | None:
        """The pipeline this one is nested in (None at the top), the original's name."""
        return self.path[-2] if len(self.path) > 1 else None

    @property
    def hierarchy_path(self) -> list[str]:
        """:attr:`path` as a list, the original's name."""
        return list(self.path)

    @property
    def item_index(self) -> int | None:
        """The map item index at this level, or ``None`` outside a map item."""
        return self.items[-1] if self.items else None


class PipelineCallback:
    """Base class for callbacks: override the hooks you need; the others do nothing.

    Hooks are called with keyword arguments.  ``node`` and ``pipeline`` arguments are names
    (strings); ``duration`` is in seconds.  An override may leave out the arguments it does not
    use; ``**kwargs`` also takes fields a later version adds.  Overrides written positionally, the
    original HyperNodes way (``on_node_end(self, node_id, outputs, duration, ctx)``), are called
    positionally.  A callback whose ``enabled`` is False receives no events and costs nothing.
    """

    #: False: the callback is left out of runs (no hook of it is called, no event is built for it)
    enabled: bool = True
    #: how a map item the cache serves whole reaches this callback: False gives our sequence
    #: (``on_map_item_start``, ``on_map_item_cached``, ``on_map_item_end``), True the original
    #: HyperNodes' (``on_map_item_cached`` alone); None (the default) picks the original's when
    #: any hook is written positionally, the original way
    original_item_events: bool | None = None

    @property
    def supported_engines(self) -> list[str] | None:
        """The engine class names this callback works with (0.4's contract); None: every engine.
        A pipeline run on an engine it does not name raises ``UnsupportedEngineError``."""
        return None

    def on_pipeline_start(
        self, *, pipeline: str, inputs: Mapping[str, Any], context: CallbackContext, **kwargs: Any
    ) -> None:
        """A pipeline (top-level or nested) starts one run with ``inputs``."""

    def on_pipeline_end(
        self,
        *,
        pipeline: str,
        outputs: Mapping[str, Any],
        duration: float,
        context: CallbackContext,
        **kwargs: Any,
    ) -> None:
        """A pipeline run finished with ``outputs``."""

    def on_node_start(
        self, *, node: str, inputs: Mapping[str, Any], context: CallbackContext, **kwargs: Any
    ) -> None:
        """A node is about to be called with ``inputs``."""

    def on_node_end(
        self,
        *,
        node: str,
        outputs: Mapping[str, Any],
        duration: float,
        context: CallbackContext,
        **kwargs: Any,
    ) -> None:
        """A node returned ``outputs``."""

    def on_node_cached(
        self, *, node: str, signature: str, context: CallbackContext, **kwargs: Any
    ) -> None:
        """A node's outputs came from the cache instead of a call."""

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
        """A node raised ``error`` and is called again (retry number ``attempt``) after ``delay``
        seconds (``@node(retries=...)``)."""

    def on_error(
        self, *, node: str | None, error: BaseException, context: CallbackContext, **kwargs: Any
    ) -> None:
        """A node raised ``error`` (``node`` is ``None`` if the failure was outside a node)."""

    def on_nested_pipeline_start(
        self, *, parent: str, pipeline: str, context: CallbackContext, **kwargs: Any
    ) -> None:
        """A nested pipeline step of ``parent`` starts (``context`` is the parent's)."""

    def on_nested_pipeline_end(
        self,
        *,
        parent: str,
        pipeline: str,
        duration: float,
        context: CallbackContext,
        **kwargs: Any,
    ) -> None:
        """A nested pipeline step of ``parent`` finished."""

    def on_map_start(
        self, *, pipeline: str, total: int, context: CallbackContext, **kwargs: Any
    ) -> None:
        """``pipeline`` starts mapping over ``total`` items."""

    def on_map_end(
        self, *, pipeline: str, total: int, duration: float, context: CallbackContext, **kwargs: Any
    ) -> None:
        """A map finished."""

    def on_map_item_start(self, *, index: int, context: CallbackContext, **kwargs: Any) -> None:
        """Map item ``index`` starts."""

    def on_map_item_end(
        self, *, index: int, duration: float, context: CallbackContext, **kwargs: Any
    ) -> None:
        """Map item ``index`` finished (computed, cached, or failed)."""

    def on_map_item_cached(self, *, index: int, context: CallbackContext, **kwargs: Any) -> None:
        """Every node of map item ``index`` came from the cache."""


def _handles(callback: Any, hook: str) -> bool:
    """Whether ``callback`` does something on ``hook`` (a PipelineCallback's own no-op does not,
    nor does a callback whose ``enabled`` is False)."""
    if getattr(callback, "enabled", True) is False:
        return False
    method = getattr(type(callback), hook, None)
    if method is None:
        return getattr(callback, hook, None) is not None
    return method is not getattr(PipelineCallback, hook)


def check_callbacks(callbacks: Iterable[Any]) -> list[Any]:
    """``callbacks`` as a list, after making sure each hook override can be called (one way or the
    other); raises :class:`~hypernodes.exceptions.CallbackSignatureError` where it cannot.  Done
    when callbacks are given to a pipeline, so a mistyped hook fails there, not mid-run."""
    listed = list(callbacks)
    for callback in listed:
        for hook in HOOKS:
            if _handles(callback, hook):
                hook_caller(callback, hook)
    return listed


class Dispatcher:
    """Delivers events to callbacks one at a time, whatever thread emits them.

    One dispatcher serves one top-level call.  It owns the shared ``state`` dict of the contexts it
    makes, and disables (with a :class:`CallbackWarning`) a callback that raises.  ``listeners``
    maps each hook to ``(callback, call)`` pairs for the callbacks that handle it, ``call`` taking
    the event's keyword arguments and calling the override the way it was written; the run loop
    skips building an event that nobody handles.
    """

    def __init__(self, callbacks: Sequence[Any], origin: RunOrigin | None = None) -> None:
        self.callbacks = list(callbacks)
        self.state: dict[str, Any] = {}
        self.origin = origin
        self._lock = threading.RLock()
        self.listeners: dict[str, list[tuple[Any, Any]]] = {}
        #: per callback written the original way (by id): its held map item events
        self._original: dict[int, OriginalItems] = {}
        self._listen(self.callbacks)

    def _listen(self, callbacks: Sequence[Any]) -> None:
        self.listeners = {
            hook: [(cb, hook_caller(cb, hook)) for cb in callbacks if _handles(cb, hook)]
            for hook in HOOKS
        }
        if any(wants_original_items(cb, _handles) for cb in callbacks):
            self._route_original(callbacks)
        #: whether any callback handles any event at all
        self.active = any(self.listeners.values())

    def _route_original(self, callbacks: Sequence[Any]) -> None:
        """Send every event of the callbacks written the original way through their
        :class:`~hypernodes.observe.original.OriginalItems` (kept across re-listens), so a map item
        the cache serves whole reaches them as ``on_map_item_cached`` alone."""
        held = self._original
        for cb in callbacks:
            if not wants_original_items(cb, _handles):
                continue
            items = held.setdefault(id(cb), OriginalItems())
            for hook, pairs in self.listeners.items():
                call = next((c for owner, c in pairs if owner is cb), None)
                if call is None and hook not in ITEM_HOOKS:
                    continue
                routed = (cb, items.route(hook, call))
                if call is None:
                    pairs.append(routed)
                else:
                    pairs[:] = [routed if owner is cb else (owner, c) for owner, c in pairs]

    def context(
        self, path: tuple[str, ...], items: tuple[int | None, ...], timestamp: float | None = None
    ) -> CallbackContext:
        """A context for events at ``path``/``items`` (``timestamp`` only for replayed events)."""
        return CallbackContext(path, items, self.state, timestamp, self.origin)

    def emit(self, hook: str, **kwargs: Any) -> None:
        """Call ``hook`` on every callback that handles it, under the dispatcher's lock."""
        listeners = self.listeners[hook]
        if not listeners:
            return
        with self._lock:
            for callback, call in listeners:
                try:
                    call(**kwargs)
                except Exception as exc:
                    self._disable(callback, hook, exc)

    def _disable(self, callback: Any, hook: str, exc: Exception) -> None:
        self.callbacks = [cb for cb in self.callbacks if cb is not callback]
        self._listen(self.callbacks)
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        warnings.warn(
            f"callback {type(callback).__name__}.{hook} raised {detail}; it is disabled "
            "for the rest of this run (the run itself goes on)",
            CallbackWarning,
            stacklevel=3,
        )

    def replay(self, events: Iterable[Event]) -> None:
        """Deliver events recorded elsewhere (a worker process) with their original times."""
        for hook, path, items, timestamp, kwargs in events:
            self.emit(hook, context=self.context(path, items, timestamp), **kwargs)


class EventRecorder:
    """Stands in for a :class:`Dispatcher` where callbacks cannot run (a worker process): it keeps
    events, with their times, to be relayed to the caller's dispatcher by :meth:`Dispatcher.replay`.

    ``hooks`` names the hooks the caller's callbacks handle; only those are recorded.
    """

    def __init__(self, hooks: Iterable[str] = HOOKS) -> None:
        self.events: list[Event] = []
        self.state: dict[str, Any] = {}
        wanted = set(hooks)
        # the same shape as Dispatcher.listeners: a non-empty list marks a hook to record
        self.listeners: dict[str, list[Any]] = {h: [True] if h in wanted else [] for h in HOOKS}
        self.active = bool(wanted)
        self._lock = threading.Lock()

    def context(
        self, path: tuple[str, ...], items: tuple[int | None, ...], timestamp: float | None = None
    ) -> CallbackContext:
        """A context for events at ``path``/``items``."""
        return CallbackContext(path, items, self.state, timestamp)

    def emit(self, hook: str, *, context: CallbackContext, **kwargs: Any) -> None:
        """Keep the event with the time it happened, if the caller handles ``hook``."""
        if not self.listeners[hook]:
            return
        stamp = context.timestamp if context.timestamp is not None else time.time()
        with self._lock:
            self.events.append((hook, context.path, context.items, stamp, kwargs))

    def __getstate__(self) -> dict[str, Any]:
        # A copy for a worker process: which hooks to record, no events and no lock.
        return {"listeners": self.listeners, "active": self.active}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.events = []
        self.state = {}
        self._lock = threading.Lock()

    def replay(self, events: Iterable[Event]) -> None:
        """Keep events relayed from further away (a map nested in a worker's item)."""
        with self._lock:
            self.events.extend(events)

    def drain(self) -> list[Event]:
        """The events so far, removed from the recorder."""
        with self._lock:
            events, self.events = self.events, []
        return events


__all__ = [
    "HOOKS",
    "dispatcher_for",
    "CallbackContext",
    "check_callbacks",
    "CallbackWarning",
    "Dispatcher",
    "EventRecorder",
    "PipelineCallback",
    "RunOrigin",
]


def dispatcher_for(callbacks: Any, origin: RunOrigin | None = None) -> Dispatcher | None:
    """A dispatcher for ``callbacks``, or None when none of them handles any event.  ``origin``
    (the top-level call's pipeline and engine) is what ``CallbackContext.origin`` gives."""
    if not callbacks:
        return None
    dispatcher = Dispatcher(callbacks, origin)
    return dispatcher if dispatcher.active else None
