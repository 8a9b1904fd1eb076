"""Pictures of pipelines, drawn with graphviz (``pip install "hypernodes[viz]"`` plus the ``dot``
program).  Most users call :meth:`hypernodes.Pipeline.visualize`; this package holds the drawing,
the themes (:data:`STYLES`, :class:`Style`) and the Jupyter hook."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..exceptions import HyperNodesError
from .graphviz import FORMATS, ORIENTATIONS, RETURN_TYPES, render, visualize, write
from .styles import STYLES, Style, resolve_style

if TYPE_CHECKING:
    from ..model.pipeline import Pipeline

#: pipelines with more top-level nodes than this are not drawn inline in Jupyter (``dot`` would
#: take long); ``pipeline.visualize()`` still draws them on request
REPR_MAX_NODES = 300


#: the original HyperNodes' visualize options we accept, with the values that draw our picture
ORIGINAL_OPTIONS = {
    "separate_outputs": (True, False),
    "group_inputs": (True, False),
    "engine": ("graphviz",),
    "interactive": (False,),
}


def check_original_viz_options(options: dict[str, Any]) -> None:
    """Accept the original's ``visualize`` options: ``separate_outputs=True`` draws each
    function's outputs as shapes of their own, ``group_inputs=True`` the required inputs that
    only one node reads in one box per node; ``engine="graphviz"`` and ``interactive=False``
    change nothing.  Raise for any other name, or a value we cannot draw."""
    for name, value in options.items():
        allowed = ORIGINAL_OPTIONS.get(name)
        if allowed is None:
            raise HyperNodesError(
                f"visualize() got an unknown option {name!r}; it takes filename, orient, depth, "
                "show_types, flatten, style, show_legend, return_type (and the original "
                f"HyperNodes' {sorted(ORIGINAL_OPTIONS)})"
            )
        if value not in allowed:
            raise HyperNodesError(
                f"visualize({name}={value!r}) is not supported here; it takes {list(allowed)} "
                "(see docs/migrating.md)"
            )


def repr_svg(pipeline: Pipeline) -> str | None:
    """The SVG Jupyter shows for ``pipeline``, or ``None`` (Jupyter then shows the repr) when
    graphviz or ``dot`` is missing or the pipeline is too large to draw quickly."""
    if len(pipeline.pgraph.nodes) > REPR_MAX_NODES:
        return None
    try:
        return render(visualize(pipeline), "svg").decode("utf-8")
    except HyperNodesError:
        return None


__all__ = [
    "ORIGINAL_OPTIONS",
    "check_original_viz_options",
    "FORMATS",
    "ORIENTATIONS",
    "REPR_MAX_NODES",
    "RETURN_TYPES",
    "STYLES",
    "Style",
    "render",
    "repr_svg",
    "resolve_style",
    "visualize",
    "write",
]
