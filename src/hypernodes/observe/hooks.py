"""Every callback hook, declared once: its name, the keyword arguments it receives, and the
positional shapes the original HyperNodes called it with.  The rest of the package (the list of
hooks, how hooks are called, what workers record) is derived from :data:`SPECS`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Hook:
    """One hook: ``fields`` are its keyword arguments in the order the docs list them;
    ``positional`` the shapes a hook written the original way may take, as the field passed at
    each position (``None``: a value we do not have, passed as ``""``); the longest that fits
    is used.  By default the one shape is ``fields`` in order."""

    name: str
    fields: tuple[str, ...]
    positional: tuple[tuple[str | None, ...], ...] = ()

    def shapes(self) -> tuple[tuple[str | None, ...], ...]:
        """The positional shapes (``fields`` in order unless the hook says otherwise)."""
        return self.positional or (self.fields,)


#: every hook, in the order a simple run emits them
SPECS: tuple[Hook, ...] = (
    Hook("on_pipeline_start", ("pipeline", "inputs", "context")),
    Hook("on_map_start", ("pipeline", "total", "context"), (("total", "context"),)),
    Hook("on_map_item_start", ("index", "context")),
    Hook("on_nested_pipeline_start", ("parent", "pipeline", "context")),
    Hook("on_node_start", ("node", "inputs", "context")),
    Hook("on_node_end", ("node", "outputs", "duration", "context")),
    Hook("on_node_cached", ("node", "signature", "context")),
    Hook("on_node_retry", ("node", "attempt", "error", "delay", "context")),
    Hook("on_error", ("node", "error", "context")),
    Hook("on_nested_pipeline_end", ("parent", "pipeline", "duration", "context")),
    Hook(
        "on_map_item_cached",
        ("index", "context"),
        (("index", None, "context"), ("index", "context")),
    ),
    Hook("on_map_item_end", ("index", "duration", "context")),
    Hook("on_map_end", ("pipeline", "total", "duration", "context"), (("duration", "context"),)),
    Hook("on_pipeline_end", ("pipeline", "outputs", "duration", "context")),
)

#: every hook name, in the order a simple run emits them
HOOKS: tuple[str, ...] = tuple(hook.name for hook in SPECS)
#: the keyword arguments each hook receives
FIELDS: dict[str, tuple[str, ...]] = {hook.name: hook.fields for hook in SPECS}
#: the positional shapes of the original HyperNodes hooks
POSITIONAL: dict[str, tuple[tuple[str | None, ...], ...]] = {h.name: h.shapes() for h in SPECS}
