"""Pictures of pipelines, drawn with graphviz (``pip install "hypernodes[viz]"`` plus the ``dot``
program).  Most users call :meth:`hypernodes.Pipeline.visualize`; this package holds the drawing,
the themes (:data:`STYLES`, :class:`Style`) and the Jupyter hook."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..exceptions import HyperNodesError
from .graphviz import FORMATS, ORIENTATIONS, RETURN_TYPES, render, visualize, write
from .styles import STYLES, Style, resolve_style

if TYPE_CHECKING:
    from ..model.pipeline import Pipeline

#: pipelines with more top-level nodes than this are not drawn inline in Jupyter (``dot`` would
#: take long); ``pipeline.visualize()`` still draws them on request
REPR_MAX_NODES = 300


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
