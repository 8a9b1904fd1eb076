"""Map item events in the original HyperNodes' sequence, for callbacks written its way.

Our hooks see every map item as ``on_map_item_start`` ... ``on_map_item_end``, with
``on_map_item_cached`` in between when the cache served the whole item.  The original fired
``on_map_item_cached`` *instead of* start and end for such an item, and callbacks written for it
(a progress bar that counts starts, say) count on that.  Whether an item is served whole is known
only when it ends, so for such a callback :class:`OriginalItems` holds an item's start, and the
events inside it, until the item shows that it computes something (a node starts, ends, retries or
fails: the start is delivered then) or ends served from the cache (the start is dropped, and so
are the start and end of the cache-served items nested in it).

Which callbacks get this sequence is decided by :func:`wants_original_items`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .hook_calls import written_positionally
from .hooks import HOOKS

#: events that show an item computes something: its held start is delivered before them
WORK = frozenset({"on_node_start", "on_node_end", "on_node_retry", "on_error"})
#: the item hooks this sequence rewrites (a callback written the original way always gets them)
ITEM_HOOKS = ("on_map_item_start", "on_map_item_cached", "on_map_item_end")

Key = tuple[tuple[str, ...], tuple[Any, ...]]
Held = tuple[str, Key, Callable[..., Any] | None, dict[str, Any]]


def wants_original_items(callback: Any, handled: Callable[[Any, str], bool]) -> bool:
    """Whether ``callback`` gets the original item sequence: its ``original_item_events``
    attribute when it sets one (True/False), else whether any hook it overrides is written
    positionally, the original way (``on_map_item_start(self, item_index, ctx)``)."""
    chosen = getattr(callback, "original_item_events", None)
    if chosen is not None:
        return bool(chosen)
    return any(handled(callback, hook) and written_positionally(callback, hook) for hook in HOOKS)


def _key(context: Any) -> Key:
    return (context.path, context.items)


def _within(key: Key, outer: Key) -> bool:
    """Whether the place ``key`` is the item ``outer`` or lies inside it."""
    path, items = key
    return path[: len(outer[0])] == outer[0] and items[: len(outer[1])] == outer[1]


class OriginalItems:
    """The original item sequence for one callback.  ``route(hook, call)`` gives the callable the
    dispatcher calls for ``hook`` (``call`` is the callback's own, or None for an item hook it
    does not override).  Called under the dispatcher's lock, so it needs none of its own."""

    def __init__(self) -> None:
        #: per held outer item: the events held for it, in order
        self.pending: dict[Key, list[Held]] = {}
        #: items served from the cache whose start was dropped: their end is dropped too
        self.served: set[Key] = set()

    def route(self, hook: str, call: Callable[..., Any] | None) -> Callable[..., Any]:
        def routed(**event: Any) -> None:
            self.event(hook, call, event)

        return routed

    def event(self, hook: str, call: Callable[..., Any] | None, event: dict[str, Any]) -> None:
        key = _key(event["context"])
        outer = next((k for k in self.pending if _within(key, k)), None)
        if outer is None:
            self._unheld(hook, key, call, event)
        elif hook in WORK:
            self._deliver(self.pending.pop(outer), served=None)
            self._call(call, event)
        elif hook == "on_map_item_cached" and key == outer:
            self._deliver(self.pending.pop(outer), served=key)
            self.served.add(key)
            self._call(call, event)
        elif hook == "on_map_item_end" and key == outer:
            self._deliver(self.pending.pop(outer), served=None)
            self._call(call, event)
        else:
            self.pending[outer].append((hook, key, call, event))

    def _unheld(
        self, hook: str, key: Key, call: Callable[..., Any] | None, event: dict[str, Any]
    ) -> None:
        """An event outside every held item: an item start is held, the end of a served item
        dropped, anything else delivered."""
        if hook == "on_map_item_start":
            self.pending[key] = [(hook, key, call, event)]
        elif hook == "on_map_item_end" and key in self.served:
            self.served.discard(key)
        else:
            self._call(call, event)

    def _deliver(self, held: list[Held], served: Key | None) -> None:
        """Deliver held events in order, leaving out the start and end of the items the cache
        served (``served``, and the nested items that reported ``on_map_item_cached``)."""
        whole = {key for hook, key, _, _ in held if hook == "on_map_item_cached"}
        if served is not None:
            whole.add(served)
        for hook, key, call, event in held:
            if key in whole and hook in ("on_map_item_start", "on_map_item_end"):
                continue
            self._call(call, event)

    @staticmethod
    def _call(call: Callable[..., Any] | None, event: dict[str, Any]) -> None:
        if call is not None:
            call(**event)
