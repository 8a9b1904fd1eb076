"""Colour themes for pipeline pictures: a :class:`Style` says how each kind of element looks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from ..exceptions import HyperNodesError


@dataclass(frozen=True)
class Style:
    """How a pipeline picture looks.  Colours are anything graphviz accepts (``"#rrggbb"``, names).

    Pick a theme by name (``style="dark"``) or override single fields with a dict
    (``style={"function_fill": "#ffffff"}``, or ``{"theme": "dark", "edge": "#ff0000"}`` to
    start from another theme).
    """

    font: str = "Helvetica,Arial,sans-serif"
    font_size: float = 12.0
    background: str = "white"
    text: str = "#1f2328"
    #: colour of type hints, default values and other secondary text
    muted: str = "#6e7781"
    edge: str = "#57606a"
    #: colour of edges that carry one item of a mapped list into, or a list out of, a nested map
    mapped_edge: str = "#8250df"
    input_fill: str = "#ddf4ff"
    input_border: str = "#0969da"
    #: inputs fixed with ``Pipeline.bind``
    bound_fill: str = "#eaeef2"
    bound_border: str = "#8c959f"
    function_fill: str = "#fff8c5"
    function_border: str = "#9a6700"
    #: a nested pipeline drawn as one box
    pipeline_fill: str = "#fbefff"
    pipeline_border: str = "#8250df"
    output_fill: str = "#dafbe1"
    output_border: str = "#1a7f37"
    #: a nested pipeline drawn expanded, as a box around its nodes
    cluster_fill: str = "#f6f8fa"
    cluster_border: str = "#8c959f"
    #: graphviz ``style`` of the input shapes and the cluster boxes
    filled: bool = True


STYLES: dict[str, Style] = {
    "default": Style(),
    "dark": Style(
        background="#0d1117",
        text="#e6edf3",
        muted="#8d96a0",
        edge="#8d96a0",
        mapped_edge="#d2a8ff",
        input_fill="#0c2d6b",
        input_border="#4493f8",
        bound_fill="#21262d",
        bound_border="#6e7681",
        function_fill="#3b2300",
        function_border="#d29922",
        pipeline_fill="#271052",
        pipeline_border="#ab7df8",
        output_fill="#04260f",
        output_border="#3fb950",
        cluster_fill="#161b22",
        cluster_border="#6e7681",
    ),
    "minimal": Style(
        text="black",
        muted="#666666",
        edge="black",
        mapped_edge="black",
        input_fill="white",
        input_border="black",
        bound_fill="white",
        bound_border="#999999",
        function_fill="white",
        function_border="black",
        pipeline_fill="white",
        pipeline_border="black",
        output_fill="white",
        output_border="black",
        cluster_fill="white",
        cluster_border="#999999",
        filled=False,
    ),
}

_FIELDS = frozenset(f.name for f in fields(Style))

#: the original HyperNodes' theme names (seed era and 0.4), drawn with the closest theme here
ORIGINAL_STYLES: dict[str, str] = {
    **dict.fromkeys(
        ("dark_neon_solid", "dark_neon_wire", "dark_neon", "dark_soft", "dark_deep", "kedro"),
        "dark",
    ),
    **dict.fromkeys(("monochrome", "legacy", "professional", "simple"), "minimal"),
    **dict.fromkeys(
        (
            "auto", "light", "modern", "tailwind_soft", "vibrant", "pastel", "bright_mint", "sunny", "coral_sunset", "tailwind_pastel",
            "cool_breeze", "warm_glow", "lavender_fields", "vivid_pastel", "nord_soft",
            "soft_candy", "warm_flow", "tropical_ocean", "sunrise",
        ),
        "default",
    ),
}  # fmt: skip


def resolve_style(style: str | Style | Mapping[str, Any] | None) -> Style:
    """The :class:`Style` for ``style``: a theme name, a ``Style``, or a dict of overrides."""
    if style is None:
        return STYLES["default"]
    if isinstance(style, Style):
        return style
    if isinstance(style, str):
        return _theme(style)
    if isinstance(style, Mapping):
        overrides = dict(style)
        base = _theme(overrides.pop("theme", "default"))
        unknown = sorted(set(overrides) - _FIELDS)
        if unknown:
            raise HyperNodesError(
                f"style has no field(s) {unknown}; the fields are {sorted(_FIELDS)} "
                "(plus 'theme' to start from another theme)"
            )
        return replace(base, **overrides)
    raise HyperNodesError(
        f"style must be a theme name {sorted(STYLES)}, a Style or a dict of overrides, got {style!r}"
    )


def _theme(name: str) -> Style:
    found = STYLES.get(name) or STYLES.get(ORIGINAL_STYLES.get(name, ""))
    if found is None:
        raise HyperNodesError(f"unknown style {name!r}; the themes are {sorted(STYLES)}")
    return found
