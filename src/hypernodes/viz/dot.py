"""DOT source without the ``graphviz`` package: the few ``graphviz.Digraph`` methods the
picture builder calls (``node``, ``edge``, ``attr``, ``subgraph``, ``source``), for writing
``.dot``/``.gv`` files where only the text is wanted.  Rendering still needs graphviz.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def quote(value: Any) -> str:
    """A DOT ID: an HTML-like label (``<...>``) as it is, anything else double-quoted."""
    text = str(value)
    if text.startswith("<") and text.endswith(">"):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _endpoint(name: str) -> str:
    """``node``, ``node:port`` or ``node:port:side`` as DOT writes an edge's end."""
    return ":".join(quote(part) for part in name.split(":"))


def _attrs(attrs: dict[str, Any]) -> str:
    shown = [f"{key}={quote(value)}" for key, value in attrs.items() if value is not None]
    return f" [{' '.join(shown)}]" if shown else ""


class DotGraph:
    """A directed graph (or a subgraph of one) written as DOT text."""

    def __init__(
        self,
        name: str = "",
        graph_attr: dict[str, Any] | None = None,
        node_attr: dict[str, Any] | None = None,
        edge_attr: dict[str, Any] | None = None,
        *,
        keyword: str = "digraph",
    ) -> None:
        self.name = name
        self.keyword = keyword
        self.body: list[str] = []
        for kind, attrs in (("graph", graph_attr), ("node", node_attr), ("edge", edge_attr)):
            if attrs:
                self.body.append(f"\t{kind}{_attrs(attrs)}")

    def node(self, name: str, label: str | None = None, **attrs: Any) -> None:
        self.body.append(f"\t{quote(name)}{_attrs({'label': label, **attrs})}")

    def edge(self, tail: str, head: str, label: str | None = None, **attrs: Any) -> None:
        line = f"\t{_endpoint(tail)} -> {_endpoint(head)}"
        self.body.append(line + _attrs({"label": label, **attrs}))

    def attr(self, kind: str | None = None, **attrs: Any) -> None:
        self.body.append(f"\t{kind or 'graph'}{_attrs(attrs)}")

    @contextmanager
    def subgraph(self, name: str = "") -> Iterator[DotGraph]:
        inner = DotGraph(name, keyword="subgraph")
        yield inner
        self.body.extend("\t" + line for line in inner.source.splitlines())

    @property
    def source(self) -> str:
        head = f"{self.keyword} {quote(self.name)} {{" if self.name else f"{self.keyword} {{"
        return "\n".join([head, *self.body, "}"]) + "\n"


class DotModule:
    """Stands in for the ``graphviz`` module where only DOT text is written."""

    Digraph = DotGraph
