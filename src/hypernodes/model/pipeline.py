"""``Pipeline``: the front door.  Holds nodes and settings; validates; runs, maps and nests."""

from __future__ import annotations

import copy
from collections.abc import (
    AsyncIterator,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import AbstractContextManager, aclosing, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import networkx as nx

from ..cache.base import Cache
from ..cache.explain import CacheReport, explain
from ..cache.item import prepare_call
from ..engines.base import Engine, engine_settings, is_tolerant
from ..engines.hypernodes import HypernodesEngine, bridge, default_engine
from ..exceptions import (
    UNNAMED,
    HyperNodesError,
    InvalidNodeError,
    InvalidSettingError,
    MapError,
    VariantError,
    pipeline_phrase,
)
from ..execution.context import RunContext
from ..execution.failure import add_failure_note
from ..execution.plan import Plan, compile_plan
from ..observe import events
from ..observe.callbacks import RunOrigin, dispatcher_for
from ..telemetry import env as run_log_env
from ..viz import check_original_viz_options, repr_svg, visualize
from ..viz.widget import ENGINES as WIDGET_ENGINES
from ..viz.widget import GraphWidget
from . import lineage, patching
from .checks import (
    check_cache,
    check_callbacks,
    check_engine,
    check_input_names,
    check_inputs_mapping,
    check_pipeline_name,
    name_tuple,
    nesting_cycle,
    output_not_input_hint,
    unknown_input_error,
)
from .failures import Budget, awithin_budget, collect, read_budget, within_budget
from .formats import as_frame, check_return_format
from .gc import gc_paused
from .graph import PipelineGraph
from .lineage import Lineage
from .mapspec import MapItems, MapSpec
from .namespaces import namespaced
from .node import Node
from .pipeline_node import PipelineNode
from .resources import resource_names, resources_in_use
from .typecheck import TypeCheck, check_mode, check_pipeline, with_runtime_checks
from .variants import read_variants

if TYPE_CHECKING:
    from ..viz.styles import Style

OutputName = str | Sequence[str] | None


class Pipeline:
    """A set of nodes wired by name, with the engine, cache and callbacks that run it.

    ``nodes`` may hold :class:`~hypernodes.Node` objects, other pipelines (nested as nodes) and
    ``pipeline.as_node(...)`` adapters.  The graph is validated once, here: duplicate outputs,
    cycles and non-node items raise at construction.  ``with_*`` and ``bind`` return new pipelines;
    a pipeline is never changed by running it, so one object may serve many parents and threads.

    ``type_check`` checks each connection whose two ends are annotated: ``"error"`` (default)
    raises :class:`~hypernodes.exceptions.TypeMismatchError` for a clearly incompatible pair,
    ``"warn"`` warns instead, ``"off"`` skips the check, and ``"runtime"`` also checks the values
    nodes return against their annotations as the pipeline runs (see ``docs/type-checks.md``).
    """

    def __init__(
        self,
        nodes: Iterable[Any],
        engine: Engine | None = None,
        cache: Cache | None = None,
        callbacks: Iterable[Any] | None = None,
        name: str | None = None,
        type_check: TypeCheck = "error",
    ) -> None:
        if isinstance(nodes, (Node, Pipeline, PipelineNode)) or not isinstance(nodes, Iterable):
            raise InvalidNodeError("Pipeline(nodes=...) takes a list of nodes")
        items = [_as_node(item, i) for i, item in enumerate(nodes)]
        engine, cache = check_engine(engine), check_cache(cache)
        checked_callbacks = check_callbacks(callbacks)
        label = check_pipeline_name(name) or "pipeline"
        #: how connections are type-checked: "error", "warn", "off" or "runtime" (see typecheck)
        type_mode = check_mode(type_check)
        if type_check == "runtime":
            items = with_runtime_checks(items)
        #: the variant nodes and the variant chosen for each output (None: no variants)
        self._variants = read_variants(items, label)
        if self._variants is not None:
            items = self._variants.active()
        with gc_paused():
            pgraph = PipelineGraph(items, label)
        previous = self.__dict__.get("pgraph")
        self.pgraph = pgraph
        if previous is not None:  # __init__ run again, on a pipeline that may be nested already
            loop = nesting_cycle(label, pgraph)
            if loop is not None:
                self.pgraph = previous
                raise loop
        self.name = name
        self.type_check = type_mode
        self.engine: Engine | None = engine
        self.cache: Cache | None = cache
        self.callbacks: list[Any] | None = checked_callbacks
        self._bound: dict[str, Any] = {}
        if type_check != "off":
            with gc_paused():
                check_pipeline(self, type_check)

    # -- description -------------------------------------------------------------------------

    @property
    def label(self) -> str:
        """The name used in paths and events: ``name``, or ``"pipeline"``."""
        return self.name or UNNAMED

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

    @property
    def unfulfilled_args(self) -> tuple[str, ...]:
        """The original HyperNodes 0.4's name of :attr:`unbound_args`."""
        return self.unbound_args

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
        show_legend: bool = False,
        return_type: Literal["auto", "graphviz", "svg", "html"] = "auto",
        engine: Literal["graphviz", "widget", "js"] = "graphviz",
        **original: Any,
    ) -> Any:
        """Draw the pipeline with graphviz, or as an interactive widget.

        ``filename`` also writes the picture, in the format its extension names (``.svg``,
        ``.png``, ``.pdf``; ``.dot``/``.gv`` write the DOT source).  ``orient`` is the direction
        of flow.  Nested pipelines are single boxes at ``depth=1`` and are drawn inside a box of
        their own for ``depth`` levels (``None``: all levels); ``flatten=True`` draws every level
        without the boxes.  ``show_types`` adds the functions' type hints.  ``style`` is a theme
        name (``"default"``, ``"dark"``, ``"minimal"``) or a dict of
        :class:`hypernodes.viz.Style` fields to override.  ``show_legend`` adds a box explaining
        each kind of element in the picture.  ``return_type``: ``"auto"``/``"graphviz"`` return
        the ``graphviz.Digraph`` (Jupyter shows it as a picture), ``"svg"`` the SVG text,
        ``"html"`` an ``IPython.display.HTML`` of it.  Needs ``pip install "hypernodes[viz]"``
        and the graphviz ``dot`` program to render.

        ``engine="widget"`` (or ``"js"``, the original HyperNodes' name) returns instead a
        :class:`hypernodes.viz.widget.GraphWidget`: an interactive graph drawn in the browser
        (pan, zoom, expand nested pipelines, a node's details on click, light/dark theme), shown
        as HTML in Jupyter; ``depth=None`` (or above 1) opens nested pipelines, ``style="dark"``
        starts it dark, and a ``filename`` ending in ``.html`` saves it.  It needs no graphviz.
        The original HyperNodes' options ``separate_outputs``, ``group_inputs`` and
        ``interactive=False`` are accepted (see ``docs/migrating.md``).
        """
        if engine in WIDGET_ENGINES:
            widget = GraphWidget(
                self,
                theme="dark" if style == "dark" else "light",
                expanded=depth is None or depth > 1,
            )
            if filename is not None:
                widget.save(filename)
            return widget
        if engine != "graphviz":
            raise HyperNodesError(f"engine must be 'graphviz', 'widget' or 'js', got {engine!r}")

        check_original_viz_options(original)
        loop = nesting_cycle(self.label, self.pgraph)
        if loop is not None:
            raise loop
        return visualize(
            self,
            filename,
            orient,
            depth,
            show_types,
            flatten,
            style,
            show_legend,
            return_type,
            separate_outputs=original.get("separate_outputs", False),
            group_inputs=original.get("group_inputs", False),
        )

    def _repr_svg_(self) -> str | None:
        """Jupyter shows the pipeline as a picture (``None``, so the repr, without graphviz)."""

        return repr_svg(self)

    # -- copies ------------------------------------------------------------------------------

    def _copy(self, **changes: Any) -> Pipeline:
        clone = copy.copy(self)
        for key, value in changes.items():
            setattr(clone, key, value)
        return clone

    def with_engine(self, engine: Engine | None) -> Pipeline:
        """A copy that runs on ``engine``."""
        return self._copy(engine=check_engine(engine))

    def with_cache(self, cache: Cache | None) -> Pipeline:
        """A copy that uses ``cache``."""
        return self._copy(cache=check_cache(cache))

    def with_callbacks(self, callbacks: Iterable[Any] | None) -> Pipeline:
        """A copy that reports to ``callbacks``."""
        return self._copy(callbacks=check_callbacks(callbacks))

    def with_name(self, name: str | None) -> Pipeline:
        """A copy called ``name``."""
        return self._copy(name=check_pipeline_name(name))

    def bind(self, **values: Any) -> Pipeline:
        """A copy with inputs fixed to ``values``; inputs passed to ``run``/``map`` still win."""
        unknown = [k for k in values if k not in self.root_args]
        if unknown:
            error = unknown_input_error(self.label, unknown, self.root_args)
            hint = output_not_input_hint(self.pgraph, unknown, "bind()")
            if hint:
                error.args = (f"{error.args[0]}{hint}",)
            raise error
        return self._copy(_bound={**self._bound, **values})

    def unbind(self, *names: str) -> Pipeline:
        """A copy with the bound values of ``names`` removed (all of them when none are named).

        An input that is not bound is left as it is (as in the original HyperNodes); a name
        that is no input of the pipeline raises ``UnknownInputError`` (a typo)."""
        unknown = [n for n in names if n not in self._bound and n not in self.root_args]
        if unknown:
            raise unknown_input_error(self.label, unknown, self.root_args)
        keep = {k: v for k, v in self._bound.items() if names and k not in names}
        return self._copy(_bound=keep)

    def as_node(
        self,
        input_mapping: Mapping[str, str] | None = None,
        output_mapping: Mapping[str, str] | None = None,
        map_over: str | Sequence[str] | None = None,
        map_mode: Literal["zip", "product"] = "zip",
        name: str | None = None,
        namespace: str | None = None,
        expose: Literal["all", "mapped"] | Sequence[str] = "all",
    ) -> PipelineNode:
        """Use this pipeline as a node: rename inputs (``{outer: inner}``) and outputs
        (``{inner: outer}``), and optionally map it over outer lists (``map_over``).

        ``namespace="train"`` shows every input and output outside as ``train_<name>`` (names
        the mappings rename keep theirs; ``map_over`` uses the outer names) and names the node
        ``train``, so one pipeline can be used twice in a parent (see ``docs/nesting.md``).
        ``expose`` picks the inner outputs the parent sees: ``"all"``, ``"mapped"`` (those in
        ``output_mapping``, the original HyperNodes 0.4's behaviour) or a list of names.
        """
        if namespace is not None:
            input_mapping, output_mapping = namespaced(
                self, namespace, input_mapping, output_mapping
            )
            name = name or namespace
        return PipelineNode(self, input_mapping, output_mapping, map_over, map_mode, name, expose)

    # -- lineage, slicing and patching (model/lineage.py, model/patching.py) -----------------

    def upstream_of(self, *names: str) -> Lineage:
        """The nodes and values that ``names`` (node or value names) are computed from, with
        ``names`` themselves, each in topological order (``.nodes``, ``.values``)."""
        return lineage.upstream_of(self.pgraph, names, self.label)

    def downstream_of(self, *names: str) -> Lineage:
        """The nodes and values computed from ``names``, with ``names`` themselves."""
        return lineage.downstream_of(self.pgraph, names, self.label)

    def path_between(self, source: str, target: str) -> Lineage:
        """The nodes and values on a path from ``source`` to ``target`` (both included); empty
        (falsy) when ``target`` does not depend on ``source``."""
        return lineage.path_between(self.pgraph, source, target, self.label)

    def subpipeline(
        self,
        inputs: str | Sequence[str] | None = None,
        outputs: str | Sequence[str] | None = None,
    ) -> Pipeline:
        """A copy holding only the nodes that compute ``outputs`` from ``inputs``.

        ``inputs`` become root inputs of the copy (the nodes producing them are left out);
        without ``outputs``, every output computed from ``inputs`` is kept; without either, the
        copy holds every node.  Engine, cache, callbacks and bound values carry over.
        """
        if self._variants is not None:
            self._variants.check_decided(self.label)
        kept = lineage.slice_nodes(self.pgraph, inputs, outputs, self.label)
        with gc_paused():
            pgraph = PipelineGraph(kept, self.label)
        bound = {k: v for k, v in self._bound.items() if k in pgraph.root_args}
        return self._copy(pgraph=pgraph, _bound=bound, _variants=None)

    def with_variants(self, **choices: str) -> Pipeline:
        """A copy that runs the named variants: ``with_variants(model="ridge")`` picks the node
        with ``variant="ridge"`` among those producing ``model`` (see ``docs/variants.md``)."""
        if self._variants is None:
            raise VariantError(f"{pipeline_phrase(self.name)} has no variant nodes")
        variants = self._variants.pick(self.label, choices)
        with gc_paused():
            pgraph = PipelineGraph(variants.active(), self.label)
        clone = self._copy(pgraph=pgraph, _variants=variants)
        if self.type_check != "off":
            check_pipeline(clone, self.type_check)
        return clone

    @property
    def variants(self) -> dict[str, dict[str, Any]]:
        """For each output with variants, ``{"variants": [names], "chosen": name or None}``."""
        return self._variants.describe() if self._variants is not None else {}

    def with_node_function(self, name: str, func: Callable[..., Any]) -> Pipeline:
        """A copy whose node ``name`` calls ``func`` (for tests: a fake API, a fixed answer).

        ``func`` takes the node's parameters (same names, any order) and keeps its options
        (outputs, retries, timeout, cache settings, checks).  A node of a nested pipeline is
        named by its path: ``"inner.fetch"``.  Raises ``UnknownNodeError`` or
        ``NodeSignatureError`` (see ``docs/testing.md``).
        """
        if self._variants is not None:
            self._variants.check_decided(self.label)
        pgraph = patching.patched_graph(self, name, func)
        clone = self._copy(pgraph=pgraph, _variants=None)  # the chosen variants stay fixed
        if self.type_check != "off":
            check_pipeline(clone, self.type_check)
        return clone

    # -- running -----------------------------------------------------------------------------

    def run(
        self, inputs: Mapping[str, Any] | None = None, output_name: OutputName = None
    ) -> dict[str, Any]:
        """Compute the outputs (all, or those named by ``output_name``) for one set of inputs."""
        if inputs.__class__ is not dict:
            check_inputs_mapping(inputs, "run")
        ctx = self._root_context()
        try:
            if ctx.cache is None:
                return self.execute(dict(inputs or {}), _outputs_key(output_name), ctx)
            with _deferred(ctx):
                return self.execute(dict(inputs or {}), _outputs_key(output_name), ctx)
        except Exception as exc:
            add_failure_note(exc)
            raise

    def explain_cache(
        self,
        inputs: Mapping[str, Any] | None = None,
        map_over: str | Sequence[str] | None = None,
        output_name: OutputName = None,
    ) -> CacheReport:
        """Which nodes ``run`` (or ``map`` with ``map_over``, items zipped) would load from this
        pipeline's cache and which it would compute, and why: for a miss, the function or
        helper whose code changed, the upstream node, or the input that differs.  Nothing runs.

        Returns a :class:`~hypernodes.cache.explain.CacheReport`: ``print`` it, or iterate its
        rows (``node``, ``item``, ``status`` ``"hit"``/``"miss"``/``"uncached"``, ``reason``).
        """
        cache = self.cache
        if cache is None:
            raise InvalidSettingError(
                f"explain_cache: {pipeline_phrase(self.label)} has no cache; build it with "
                "cache=DiskCache(...) (or .with_cache(...)) to see what it would load"
            )
        values = {**self._bound, **dict(inputs or {})}
        names = [map_over] if isinstance(map_over, str) else list(map_over or ())
        missing = [name for name in names if name not in values]
        if missing:
            raise MapError(f"explain_cache: map_over names {missing}, which are not in inputs")
        plan = self.plan(_outputs_key(output_name), frozenset(values), resource_names(values))
        if not names:
            return explain(plan, [plan.seed(values)], cache, mapped=False)
        shared = {k: v for k, v in values.items() if k not in names}
        rows = zip(*(list(values[name]) for name in names), strict=True)
        items = [plan.seed({**shared, **dict(zip(names, row))}) for row in rows]
        return explain(plan, items, cache, mapped=True)

    def __call__(self, **inputs: Any) -> dict[str, Any]:
        """``pipeline(x=1)`` is ``pipeline.run(inputs={"x": 1})``."""
        return self.run(inputs)

    @overload
    def map(
        self,
        inputs: Mapping[str, Any] | None,
        map_over: str | Sequence[str],
        map_mode: Literal["zip", "product"] = ...,
        output_name: OutputName = ...,
        return_format: Literal["list"] = ...,
        on_error: Literal["raise", "continue"] = ...,
        max_failures: int | float | None = ...,
    ) -> list[dict[str, Any]]: ...
    @overload
    def map(
        self,
        inputs: Mapping[str, Any] | None,
        map_over: str | Sequence[str],
        map_mode: Literal["zip", "product"] = ...,
        output_name: OutputName = ...,
        *,
        return_format: Literal["columns"],
        on_error: Literal["raise", "continue"] = ...,
        max_failures: int | float | None = ...,
    ) -> dict[str, list[Any]]: ...
    @overload
    def map(
        self,
        inputs: Mapping[str, Any] | None,
        map_over: str | Sequence[str],
        map_mode: Literal["zip", "product"],
        output_name: OutputName,
        return_format: Literal["columns"],
        on_error: Literal["raise", "continue"] = ...,
        max_failures: int | float | None = ...,
    ) -> dict[str, list[Any]]: ...
    @overload
    def map(
        self,
        inputs: Mapping[str, Any] | None,
        map_over: str | Sequence[str],
        map_mode: Literal["zip", "product"] = ...,
        output_name: OutputName = ...,
        return_format: Literal["list", "columns"] = ...,
        on_error: Literal["raise", "continue"] = ...,
        max_failures: int | float | None = ...,
    ) -> list[dict[str, Any]] | dict[str, list[Any]]: ...
    @overload
    def map(
        self,
        inputs: Mapping[str, Any] | None,
        map_over: str | Sequence[str],
        map_mode: Literal["zip", "product"] = ...,
        output_name: OutputName = ...,
        *,
        return_format: Literal["daft", "arrow"],
        on_error: Literal["raise", "continue"] = ...,
        max_failures: int | float | None = ...,
    ) -> Any: ...
    def map(
        self,
        inputs: Mapping[str, Any] | None = None,
        map_over: str | Sequence[str] | None = None,
        map_mode: Literal["zip", "product"] = "zip",
        output_name: OutputName = None,
        return_format: Literal["list", "columns", "daft", "arrow"] = "list",
        on_error: Literal["raise", "continue"] = "raise",
        max_failures: int | float | None = None,
    ) -> Any:
        """Run once per item of the ``map_over`` inputs; other inputs go whole to every item.

        ``map_mode="zip"`` pairs the lists element by element (they must have one length);
        ``"product"`` runs every combination.  Returns a list of per-item output dicts in input
        order, or with ``return_format="columns"`` one list per output (``"daft"``: those
        columns as a ``daft.DataFrame``, ``"arrow"``: as a ``pyarrow.Table``).

        ``on_error="raise"`` stops at the first failing item and raises its exception (a note names
        the node and the item index).  ``"continue"`` attempts every item; an output that a failed
        node kept from being computed holds an :class:`~hypernodes.ItemError` instead.
        With ``max_failures`` (a number of items, or a ratio such as ``0.05``) the map stops
        with :class:`~hypernodes.exceptions.FailureBudgetError` once more items have failed.
        """
        if return_format not in ("list", "columns"):
            check_return_format(return_format)
        _check_on_error(on_error)
        budget = read_budget(max_failures, on_error)
        if inputs.__class__ is not dict:
            check_inputs_mapping(inputs, "map")
        ctx = self._root_context()
        spec = MapSpec.of(map_over, map_mode)
        try:
            with _deferred(ctx):
                if budget is not None:
                    return self._budgeted_map(
                        dict(inputs or {}), spec, output_name, ctx, budget, return_format
                    )
                plan, rows = self._map(
                    dict(inputs or {}), spec, _outputs_key(output_name), ctx, on_error
                )
        except Exception as exc:
            add_failure_note(exc)
            raise
        if not isinstance(rows, list):  # a lazy result, e.g. DaftEngine(collect=False)'s DataFrame
            return rows
        if return_format == "columns":
            return _columns(plan, rows)
        if return_format != "list":
            return as_frame(_columns(plan, rows), return_format)
        return rows

    def imap(
        self,
        inputs: Mapping[str, Any] | None = None,
        map_over: str | Sequence[str] | None = None,
        map_mode: Literal["zip", "product"] = "zip",
        output_name: OutputName = None,
        on_error: Literal["raise", "continue"] = "raise",
        ordered: bool = True,
        max_failures: int | float | None = None,
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        """:meth:`map` as a stream: yield ``(index, outputs)`` for each item as it finishes.

        With ``ordered=True`` items come in input order; with ``False`` as they complete.  Memory
        holds only the items in flight: a ``map_over`` input may be an iterator (a generator
        reading a file, say), read as items are started (``map_mode="zip"``).  Stopping the loop
        early cancels the items not started yet.  ``max_failures`` works as for :meth:`map`.
        """
        _check_on_error(on_error)
        budget = read_budget(max_failures, on_error)
        if inputs.__class__ is not dict:
            check_inputs_mapping(inputs, "imap")
        ctx = self._root_context()
        spec = MapSpec.of(map_over, map_mode)
        stream: Generator[tuple[int, dict[str, Any]], None, None] = self._imap(
            dict(inputs or {}), spec, _outputs_key(output_name), ctx, on_error, ordered
        )
        if budget is not None:
            total = _known_count(inputs or {}, spec)
            stream = within_budget(stream, budget, total, self.label)
        try:
            with _deferred(ctx):
                yield from stream
        except Exception as exc:
            add_failure_note(exc)
            raise
        finally:
            stream.close()

    # -- on the caller's event loop --------------------------------------------------------

    async def arun(
        self, inputs: Mapping[str, Any] | None = None, output_name: OutputName = None
    ) -> dict[str, Any]:
        """:meth:`run` for code already on an event loop (FastAPI handlers, notebooks).

        ``async def`` nodes are awaited on the caller's loop (no thread hop); sync nodes run in
        threads so they never block it.
        """
        if inputs.__class__ is not dict:
            check_inputs_mapping(inputs, "arun")
        ctx = self._root_context()
        inputs = dict(inputs or {})
        if self._bound:
            inputs = {**self._bound, **inputs}
        try:
            plan = self.plan(_outputs_key(output_name), frozenset(inputs), resource_names(inputs))
            engine = ctx.engine
            with _deferred(ctx):
                if ctx.dispatcher is None:
                    return await _arun_on(engine, plan, plan.seed(inputs), ctx)
                with events.observe_run(ctx, ctx.path[-1], inputs) as box:
                    box["outputs"] = result = await _arun_on(engine, plan, plan.seed(inputs), ctx)
                return result
        except Exception as exc:
            add_failure_note(exc)
            raise

    @overload
    async def amap(
        self,
        inputs: Mapping[str, Any] | None,
        map_over: str | Sequence[str],
        map_mode: Literal["zip", "product"] = ...,
        output_name: OutputName = ...,
        return_format: Literal["list"] = ...,
        on_error: Literal["raise", "continue"] = ...,
        max_failures: int | float | None = ...,
    ) -> list[dict[str, Any]]: ...
    @overload
    async def amap(
        self,
        inputs: Mapping[str, Any] | None,
        map_over: str | Sequence[str],
        map_mode: Literal["zip", "product"] = ...,
        output_name: OutputName = ...,
        *,
        return_format: Literal["columns"],
        on_error: Literal["raise", "continue"] = ...,
        max_failures: int | float | None = ...,
    ) -> dict[str, list[Any]]: ...
    @overload
    async def amap(
        self,
        inputs: Mapping[str, Any] | None,
        map_over: str | Sequence[str],
        map_mode: Literal["zip", "product"],
        output_name: OutputName,
        return_format: Literal["columns"],
        on_error: Literal["raise", "continue"] = ...,
        max_failures: int | float | None = ...,
    ) -> dict[str, list[Any]]: ...
    @overload
    async def amap(
        self,
        inputs: Mapping[str, Any] | None,
        map_over: str | Sequence[str],
        map_mode: Literal["zip", "product"] = ...,
        output_name: OutputName = ...,
        return_format: Literal["list", "columns"] = ...,
        on_error: Literal["raise", "continue"] = ...,
        max_failures: int | float | None = ...,
    ) -> list[dict[str, Any]] | dict[str, list[Any]]: ...
    async def amap(
        self,
        inputs: Mapping[str, Any] | None = None,
        map_over: str | Sequence[str] | None = None,
        map_mode: Literal["zip", "product"] = "zip",
        output_name: OutputName = None,
        return_format: Literal["list", "columns"] = "list",
        on_error: Literal["raise", "continue"] = "raise",
        max_failures: int | float | None = None,
    ) -> list[dict[str, Any]] | dict[str, list[Any]]:
        """:meth:`map` for code already on an event loop; see :meth:`aimap`."""
        if return_format not in ("list", "columns"):
            raise MapError(f"return_format must be 'list' or 'columns', got {return_format!r}")
        stream = self.aimap(
            inputs, map_over, map_mode, output_name, on_error, max_failures=max_failures
        )
        rows = [row async for _, row in stream]
        if return_format == "columns":
            names = _outputs_key(output_name) or self.output_names
            return {name: [row[name] for row in rows] for name in names}
        return rows

    async def aimap(
        self,
        inputs: Mapping[str, Any] | None = None,
        map_over: str | Sequence[str] | None = None,
        map_mode: Literal["zip", "product"] = "zip",
        output_name: OutputName = None,
        on_error: Literal["raise", "continue"] = "raise",
        ordered: bool = True,
        max_failures: int | float | None = None,
    ) -> AsyncIterator[tuple[int, dict[str, Any]]]:
        """:meth:`imap` for code already on an event loop: ``async for index, row in ...``.

        With a sequential or async map executor the items run as tasks on the caller's loop;
        with threads or processes the loop awaits their rows without blocking.
        ``max_failures`` works as for :meth:`map`.
        """
        _check_on_error(on_error)
        budget = read_budget(max_failures, on_error)
        if inputs.__class__ is not dict:
            check_inputs_mapping(inputs, "aimap")
        ctx = self._root_context()
        spec = MapSpec.of(map_over, map_mode)
        try:
            plan, items, count, ctx = self._prepared(
                dict(inputs or {}), spec, _outputs_key(output_name), ctx, lazy=True
            )
            engine = ctx.engine
            if hasattr(engine, "aimap"):
                rows = engine.aimap(plan, items, count, ctx, on_error, ordered)
            else:
                rows = bridge(self._imap_rows(engine, plan, items, count, ctx, on_error, ordered))
            if budget is not None:
                rows = awithin_budget(rows, budget, count, self.label)
            async with aclosing(rows):
                with _deferred(ctx):
                    if ctx.dispatcher is None:
                        async for pair in rows:
                            yield pair
                        return
                    with events.observe_map(ctx, ctx.path[-1], count):
                        async for pair in rows:
                            yield pair
        except Exception as exc:
            add_failure_note(exc)
            raise

    # -- internals shared with nested pipelines and engines ----------------------------------

    def _root_context(self) -> RunContext:
        engine = self.engine if self.engine is not None else default_engine()
        cache, callbacks = self.cache, self.callbacks
        if callbacks or engine.__class__ is not HypernodesEngine:  # 0.4's SeqEngine holds both
            cache, callbacks = engine_settings(engine, cache, callbacks)
        if run_log_env.PATH is not None:  # HYPERNODES_RUN_LOG: every call goes to the run log
            callbacks = run_log_env.with_run_log(callbacks)
        return RunContext(
            engine=engine,
            cache=cache,
            dispatcher=dispatcher_for(callbacks, RunOrigin(self, engine)) if callbacks else None,
            path=(self.label,),
            items=(None,),
        )

    def plan(
        self,
        outputs: tuple[str, ...] | None,
        provided: frozenset[str],
        resources: frozenset[str] = frozenset(),
    ) -> Plan:
        """The compiled plan for ``outputs`` given inputs named ``provided`` (cached).

        ``resources`` names the provided values that are :class:`~hypernodes.Resource` recipes.
        Compiling checks, once per distinct set of names, that every provided name is one the
        pipeline takes (or an output to override), and that no pipeline is nested in itself.
        """
        key: tuple[Any, ...] = (outputs, provided, resources) if resources else (outputs, provided)
        found = self.pgraph.plans.get(key)
        if found is None:
            if self._variants is not None:
                self._variants.check_decided(self.label)
            loop = nesting_cycle(self.label, self.pgraph)
            if loop is not None:
                raise loop
            check_input_names(self.label, self.pgraph, provided)
            with gc_paused():
                found = compile_plan(self.pgraph, outputs, provided, self.label, resources)
            self.pgraph.plans[key] = found
        return found

    def execute(
        self, inputs: dict[str, Any], outputs: tuple[str, ...] | None, ctx: RunContext
    ) -> dict[str, Any]:
        """Run once in ``ctx`` (a nested pipeline's context, or the root one): the step behind
        :meth:`run` and a pipeline used as a node."""
        if self._bound:
            inputs = {**self._bound, **inputs}
        plan = self.plan(outputs, frozenset(inputs), resource_names(inputs))
        result: dict[str, Any]
        if ctx.dispatcher is None and not plan.resources:  # the common case, at once
            result = ctx.engine.run(plan, plan.seed(inputs), ctx)
            return result
        using = resources_in_use() if plan.resources and ctx.depth == 0 else nullcontext()
        with using:
            if ctx.dispatcher is None:
                result = ctx.engine.run(plan, plan.seed(inputs), ctx)
                return result
            with events.observe_run(ctx, ctx.path[-1], inputs) as box:
                box["outputs"] = result = ctx.engine.run(plan, plan.seed(inputs), ctx)
            return result

    def _prepared(
        self,
        inputs: dict[str, Any],
        spec: MapSpec,
        outputs: tuple[str, ...] | None,
        ctx: RunContext,
        lazy: bool = False,
    ) -> tuple[Plan, MapItems, int | None, RunContext]:
        """The plan, the item value dicts (made lazily), their count (None if unknown) and the
        context of this map call (with a cache: what it derives once for every item)."""
        for name in spec.names:  # a bound input may be mapped over (a passed one wins)
            if name not in inputs and name in self._bound:
                inputs[name] = self._bound[name]
        try:
            spec.check_inputs(inputs, self.root_args, self.name)
        except MapError as exc:
            unknown = [n for n in spec.names if n not in self.root_args]
            hint = output_not_input_hint(self.pgraph, unknown, "map_over")
            if hint:
                exc.args = (f"{exc.args[0]}{hint}",)
            raise
        columns = spec.columns(inputs, lazy)
        count = spec.count(columns)
        for name in spec.names:
            del inputs[name]
        base = {**self._bound, **inputs} if self._bound else inputs
        if self._bound:
            for name in spec.names:
                base.pop(name, None)
        plan = self.plan(outputs, frozenset(base).union(spec.names), resource_names(base))
        seeded = plan.seed(base)
        if ctx.cache is not None:
            ctx = prepare_call(plan, seeded, ctx)  # per-call cache data shared by all items
        return plan, spec.items(seeded, columns), count, ctx

    def _map(
        self,
        inputs: dict[str, Any],
        spec: MapSpec,
        outputs: tuple[str, ...] | None,
        ctx: RunContext,
        on_error: str = "raise",
    ) -> tuple[Plan, list[dict[str, Any]]]:
        plan, items, count, ctx = self._prepared(inputs, spec, outputs, ctx)
        extra = {} if on_error == "raise" else {"on_error": on_error}
        using = resources_in_use() if plan.resources and ctx.depth == 0 else nullcontext()
        with using:
            if ctx.dispatcher is None:
                return plan, ctx.engine.map(plan, items, count, ctx, **extra)
            with events.observe_map(ctx, ctx.path[-1], count):
                return plan, ctx.engine.map(plan, items, count, ctx, **extra)

    def _budgeted_map(
        self,
        inputs: dict[str, Any],
        spec: MapSpec,
        output_name: OutputName,
        ctx: RunContext,
        budget: Budget,
        return_format: str,
    ) -> list[dict[str, Any]] | dict[str, list[Any]]:
        """:meth:`map` under a failure budget: items streamed as they finish, counted, and the
        stream closed (the rest never started) once the budget is spent."""
        outputs = _outputs_key(output_name)
        total = _known_count(inputs, spec)
        stream = self._imap(inputs, spec, outputs, ctx, "continue", False)
        rows = collect(within_budget(stream, budget, total, self.label))
        if return_format == "columns":
            names = list(rows[0]) if rows else list(outputs or self.output_names)
            return {name: [row[name] for row in rows] for name in names}
        return rows

    def _imap(
        self,
        inputs: dict[str, Any],
        spec: MapSpec,
        outputs: tuple[str, ...] | None,
        ctx: RunContext,
        on_error: str,
        ordered: bool,
    ) -> Generator[tuple[int, dict[str, Any]], None, None]:
        plan, items, count, ctx = self._prepared(inputs, spec, outputs, ctx, lazy=True)
        rows = self._imap_rows(ctx.engine, plan, items, count, ctx, on_error, ordered)
        using = resources_in_use() if plan.resources and ctx.depth == 0 else nullcontext()
        with using:
            if ctx.dispatcher is None:
                yield from rows
                return
            with events.observe_map(ctx, ctx.path[-1], count):
                yield from rows

    @staticmethod
    def _imap_rows(
        engine: Any,
        plan: Plan,
        items: Iterable[dict[str, Any]],
        count: int | None,
        ctx: RunContext,
        on_error: str,
        ordered: bool,
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        if hasattr(engine, "imap"):
            rows: Iterator[tuple[int, dict[str, Any]]] = engine.imap(
                plan, items, count, ctx, on_error, ordered
            )
            return rows
        # an engine with map only: one batch
        return enumerate(engine.map(plan, items, count, ctx, on_error=on_error))

    def map_columns(
        self,
        inputs: dict[str, Any],
        spec: MapSpec,
        outputs: tuple[str, ...] | None,
        ctx: RunContext,
    ) -> dict[str, list[Any]]:
        """Map in ``ctx`` and return one list per output: what a pipeline used as a node with
        ``map_over`` gives its parent."""
        plan, rows = self._map(inputs, spec, outputs, ctx)
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
    return name_tuple(output_name, "output_name", InvalidSettingError)


async def _arun_on(
    engine: Any, plan: Plan, values: dict[str, Any], ctx: RunContext
) -> dict[str, Any]:
    if hasattr(engine, "arun"):
        result: dict[str, Any] = await engine.arun(plan, values, ctx)
        return result
    import asyncio

    # an engine without an async path: run it in a thread, the loop keeps running
    return await asyncio.get_running_loop().run_in_executor(None, engine.run, plan, values, ctx)


def _deferred(ctx: RunContext) -> AbstractContextManager[Any]:
    """While a call runs, its cache may hold writes back and store them in batches (DiskCache's
    write-behind); they are all stored when the call ends, however it ends."""
    defer = getattr(ctx.cache, "defer", None)
    return defer() if defer is not None else nullcontext()


def _known_count(inputs: Mapping[str, Any], spec: MapSpec) -> int | None:
    """How many items a map makes, when its mapped inputs have lengths (for a ratio budget)."""
    if not all(name in inputs for name in spec.names):
        return None  # the map itself says what is missing
    return spec.count([inputs[name] for name in spec.names])


def _check_on_error(on_error: str) -> None:
    is_tolerant(on_error)  # raises for anything but "raise"/"continue"


def _columns(plan: Plan, rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {name: [row[name] for row in rows] for name in plan.output_names}
