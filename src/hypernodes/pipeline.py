"""``Pipeline``: the front door.  Holds nodes and settings; validates; runs, maps and nests."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import networkx as nx

from . import events
from ._gc import gc_paused
from .cache.item import prepare_map
from .context import RunContext, _dispatcher
from .exceptions import HyperNodesError, InvalidNodeError, MapError
from .graph import PipelineGraph
from .node import Node
from .pipeline_node import MAP_MODES, PipelineNode
from .plan import Plan, add_failure_note, compile_plan

if TYPE_CHECKING:
    from .viz.styles import Style

OutputName = str | Sequence[str] | None


class Pipeline:
    """A set of nodes wired by name, with the engine, cache and callbacks that run it.

    ``nodes`` may hold :class:`~hypernodes.Node` objects, other pipelines (nested as nodes) and
    ``pipeline.as_node(...)`` adapters.  The graph is validated once, here: duplicate outputs,
    cycles and non-node items raise at construction.  ``with_*`` and ``bind`` return new pipelines;
    a pipeline is never changed by running it, so one object may serve many parents and threads.
    """

    def __init__(
        self,
        nodes: Iterable[Any],
        engine: Any = None,
        cache: Any = None,
        callbacks: Iterable[Any] | None = None,
        name: str | None = None,
    ) -> None:
        if isinstance(nodes, (Node, Pipeline, PipelineNode)) or not isinstance(nodes, Iterable):
            raise InvalidNodeError("Pipeline(nodes=...) takes a list of nodes")
        items = [_as_node(item, i) for i, item in enumerate(nodes)]
        self.name = name
        with gc_paused():
            self.pgraph = PipelineGraph(items, self.label)
        self.engine = engine
        self.cache = cache
        self.callbacks: list[Any] | None = list(callbacks) if callbacks is not None else None
        self._bound: dict[str, Any] = {}

    # -- description -------------------------------------------------------------------------

    @property
    def label(self) -> str:
        """The name used in messages and paths: ``name``, or ``"pipeline"``."""
        return self.name or "pipeline"

    @property
    def nodes(self) -> list[Any]:
        """The nodes, in the order given (nested pipelines appear as :class:`PipelineNode`)."""
        return list(self.pgraph.nodes)

    @property
    def graph(self) -> nx.DiGraph:
        """The dependency graph: an edge ``a -> b`` carries ``names``, the values ``b`` reads from ``a``."""
        return self.pgraph.graph

    @property
    def root_args(self) -> tuple[str, ...]:
        """Every input the pipeline takes from outside (bound, optional or required)."""
        return self.pgraph.root_args

    @property
    def output_names(self) -> tuple[str, ...]:
        """Every output the nodes produce, in topological order."""
        return self.pgraph.output_names

    @property
    def bound_inputs(self) -> dict[str, Any]:
        """The values fixed with :meth:`bind`."""
        return dict(self._bound)

    @property
    def unbound_args(self) -> tuple[str, ...]:
        """Root inputs that are not bound: what a caller may still pass."""
        return tuple(a for a in self.root_args if a not in self._bound)

    def __repr__(self) -> str:
        shown = ", ".join(repr(n) for n in self.pgraph.nodes[:8])
        more = f", ... {len(self.pgraph.nodes) - 8} more" if len(self.pgraph.nodes) > 8 else ""
        bound = f", bound={sorted(self._bound)}" if self._bound else ""
        return f"Pipeline(name={self.name!r}, nodes=[{shown}{more}]{bound})"

    def visualize(
        self,
        filename: str | Path | None = None,
        orient: Literal["TB", "LR", "BT", "RL"] = "TB",
        depth: int | None = 1,
        show_types: bool = True,
        flatten: bool = False,
        style: str | Style | Mapping[str, Any] = "default",
    ) -> Any:
        """Draw the pipeline with graphviz and return the ``graphviz.Digraph``.

        ``filename`` also writes the picture, in the format its extension names (``.svg``,
        ``.png``, ``.pdf``; ``.dot``/``.gv`` write the DOT source).  ``orient`` is the direction
        of flow.  Nested pipelines are single boxes at ``depth=1`` and are drawn inside a box of
        their own for ``depth`` levels (``None``: all levels); ``flatten=True`` draws every level
        without the boxes.  ``show_types`` adds the functions' type hints.  ``style`` is a theme
        name (``"default"``, ``"dark"``, ``"minimal"``) or a dict of
        :class:`hypernodes.viz.Style` fields to override.  Needs ``pip install "hypernodes[viz]"``
        and the graphviz ``dot`` program to render.
        """
        from .viz import visualize

        return visualize(self, filename, orient, depth, show_types, flatten, style)

    def _repr_svg_(self) -> str | None:
        """Jupyter shows the pipeline as a picture (``None``, so the repr, without graphviz)."""
        from .viz import repr_svg

        return repr_svg(self)

    # -- copies ------------------------------------------------------------------------------

    def _copy(self, **changes: Any) -> Pipeline:
        clone = copy.copy(self)
        for key, value in changes.items():
            setattr(clone, key, value)
        return clone

    def with_engine(self, engine: Any) -> Pipeline:
        """A copy that runs on ``engine``."""
        return self._copy(engine=engine)

    def with_cache(self, cache: Any) -> Pipeline:
        """A copy that uses ``cache``."""
        return self._copy(cache=cache)

    def with_callbacks(self, callbacks: Iterable[Any] | None) -> Pipeline:
        """A copy that reports to ``callbacks``."""
        return self._copy(callbacks=list(callbacks) if callbacks is not None else None)

    def with_name(self, name: str | None) -> Pipeline:
        """A copy called ``name``."""
        return self._copy(name=name)

    def bind(self, **values: Any) -> Pipeline:
        """A copy with inputs fixed to ``values``; inputs passed to ``run``/``map`` still win."""
        unknown = [k for k in values if k not in self.root_args]
        if unknown:
            raise HyperNodesError(
                f"pipeline {self.label!r} has no input(s) {unknown} to bind; "
                f"its inputs are {list(self.root_args)}"
            )
        return self._copy(_bound={**self._bound, **values})

    def unbind(self, *names: str) -> Pipeline:
        """A copy with the bound values of ``names`` removed (all of them when none are named)."""
        unknown = [n for n in names if n not in self._bound]
        if unknown:
            raise HyperNodesError(
                f"pipeline {self.label!r} has no bound input(s) {unknown}; bound: {sorted(self._bound)}"
            )
        keep = {k: v for k, v in self._bound.items() if names and k not in names}
        return self._copy(_bound=keep)

    def as_node(
        self,
        input_mapping: Mapping[str, str] | None = None,
        output_mapping: Mapping[str, str] | None = None,
        map_over: str | Sequence[str] | None = None,
        map_mode: Literal["zip", "product"] = "zip",
        name: str | None = None,
    ) -> PipelineNode:
        """Use this pipeline as a node: rename inputs (``{outer: inner}``) and outputs
        (``{inner: outer}``), and optionally map it over outer lists (``map_over``)."""
        return PipelineNode(self, input_mapping, output_mapping, map_over, map_mode, name)

    # -- running -----------------------------------------------------------------------------

    def run(
        self, inputs: Mapping[str, Any] | None = None, output_name: OutputName = None
    ) -> dict[str, Any]:
        """Compute the outputs (all, or those named by ``output_name``) for one set of inputs."""
        ctx = self._root_context()
        try:
            return self._execute(dict(inputs or {}), _outputs_key(output_name), ctx)
        except Exception as exc:
            add_failure_note(exc)
            raise

    def __call__(self, **inputs: Any) -> dict[str, Any]:
        """``pipeline(x=1)`` is ``pipeline.run(inputs={"x": 1})``."""
        return self.run(inputs)

    def map(
        self,
        inputs: Mapping[str, Any],
        map_over: str | Sequence[str],
        map_mode: Literal["zip", "product"] = "zip",
        output_name: OutputName = None,
        return_format: Literal["list", "columns"] = "list",
        on_error: Literal["raise", "continue"] = "raise",
    ) -> list[dict[str, Any]] | dict[str, list[Any]]:
        """Run once per item of the ``map_over`` inputs; other inputs go whole to every item.

        ``map_mode="zip"`` pairs the lists element by element (they must have one length);
        ``"product"`` runs every combination.  Returns a list of per-item output dicts in input
        order, or with ``return_format="columns"`` one list per output.

        ``on_error="raise"`` stops at the first failing item and raises its exception (a note names
        the node and the item index).  ``"continue"`` attempts every item; an output that a failed
        node kept from being computed holds an :class:`~hypernodes.ItemError` instead.
        """
        if return_format not in ("list", "columns"):
            raise MapError(f"return_format must be 'list' or 'columns', got {return_format!r}")
        if on_error not in ("raise", "continue"):
            raise MapError(f"on_error must be 'raise' or 'continue', got {on_error!r}")
        ctx = self._root_context()
        names = _map_names(map_over)
        try:
            plan, rows = self._map(
                dict(inputs), names, map_mode, _outputs_key(output_name), ctx, on_error
            )
        except Exception as exc:
            add_failure_note(exc)
            raise
        if not isinstance(rows, list):  # a lazy result, e.g. DaftEngine(collect=False)'s DataFrame
            return rows
        if return_format == "columns":
            return _columns(plan, rows)
        return rows

    # -- internals shared with nested pipelines and engines ----------------------------------

    def _root_context(self) -> RunContext:
        from .engines.hypernodes import default_engine

        return RunContext(
            engine=self.engine if self.engine is not None else default_engine(),
            cache=self.cache,
            dispatcher=_dispatcher(self.callbacks),
            path=(self.label,),
            items=(None,),
        )

    def plan(self, outputs: tuple[str, ...] | None, provided: frozenset[str]) -> Plan:
        """The compiled plan for ``outputs`` given inputs named ``provided`` (cached)."""
        key = (outputs, provided)
        found = self.pgraph.plans.get(key)
        if found is None:
            with gc_paused():
                found = compile_plan(self.pgraph, outputs, provided, self.label)
            self.pgraph.plans[key] = found
        return found

    def _execute(
        self, inputs: dict[str, Any], outputs: tuple[str, ...] | None, ctx: RunContext
    ) -> dict[str, Any]:
        if self._bound:
            inputs = {**self._bound, **inputs}
        plan = self.plan(outputs, frozenset(inputs))
        if ctx.dispatcher is None:
            return ctx.engine.run(plan, plan.seed(inputs), ctx)
        with events.observe_run(ctx, ctx.path[-1], inputs) as box:
            box["outputs"] = result = ctx.engine.run(plan, plan.seed(inputs), ctx)
        return result

    def _map(
        self,
        inputs: dict[str, Any],
        names: tuple[str, ...],
        map_mode: str,
        outputs: tuple[str, ...] | None,
        ctx: RunContext,
        on_error: str = "raise",
    ) -> tuple[Plan, list[dict[str, Any]]]:
        if map_mode not in MAP_MODES:
            raise MapError(f"map_mode must be 'zip' or 'product', got {map_mode!r}")
        for name in names:
            if name not in self.root_args:
                raise MapError(
                    f"map_over names {name!r}, but pipeline {self.label!r} takes no input {name!r}; "
                    f"its inputs are {list(self.root_args)}"
                )
            if name not in inputs:
                raise MapError(f"map_over names {name!r}, but inputs has no value for it")
        seqs = [_as_sequence(inputs.pop(name), name) for name in names]
        if map_mode == "zip":
            lengths = {len(s) for s in seqs}
            if len(lengths) > 1:
                detail = ", ".join(f"{n}: {len(s)}" for n, s in zip(names, seqs))
                raise MapError(
                    f"map_mode='zip' needs lists of one length, got {detail}; "
                    "use map_mode='product' for every combination"
                )
            count = len(seqs[0]) if seqs else 0
        else:
            count = 1
            for s in seqs:
                count *= len(s)
        base = {**self._bound, **inputs} if self._bound else inputs
        plan = self.plan(outputs, frozenset(base).union(names))
        seeded = plan.seed(base)
        if ctx.cache is not None:
            seeded = prepare_map(plan, seeded)  # per-call cache data shared by all items
        items = MapItems(seeded, names, seqs, map_mode)
        extra = {} if on_error == "raise" else {"on_error": on_error}
        if ctx.dispatcher is None:
            return plan, ctx.engine.map(plan, items, count, ctx, **extra)
        with events.observe_map(ctx, ctx.path[-1], count):
            return plan, ctx.engine.map(plan, items, count, ctx, **extra)

    def _map_columns(
        self,
        inputs: dict[str, Any],
        names: tuple[str, ...],
        map_mode: str,
        outputs: tuple[str, ...] | None,
        ctx: RunContext,
    ) -> dict[str, list[Any]]:
        plan, rows = self._map(inputs, names, map_mode, outputs, ctx)
        return _columns(plan, rows)


def _as_node(item: Any, index: int) -> Any:
    if isinstance(item, (Node, PipelineNode)):
        return item
    if isinstance(item, Pipeline):
        return PipelineNode(item)
    hint = " (decorate the function with @node)" if callable(item) else ""
    raise InvalidNodeError(f"nodes[{index}] is {item!r}, not a node or a pipeline{hint}")


def _outputs_key(output_name: OutputName) -> tuple[str, ...] | None:
    if output_name is None:
        return None
    if isinstance(output_name, str):
        return (output_name,)
    names = tuple(output_name)
    if not all(isinstance(n, str) for n in names):
        raise HyperNodesError(
            f"output_name must be a string or a list of strings, got {output_name!r}"
        )
    return names


def _map_names(map_over: Any) -> tuple[str, ...]:
    names = (map_over,) if isinstance(map_over, str) else tuple(map_over or ())
    if not names or not all(isinstance(n, str) for n in names):
        raise MapError(f"map_over must name one input or a list of inputs, got {map_over!r}")
    if len(set(names)) != len(names):
        raise MapError(f"map_over names an input twice: {list(names)}")
    return names


def _as_sequence(value: Any, name: str) -> Sequence[Any]:
    if isinstance(value, (list, tuple, range)):
        return value
    if isinstance(value, (str, bytes, bytearray, Mapping, set, frozenset)) or not isinstance(
        value, Iterable
    ):
        raise MapError(
            f"map_over input {name!r} must be a sequence of values (list, tuple, range, array), "
            f"got {type(value).__name__}; pass [value] to map over a single item"
        )
    return list(value)


class MapItems:
    """The items of one map: ``base`` (values shared by every item) plus one value of each input
    in ``names``, taken from ``seqs`` as ``mode`` (``"zip"`` or ``"product"``) pairs them.

    Iterating yields one dict per item.  Engines that work on columns (Daft) read the parts
    instead, so shared values are not repeated per item.
    """

    __slots__ = ("base", "names", "seqs", "mode")

    def __init__(
        self, base: dict[str, Any], names: tuple[str, ...], seqs: list[Sequence[Any]], mode: str
    ) -> None:
        self.base = base
        self.names = names
        self.seqs = seqs
        self.mode = mode

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return _items(self.base, self.names, self.seqs, self.mode)


def _items(
    base: dict[str, Any], names: tuple[str, ...], seqs: list[Sequence[Any]], mode: str
) -> Iterator[dict[str, Any]]:
    if len(names) == 1:
        (name,) = names
        for value in seqs[0]:
            item = base.copy()
            item[name] = value
            yield item
        return
    combos = zip(*seqs) if mode == "zip" else itertools.product(*seqs)
    for combo in combos:
        item = base.copy()
        item.update(zip(names, combo))
        yield item


def _columns(plan: Plan, rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {name: [row[name] for row in rows] for name in plan.output_names}
