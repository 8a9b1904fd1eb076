"""Draw a pipeline as a ``graphviz.Digraph`` and render it with the ``dot`` program.

Inputs are ellipses (dashed when optional, grey when bound), functions are boxes listing their
outputs, nested pipelines are boxes of their own (``depth`` reached) or clusters around their
nodes, and the pipeline's final outputs are green ellipses.  Edges that cross into a nested
pipeline say how names are mapped (``outer → inner``) and whether the value is mapped over.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import GraphvizNotFoundError, HyperNodesError
from ..model.node import Node
from ..model.pipeline_node import PipelineNode
from .dot import DotModule
from .hints import TypeHints
from .styles import Style, resolve_style

if TYPE_CHECKING:
    import graphviz

    from ..model.pipeline import Pipeline

ORIENTATIONS = ("TB", "LR", "BT", "RL")
#: file extensions ``visualize(filename=...)`` writes, and the graphviz format of each
FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": None, ".gv": None}
#: what ``visualize(return_type=...)`` returns: the Digraph, its SVG text, or an IPython HTML object
RETURN_TYPES = ("auto", "graphviz", "svg", "html")
#: which side of a box edges leave from, per orientation
_TAIL_SIDE = {"TB": "s", "LR": "e", "BT": "n", "RL": "w"}

_INSTALL_DOT = (
    "the graphviz 'dot' program is needed to render pipeline pictures but was not found on PATH; "
    "install it with your system's package manager: `apt-get install graphviz` (Debian/Ubuntu), "
    "`brew install graphviz` (macOS) or `conda install graphviz` (conda), then try again"
)
_INSTALL_PACKAGE = (
    "the 'graphviz' Python package is needed to draw pipelines; "
    'install it with `pip install "hypernodes[viz]"` (or `pip install graphviz`)'
)


def import_graphviz() -> Any:
    """The ``graphviz`` module, or an error that says how to install it."""
    try:
        import graphviz
    except ImportError as exc:
        raise GraphvizNotFoundError(_INSTALL_PACKAGE) from exc
    return graphviz


def visualize(
    pipeline: Pipeline,
    filename: str | Path | None = None,
    orient: str = "TB",
    depth: int | None = 1,
    show_types: bool = True,
    flatten: bool = False,
    style: str | Style | Mapping[str, Any] | None = "default",
    show_legend: bool = False,
    return_type: str = "auto",
    separate_outputs: bool = False,
    group_inputs: bool = False,
) -> Any:
    """Draw ``pipeline``; see :meth:`hypernodes.Pipeline.visualize` for the options
    (the original HyperNodes' ``separate_outputs``: each function's outputs as shapes of their
    own; ``group_inputs``: the required inputs only one node reads, in one box per node)."""
    if orient not in ORIENTATIONS:
        raise HyperNodesError(f"orient must be one of {list(ORIENTATIONS)}, got {orient!r}")
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 1):
        raise HyperNodesError(f"depth must be an integer >= 1 or None, got {depth!r}")
    if return_type not in RETURN_TYPES:
        raise HyperNodesError(
            f"return_type must be one of {list(RETURN_TYPES)}, got {return_type!r}"
        )
    gv = _graphviz_for(filename, return_type)
    builder = _Builder(gv, resolve_style(style), orient, depth, show_types, flatten)
    builder.separate_outputs = separate_outputs
    builder.group_inputs = group_inputs
    digraph = builder.draw(pipeline)
    if show_legend:
        builder.legend(digraph)
    if filename is not None:
        write(digraph, filename)
    if return_type in ("auto", "graphviz"):
        return digraph
    svg = render(digraph, "svg").decode("utf-8")
    if return_type == "svg":
        return svg
    try:
        from IPython.display import HTML
    except ImportError as exc:
        raise HyperNodesError(
            'return_type="html" gives an IPython HTML object, and IPython is not installed; '
            'use return_type="svg" for the SVG text'
        ) from exc
    return HTML(svg)


def _graphviz_for(filename: str | Path | None, return_type: str) -> Any:
    """The ``graphviz`` module; where it is missing and only a ``.dot``/``.gv`` file is asked
    for, the DOT writer of :mod:`.dot` (DOT text needs no graphviz)."""
    try:
        return import_graphviz()
    except GraphvizNotFoundError:
        wants_text = filename is not None and FORMATS.get(Path(filename).suffix.lower(), 0) is None
        if wants_text and return_type in ("auto", "graphviz"):
            return DotModule
        raise


def render(digraph: graphviz.Digraph, format: str) -> bytes:
    """Run ``dot`` on ``digraph`` and return the picture in ``format`` (``"svg"``, ``"png"``...)."""
    gv = import_graphviz()
    try:
        return digraph.pipe(format=format)
    except gv.ExecutableNotFound as exc:
        raise GraphvizNotFoundError(_INSTALL_DOT) from exc
    except gv.CalledProcessError as exc:
        detail = (exc.stderr or b"").decode(errors="replace").strip()
        raise HyperNodesError(f"graphviz 'dot' failed to render the pipeline: {detail}") from exc


def write(digraph: graphviz.Digraph, filename: str | Path) -> Path:
    """Write ``digraph`` to ``filename`` in the format its extension names (see ``FORMATS``)."""
    path = Path(filename)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise HyperNodesError(
            f"cannot tell the picture format of {str(filename)!r}; "
            f"use one of the extensions {sorted(FORMATS)}"
        )
    fmt = FORMATS[suffix]
    data = digraph.source.encode() if fmt is None else render(digraph, fmt)
    path.write_bytes(data)
    return path


@dataclass(frozen=True)
class _Source:
    """Where a value comes from in the picture, and what the edges carrying it should say."""

    node: str
    port: str | None = None
    type: str | None = None
    notes: tuple[str, ...] = ()
    mapped: bool = False

    def but(self, note: str | None, mapped: bool | None = None, type: str | None = None) -> _Source:
        notes = self.notes
        if note:
            last = notes[-1] if notes else ""
            target = last.rsplit(" ", 1)[-1]  # the name the last note ends on
            if last and note.startswith(f"{target} → "):
                # a chain of renames reads as one: "map docs → doc" + "doc → text" = "map docs → doc → text"
                notes = (*notes[:-1], last + note[len(target) :])
            else:
                notes = (*notes, note)
        return _Source(
            self.node,
            self.port,
            type if type is not None else self.type,
            notes,
            self.mapped if mapped is None else mapped,
        )


class _Builder:
    """Walks a pipeline (and the nested ones it expands) and emits graphviz nodes and edges."""

    def __init__(
        self, gv: Any, style: Style, orient: str, depth: int | None, show_types: bool, flatten: bool
    ) -> None:
        self.gv = gv
        self.style = style
        self.orient = orient
        self.depth = None if flatten else depth  # flatten opens every level
        self.show_types = show_types
        self.flatten = flatten
        self.types = TypeHints()
        self.ids = itertools.count()
        #: edges are added to the root graph at the end: an edge written inside a cluster
        #: would pull both its ends into that cluster
        self.edges: list[tuple[str, str, dict[str, str]]] = []
        #: the kinds of element drawn, for the legend
        self.kinds: set[str] = set()
        #: draw each function's outputs as shapes of their own (the original's separate_outputs)
        self.separate_outputs = False
        #: ids of the output shapes drawn that way (not drawn again as final outputs)
        self.drawn_outputs: set[str] = set()
        #: draw the required inputs only one node reads in one box (the original's group_inputs)
        self.group_inputs = False

    # -- the whole picture -----------------------------------------------------------------

    def draw(self, pipeline: Pipeline) -> graphviz.Digraph:
        s = self.style
        font = {"fontname": s.font, "fontsize": _num(s.font_size), "fontcolor": s.text}
        graph = self.gv.Digraph(
            name=pipeline.label,
            graph_attr={
                "rankdir": self.orient,
                "bgcolor": s.background,
                "nodesep": "0.3",
                "ranksep": "0.4",
                **font,
            },
            node_attr={"margin": "0.12,0.05", **font},
            edge_attr={
                "color": s.edge,
                "arrowsize": "0.7",
                **font,
                "fontsize": _num(s.font_size - 2),
                "fontcolor": s.muted,
            },
        )
        bound = pipeline.bound_inputs
        env = self._grouped(graph, pipeline) if self.group_inputs else {}
        for name in pipeline.root_args:
            type_ = self.types.pipeline_input(pipeline, name)
            if name in env:
                continue
            if name in bound:
                env[name] = self._bound_input(graph, name, type_, bound[name])
            else:
                env[name] = self._input(graph, pipeline, name, type_)
        produced = self._scope(pipeline, graph, env, level=1)
        read = {name for item in pipeline.pgraph.nodes for name in item.inputs}
        for name in pipeline.output_names:
            if name not in read and produced[name].node not in self.drawn_outputs:
                self._output(graph, name, produced[name])
        for tail, head, attrs in self.edges:
            graph.edge(tail, head, **attrs)
        return graph

    def _scope(
        self, pipeline: Pipeline, graph: Any, env: dict[str, _Source], level: int
    ) -> dict[str, _Source]:
        """Draw the nodes of one pipeline; ``env`` says where its inputs come from."""
        local = dict(env)
        produced: dict[str, _Source] = {}
        for item in pipeline.pgraph.order:
            if isinstance(item, PipelineNode):
                if self.depth is None or level < self.depth:
                    outs = self._expanded(item, graph, local, level)
                else:
                    outs = self._collapsed(item, graph, local)
            else:
                outs = self._function(item, graph, local)
            local.update(outs)
            produced.update(outs)
        return produced

    # -- inputs and outputs ----------------------------------------------------------------

    def _input(self, graph: Any, pipeline: Pipeline, name: str, type_: str | None) -> _Source:
        s = self.style
        readers = [item for item in pipeline.pgraph.order if name in item.inputs]
        optional = bool(readers) and all(name in item.defaults for item in readers)
        extra = None
        if optional:
            found = _default(pipeline, name)
            extra = "optional" if found is _UNKNOWN else f"= {_short(found)}"
        self.kinds.add("optional" if optional else "input")
        node_id = self._id("in")
        graph.node(
            node_id,
            label=self._value_label(name, type_, extra),
            shape="ellipse",
            style=_styles("dashed" if optional else "solid", s.filled),
            fillcolor=s.input_fill,
            color=s.input_border,
        )
        return _Source(node_id, type=type_)

    def _grouped(self, graph: Any, pipeline: Pipeline) -> dict[str, _Source]:
        """One box per node for the required, unbound inputs that node alone reads (where it
        reads two or more of them): each input a row of the box."""
        groups: dict[int, list[str]] = {}
        for name in pipeline.unbound_args:
            readers = [item for item in pipeline.pgraph.order if name in item.inputs]
            if len(readers) == 1 and name not in readers[0].defaults:
                groups.setdefault(id(readers[0]), []).append(name)
        s = self.style
        sources: dict[str, _Source] = {}
        for names in groups.values():
            if len(names) < 2:
                continue
            self.kinds.add("input")
            node_id = self._id("in")
            rows = []
            for i, name in enumerate(names):
                type_ = self.types.pipeline_input(pipeline, name)
                rows.append([f'<TD PORT="o{i}">{self._typed(name, type_)}</TD>'])
                sources[name] = _Source(node_id, f"o{i}", type_)
            label = self._table(rows, s.input_fill, s.input_border, 1)
            graph.node(node_id, label=label, shape="plain")
        return sources

    def _bound_input(self, graph: Any, name: str, type_: str | None, value: Any) -> _Source:
        s = self.style
        self.kinds.add("bound")
        node_id = self._id("bound")
        graph.node(
            node_id,
            label=self._value_label(name, type_, f"bound = {_short(value)}"),
            shape="ellipse",
            style=_styles("solid", s.filled),
            fillcolor=s.bound_fill,
            color=s.bound_border,
        )
        return _Source(node_id, type=type_)

    def _output(self, graph: Any, name: str, source: _Source) -> None:
        s = self.style
        self.kinds.add("output")
        node_id = self._id("out")
        graph.node(
            node_id,
            label=self._value_label(name, source.type, None),
            shape="ellipse",
            peripheries="2",
            style=_styles("solid", s.filled),
            fillcolor=s.output_fill,
            color=s.output_border,
        )
        self._edge(source, node_id)

    # -- nodes -----------------------------------------------------------------------------

    def _function(self, node: Node, graph: Any, local: dict[str, _Source]) -> dict[str, _Source]:
        s = self.style
        self.kinds.add("function")
        node_id = self._id("fn")
        types = self.types.outputs(node)
        outs = [(out, types.get(out)) for out in node.outputs]
        if len(outs) == 1 and outs[0][0] == node.name:  # bare @node: the name is the output
            label = self._table(
                [[f'<TD PORT="o0">{self._typed(node.name, outs[0][1], bold=True)}</TD>']],
                s.function_fill,
                s.function_border,
                1,
            )
        else:
            label = self._box(
                f"<B>{escape(node.name)}</B>", [], outs, s.function_fill, s.function_border, 1
            )
        if self.separate_outputs:  # the name only: the outputs get shapes of their own
            label = self._table(
                [[f"<TD><B>{escape(node.name)}</B></TD>"]], s.function_fill, s.function_border, 1
            )
        graph.node(node_id, label=label, shape="plain")
        for wire, param in zip(node.inputs, node.parameters):
            note = f"{wire} → {param}" if wire != param else None
            self._edge(local[wire].but(note), node_id)
        if self.separate_outputs:
            return self._separate(graph, node_id, outs)
        return self._sources(node_id, outs)

    def _separate(
        self, graph: Any, node_id: str, outs: list[tuple[str, str | None]]
    ) -> dict[str, _Source]:
        """A function's outputs as ellipses of their own, each fed by the function."""
        s = self.style
        sources = {}
        for name, type_ in outs:
            self.kinds.add("output")
            out_id = self._id("val")
            graph.node(
                out_id,
                label=self._value_label(name, type_, None),
                shape="ellipse",
                style=_styles("solid", s.filled),
                fillcolor=s.output_fill,
                color=s.output_border,
            )
            self.edges.append((node_id, out_id, {}))
            self.drawn_outputs.add(out_id)
            sources[name] = _Source(out_id, None, type_)
        return sources

    def _collapsed(
        self, pn: PipelineNode, graph: Any, local: dict[str, _Source]
    ) -> dict[str, _Source]:
        s = self.style
        self.kinds.add("pipeline")
        node_id = self._id("pipe")
        types = self.types.outputs(pn)
        outs = [(out, types.get(out)) for out in pn.outputs]
        rows = []
        if pn.map_over:
            rows.append(f"map_over: {_map_text(pn)}")
        hidden = [n for n in pn.pipeline.bound_inputs if n not in pn.input_to_outer]
        if hidden:
            rows.append(f"bound: {', '.join(hidden)}")
        renamed = [f"{i} → {o}" for i, o in pn.output_to_outer.items() if i != o]
        if renamed:
            rows.append(f"outputs: {', '.join(renamed)}")
        header = (
            f"<B>{escape(pn.name)}</B>"
            f'<FONT COLOR="{s.muted}" POINT-SIZE="{_num(s.font_size - 2)}"> (pipeline)</FONT>'
        )
        label = self._box(header, rows, outs, s.pipeline_fill, s.pipeline_border, 2)
        graph.node(node_id, label=label, shape="plain")
        outer_to_inner = {outer: inner for inner, outer in pn.input_to_outer.items()}
        for outer in pn.inputs:
            self._edge(self._into(local[outer], pn, outer, outer_to_inner[outer]), node_id)
        return self._sources(node_id, outs)

    def _expanded(
        self, pn: PipelineNode, graph: Any, local: dict[str, _Source], level: int
    ) -> dict[str, _Source]:
        if self.flatten:
            return self._inner(pn, graph, local, level)
        s = self.style
        title = f'<B>{escape(pn.name)}</B><BR ALIGN="LEFT"/>'
        if pn.map_over:
            text = f"map_over: {_map_text(pn)}"
            title += f'<FONT COLOR="{s.muted}">{escape(text)}</FONT><BR ALIGN="LEFT"/>'
        self.kinds.add("cluster")
        with graph.subgraph(name=self._id("cluster_")) as cluster:
            cluster.attr(
                label=f"<{title}>",
                labeljust="l",
                style=_styles("rounded", s.filled),
                fillcolor=s.cluster_fill,
                color=s.pipeline_border if pn.map_over else s.cluster_border,
                penwidth="1.5" if pn.map_over else "1",
                margin="10",
            )
            return self._inner(pn, cluster, local, level)

    def _inner(
        self, pn: PipelineNode, graph: Any, local: dict[str, _Source], level: int
    ) -> dict[str, _Source]:
        """Draw an expanded nested pipeline's nodes into ``graph`` and wire them to the outside."""
        inner = pn.pipeline
        env: dict[str, _Source] = {}
        for name, outer in pn.input_to_outer.items():
            env[name] = self._into(local[outer], pn, outer, name)
        bound = inner.bound_inputs
        for name in inner.root_args:
            if name not in env:
                type_ = self.types.pipeline_input(inner, name)
                env[name] = self._bound_input(graph, name, type_, bound[name])
        produced = self._scope(inner, graph, env, level + 1)
        types = self.types.outputs(pn)
        result: dict[str, _Source] = {}
        for name, outer in pn.output_to_outer.items():
            rename = f"{name} → {outer}" if name != outer else name
            note = f"collect {rename}" if pn.map_over else (rename if name != outer else None)
            mapped = True if pn.map_over else None
            result[outer] = produced[name].but(note, mapped, types.get(outer))
        return result

    # -- legend ----------------------------------------------------------------------------

    def legend(self, graph: Any) -> None:
        """A box titled "Legend" with one sample of each kind of element the picture holds."""
        s = self.style
        small = {"fontsize": _num(s.font_size - 2)}
        filled = _styles("solid", s.filled)
        samples: list[tuple[str, str, dict[str, str]]] = [
            (
                "input",
                "input",
                {
                    "shape": "ellipse",
                    "style": filled,
                    "fillcolor": s.input_fill,
                    "color": s.input_border,
                },
            ),
            (
                "optional",
                "optional input",
                {
                    "shape": "ellipse",
                    "style": _styles("dashed", s.filled),
                    "fillcolor": s.input_fill,
                    "color": s.input_border,
                },
            ),
            (
                "bound",
                "bound input",
                {
                    "shape": "ellipse",
                    "style": filled,
                    "fillcolor": s.bound_fill,
                    "color": s.bound_border,
                },
            ),
            (
                "function",
                "function",
                {
                    "shape": "box",
                    "style": _styles("rounded", s.filled),
                    "fillcolor": s.function_fill,
                    "color": s.function_border,
                },
            ),
            (
                "pipeline",
                "nested pipeline",
                {
                    "shape": "box",
                    "penwidth": "2",
                    "style": _styles("rounded", s.filled),
                    "fillcolor": s.pipeline_fill,
                    "color": s.pipeline_border,
                },
            ),
            (
                "cluster",
                "nested pipeline, opened",
                {
                    "shape": "box",
                    "style": _styles("rounded", s.filled),
                    "fillcolor": s.cluster_fill,
                    "color": s.cluster_border,
                },
            ),
            (
                "output",
                "output",
                {
                    "shape": "ellipse",
                    "peripheries": "2",
                    "style": filled,
                    "fillcolor": s.output_fill,
                    "color": s.output_border,
                },
            ),
            ("mapped", "mapped over (edge)", {"shape": "plaintext", "fontcolor": s.mapped_edge}),
        ]
        shown = [(kind, text, attrs) for kind, text, attrs in samples if kind in self.kinds]
        with graph.subgraph(name="cluster_legend") as box:
            box.attr(
                label="<<B>Legend</B>>",
                labeljust="l",
                style="rounded,dashed",
                color=s.muted,
                margin="8",
            )
            previous = None
            for kind, text, attrs in shown:
                node_id = f"legend_{kind}"
                box.node(node_id, label=text, **small, **attrs)
                if previous is not None:  # invisible edges keep the samples in one column
                    box.edge(previous, node_id, style="invis")
                previous = node_id

    # -- pieces ----------------------------------------------------------------------------

    def _into(self, source: _Source, pn: PipelineNode, outer: str, inner: str) -> _Source:
        """``source`` as it enters nested pipeline ``pn`` as ``inner``: renamed and/or mapped."""
        rename = f"{outer} → {inner}" if outer != inner else outer
        if outer in pn.map_over:
            return source.but(f"map {rename}", mapped=True)
        return source.but(rename if outer != inner else None)

    def _edge(self, source: _Source, head: str) -> None:
        tail = source.node
        if source.port is not None:
            tail = f"{tail}:{source.port}:{_TAIL_SIDE[self.orient]}"
        attrs: dict[str, str] = {}
        if source.notes:
            attrs["label"] = "<" + "<BR/>".join(escape(n) for n in source.notes) + ">"
        if source.mapped:
            self.kinds.add("mapped")
            attrs.update(color=self.style.mapped_edge, penwidth="1.8")
        self.edges.append((tail, head, attrs))

    def _sources(self, node_id: str, outs: list[tuple[str, str | None]]) -> dict[str, _Source]:
        return {name: _Source(node_id, f"o{i}", type_) for i, (name, type_) in enumerate(outs)}

    def _id(self, prefix: str) -> str:
        return f"{prefix}{next(self.ids)}"

    def _typed(self, name: str, type_: str | None, bold: bool = False) -> str:
        text = f"<B>{escape(name)}</B>" if bold else escape(name)
        if self.show_types and type_:
            text += f'<FONT COLOR="{self.style.muted}"> : {escape(type_)}</FONT>'
        return text

    def _value_label(self, name: str, type_: str | None, extra: str | None) -> str:
        text = self._typed(name, type_)
        if extra:
            s = self.style
            small = _num(s.font_size - 2)
            text += f'<BR/><FONT COLOR="{s.muted}" POINT-SIZE="{small}">{escape(extra)}</FONT>'
        return f"<{text}>"

    def _box(
        self,
        header: str,
        rows: list[str],
        outs: list[tuple[str, str | None]],
        fill: str,
        border: str,
        width: int,
    ) -> str:
        """A rounded table: a header, note rows, then one cell (a port) per output."""
        s = self.style
        cells = [f'<TD PORT="o{i}">{self._typed(n, t)}</TD>' for i, (n, t) in enumerate(outs)]
        small = _num(s.font_size - 2)
        notes = [
            [f'<TD><FONT COLOR="{s.muted}" POINT-SIZE="{small}">{escape(r)}</FONT></TD>']
            for r in rows
        ]
        if self.orient in ("TB", "BT"):
            grid = [[f"<TD>{header}</TD>"], *notes, cells]  # outputs side by side
        else:
            grid = [[f"<TD>{header}</TD>"], *notes, *([c] for c in cells)]  # outputs stacked
        return self._table(grid, fill, border, width)

    def _table(self, grid: list[list[str]], fill: str, border: str, width: int) -> str:
        span = max(len(row) for row in grid)
        lines = []
        for row in grid:
            if len(row) == 1 and span > 1:
                row = [row[0].replace("<TD", f'<TD COLSPAN="{span}"', 1)]
            lines.append("<TR>" + "<VR/>".join(row) + "</TR>")
        fill_attr = f' BGCOLOR="{fill}"' if self.style.filled else ""
        return (
            f'<<TABLE BORDER="{width}" CELLBORDER="0" CELLSPACING="0" CELLPADDING="5" '
            f'STYLE="ROUNDED"{fill_attr} COLOR="{border}">' + "<HR/>".join(lines) + "</TABLE>>"
        )


_UNKNOWN = object()


def _default(pipeline: Pipeline, name: str) -> Any:
    """The default value of optional input ``name``: the first reading function's, looking into
    nested pipelines (where a bound value counts too); ``_UNKNOWN`` if there is none."""
    bound = pipeline.bound_inputs
    if name in bound:
        return bound[name]
    for item in pipeline.pgraph.order:
        if name not in item.inputs:
            continue
        if isinstance(item, Node) and name in item.defaults:
            return item.defaults[name]
        if isinstance(item, PipelineNode):
            inner = {o: i for i, o in item.input_to_outer.items()}[name]
            found = _default(item.pipeline, inner)
            if found is not _UNKNOWN:
                return found
    return _UNKNOWN


def _map_text(pn: PipelineNode) -> str:
    names = ", ".join(pn.map_over)
    return f"{names} ({pn.map_mode})" if len(pn.map_over) > 1 else names


def _styles(*parts: str | bool) -> str:
    """A graphviz ``style`` list; a trailing bool says whether to add ``filled``."""
    *names, filled = parts
    return ",".join([*(str(n) for n in names), *(["filled"] if filled else [])])


def _short(value: Any, limit: int = 24) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _num(value: float) -> str:
    return f"{value:g}"
