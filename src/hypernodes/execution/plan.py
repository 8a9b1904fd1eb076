"""The compiled execution plan: what runs, in which order, with which arguments.

A :class:`Plan` is compiled once per pipeline, requested outputs and provided input names.  It
holds the steps to run in topological order (:class:`~hypernodes.execution.step.Step`, each with a
runner that reads its arguments from an item's values and writes its outputs back) and, for a plan
with batch nodes, those steps cut into segments.  The loops that run a plan live in
:mod:`hypernodes.execution.loops`; executors only decide where those loops' work is submitted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from ..exceptions import MissingInputError, UnknownOutputError, pipeline_phrase
from ..model.graph import PipelineGraph
from ..model.node import Node
from .layers import acompose, around_key, around_layers, compose
from .step import Step, async_node_runner, batch_node_runner, node_runner, read_keys

#: items per batch when neither the node (``resources={"batch_size": n}``) nor the engine says
DEFAULT_BATCH_SIZE = 64

#: a plan's steps as segments: a tuple of per-item steps, or one batch step
Segments = tuple[tuple[Step, ...] | Step, ...]


class Plan:
    """Steps to compute ``output_names`` from the inputs named in ``provided``."""

    __slots__ = (
        "steps",
        "runners",
        "output_names",
        "provided",
        "extract",
        "cache_plan",
        "specs",
        "resources",
        "segments",
        "batch_size",
        "asynchronous",
        "_composed",
    )

    def __init__(
        self,
        steps: Sequence[Step],
        output_names: tuple[str, ...],
        provided: frozenset[str],
        resources: frozenset[str] = frozenset(),
    ) -> None:
        self.steps = tuple(steps)
        self.runners = tuple(step.run for step in self.steps)
        self.output_names = output_names
        self.provided = provided
        self.extract = _extractor(output_names)
        #: what the cache derives from this plan, on first cached use (hypernodes.cache)
        self.cache_plan: Any = None
        #: picklable specs of this plan for other processes, by context (execution.remote)
        self.specs: dict[Any, Any] = {}
        #: provided names that hold resources (hypernodes.model.resources): nodes get their objects
        self.resources = resources
        #: with batch nodes, the steps as segments for maps (see :func:`segments`); else None
        self.segments: Segments | None = None
        #: items per batch that the batch nodes ask for (the smallest hint), or None
        self.batch_size: int | None = None
        if any(step.batch is not None for step in self.steps):
            self.segments, self.batch_size = segments(self.steps)
        #: whether some step is an ``async def`` node (awaited on an event loop when there is one)
        self.asynchronous = any(step.arun is not None for step in self.steps)
        #: step runners with around layers, by which of them a context turns on
        self._composed: dict[tuple[bool, ...], tuple[tuple[Any, ...], tuple[Any, ...]]] = {}

    def seed(self, values: dict[str, Any]) -> dict[str, Any]:
        """A fresh value dict for one item, that running it fills in (``values`` is not changed).

        It holds the user's names only: defaults are bound into the steps, and the machinery's
        per-item state lives in the item's :class:`~hypernodes.execution.context.RunContext`.
        """
        return dict(values)

    def composed(self, ctx: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """The step runners, and their async twins, with the around layers ``ctx`` turns on
        (cache, events); composed on first use for each kind of context."""
        key = around_key(ctx)
        found = self._composed.get(key)
        if found is None:
            layers = around_layers(self, key)
            found = (
                tuple(compose(step, layers) for step in self.steps),
                tuple(
                    acompose(step, layers) if step.arun is not None else None for step in self.steps
                ),
            )
            self._composed[key] = found
        return found

    def failed_step(self, values: dict[str, Any]) -> Step | None:
        """The first step whose outputs are missing from ``values``: the one that raised."""
        for step in self.steps:
            if step.store[0] not in values:
                return step
        return None

    def __repr__(self) -> str:
        return f"Plan({[s.name for s in self.steps]} -> {list(self.output_names)})"


def _extractor(names: tuple[str, ...]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    if len(names) == 1:
        (only,) = names
        return lambda values: {only: values[only]}
    getter = itemgetter(*names) if names else None

    def extract(values: dict[str, Any]) -> dict[str, Any]:
        return dict(zip(names, getter(values))) if getter else {}

    return extract


# ---------------------------------------------------------------------------------------------
# Compiling


def analyze(
    pgraph: PipelineGraph, requested: Sequence[str], provided: frozenset[str]
) -> tuple[dict[Any, list[str]], dict[str, list[tuple[str, bool]]]]:
    """Walk back from ``requested`` and find what has to run and what must come from outside.

    Returns ``(included, external)``: ``included`` maps each node to run to the outputs of it that
    are needed; ``external`` maps each input name that nobody provides or produces to the
    ``(node name, has_default)`` pairs of the nodes that read it.  A provided name that a node
    would produce overrides that output, so its producer does not run for it.
    """
    needed = set(requested)
    included: dict[Any, list[str]] = {}
    external: dict[str, list[tuple[str, bool]]] = {}
    producer = pgraph.producer
    for item in reversed(pgraph.order):
        outs = [o for o in item.outputs if o in needed and o not in provided]
        if not outs:
            continue
        included[item] = outs
        for name, has_default in requirements(item, outs):
            if name in provided:
                continue
            if name in producer:
                needed.add(name)
            else:
                external.setdefault(name, []).append((item.name, has_default))
    return included, external


def requirements(item: Any, outputs: Sequence[str]) -> list[tuple[str, bool]]:
    """``(input name, has_default)`` for what ``item`` reads to produce ``outputs``."""
    if isinstance(item, Node):
        return [(name, name in item.defaults) for name in item.inputs]
    return item.requirements(outputs)


def compile_plan(
    pgraph: PipelineGraph,
    outputs: tuple[str, ...] | None,
    provided: frozenset[str],
    pipeline_name: str,
    resources: frozenset[str] = frozenset(),
) -> Plan:
    """Compile the plan that computes ``outputs`` (all outputs when ``None``) from ``provided``.

    ``resources`` names the provided values that are :class:`~hypernodes.Resource` recipes: the
    nodes reading them get a call wrapper that passes the built object instead.
    """
    requested = _requested(pgraph, outputs, pipeline_name)
    included, external = analyze(pgraph, requested, provided)
    missing = {
        name: [who for who, has_default in users if not has_default]
        for name, users in external.items()
        if not all(has_default for _, has_default in users)
    }
    if missing:
        raise _missing_error(pipeline_name, missing, outputs)
    steps: list[Step] = []
    produced: set[str] = set()  # outputs of the steps compiled so far
    for item in pgraph.order:
        outs = included.get(item)
        if outs is not None:
            step = _compile_step(item, outs, provided, produced, resources, len(steps))
            produced.update(step.store)
            steps.append(step)
    return Plan(steps, requested, provided, resources)


def _requested(
    pgraph: PipelineGraph, outputs: tuple[str, ...] | None, pipeline_name: str
) -> tuple[str, ...]:
    """The outputs to compute: ``outputs``, checked to exist, or every output."""
    if outputs is None:
        return pgraph.output_names
    unknown = [o for o in outputs if o not in pgraph.producer]
    if unknown:
        raise UnknownOutputError(
            f"{pipeline_phrase(pipeline_name)} has no output(s) {unknown}; "
            f"its outputs are {list(pgraph.output_names)}"
        )
    return outputs


def _compile_step(
    item: Any,
    outs: list[str],
    provided: frozenset[str],
    produced: set[str],
    resources: frozenset[str],
    index: int,
) -> Step:
    """The step that runs ``item`` (a node or a nested pipeline) for ``outs``."""
    wiring: list[tuple[str, str]] = []  # (input name, key in the values dict)
    fixed: dict[int, Any] = {}  # position in wiring -> a default bound into the call
    for name, _ in requirements(item, outs):
        if name in provided or name in produced:
            wiring.append((name, name))
        elif isinstance(item, Node):
            fixed[len(wiring)] = item.defaults[name]
            wiring.append((name, name))
        # a nested pipeline falls back on its own default for an optional input nobody has
    store = _stored_outputs(item, outs, provided)
    batch = arun = None
    if isinstance(item, Node):
        whole = tuple(i for i, (_, key) in enumerate(wiring) if key in resources)
        run = node_runner(item, wiring, store, whole, fixed)
        if item.is_async and item.per_item:
            arun = async_node_runner(item, wiring, store, whole, fixed)
        if item.batch_func is not None:
            batch = batch_node_runner(item, wiring, store, whole, fixed)
    else:
        run = item.make_runner(wiring, store)
    bound = tuple((wiring[i][0], value) for i, value in fixed.items())
    return Step(item, item.name, read_keys(wiring, fixed), store, run, arun, index, batch, bound)


def _stored_outputs(item: Any, outs: list[str], provided: frozenset[str]) -> tuple[str, ...]:
    if isinstance(item, Node):
        # A function computes all its outputs anyway; keep all that nobody provided.
        return tuple(o for o in item.outputs if o not in provided)
    return tuple(outs)


def _missing_error(
    pipeline_name: str, missing: dict[str, list[str]], outputs: tuple[str, ...] | None
) -> MissingInputError:
    parts = [
        f"{name!r} (needed by {', '.join(repr(w) for w in who)})" for name, who in missing.items()
    ]
    target = f" to compute {list(outputs)}" if outputs else ""
    names = ", ".join(f"{name}=..." for name in missing)
    return MissingInputError(
        f"{pipeline_phrase(pipeline_name)} is missing input(s){target}: {'; '.join(parts)}. "
        f"Pass them in inputs={{...}} or bind them with pipeline.bind({names})",
        missing,
    )


# ---------------------------------------------------------------------------------------------
# Where a node error happened: recorded as the exception unwinds, written as one note at the top.


def segments(steps: Sequence[Step]) -> tuple[Segments, int | None]:
    """The plan's steps as segments (a tuple of per-item steps, or one batch step), and the
    batch size its batch nodes ask for (the smallest ``batch_size`` hint, or None)."""
    parts: list[tuple[Step, ...] | Step] = []
    run: list[Step] = []
    sizes: list[int] = []
    for step in steps:
        if step.batch is None:
            run.append(step)
            continue
        if run:
            parts.append(tuple(run))
            run = []
        parts.append(step)
        hints = getattr(step.node, "resources", None) or {}
        if "batch_size" in hints:
            sizes.append(hints["batch_size"])
    if run:
        parts.append(tuple(run))
    return tuple(parts), (min(sizes) if sizes else None)


def batch_size_for(plan: Plan, engine_size: int | None) -> int:
    """Items per group: the batch nodes' hint, else the engine's, else the default."""
    return plan.batch_size or engine_size or DEFAULT_BATCH_SIZE


def chunk_size_for(plan: Plan, size: int, engine_size: int | None) -> int:
    """A chunk size for a remote map of ``plan``: ``size``, rounded up to whole batches when
    the plan has batch nodes (a worker groups each chunk it receives)."""
    if plan.segments is None:
        return size
    batch = batch_size_for(plan, engine_size)
    return max(batch, -(-size // batch) * batch)
