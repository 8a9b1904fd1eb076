"""The compiled execution plan: the hot path from ``Pipeline.run``/``map`` to the node call.

A :class:`Plan` is compiled once per pipeline, requested outputs and provided input names.  It holds
the nodes to run in topological order, each as a small closure that reads its arguments from a dict
of values and writes its outputs back.  Running one item is a loop over those closures; executors
only decide how items (or independent steps of one item) are scheduled.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from ..cache import item as _cache
from ..cache.base import CacheTimeout
from ..exceptions import (
    UNNAMED,
    MissingInputError,
    OutputShapeError,
    UnknownOutputError,
    pipeline_phrase,
)
from ..model.checks import unfinished_hint, unfinished_inputs_note, unfinished_kind
from ..model.graph import PipelineGraph
from ..model.node import Node, _is_async
from ..model.resources import resolving
from ..observe import events
from .aio import run_sync
from .context import RunContext
from .layers.concurrency import alimited, limited
from .layers.retry import aretrying, retrying
from .layers.timeout import atimed, timed

Runner = Callable[[dict[str, Any], RunContext], None]
AsyncRunner = Callable[[dict[str, Any], RunContext], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Step:
    """One node of a plan: what it reads, what it stores, its generation level and its runner."""

    node: Any
    name: str
    arg_keys: tuple[str, ...]
    store: tuple[str, ...]
    level: int
    run: Runner
    #: for an ``async def`` node: the awaitable twin of ``run``, awaited on the caller's event loop
    arun: AsyncRunner | None = None
    #: position in the plan's steps
    index: int = 0
    #: for a batch node: ``batch(values_list, ctx)`` runs the node once for many items' values
    #: (see :mod:`hypernodes.execution.batching`); None for every other step
    batch: Runner | None = None
    #: ``(input name, value)`` of the optional inputs nobody provides: their defaults, bound
    #: into the step's call when the plan is compiled (they never enter the values dict)
    fixed: tuple[tuple[str, Any], ...] = ()

    def call(self, *args: Any) -> dict[str, Any]:
        """Call the node with its arguments in ``arg_keys`` order; its stored outputs by name.

        A pure call (with the node's retries and timeout, an ``async def`` node run to completion)
        that changes nothing else, for engines that call steps as tasks or inside UDFs.
        """
        values = dict(zip(self.arg_keys, args, strict=True))
        self.run(values, None)  # type: ignore[arg-type]
        return {name: values[name] for name in self.store}

    def inputs(self, values: dict[str, Any]) -> dict[str, Any]:
        """What the node is called with, by its input names: the arguments found in ``values``
        and the bound defaults (for events and error notes)."""
        found = {k: values[k] for k in self.arg_keys if k in values}
        if not self.fixed:
            return found
        found.update(self.fixed)
        node = self.node
        return {n: found[n] for n in node.inputs if n in found} if isinstance(node, Node) else found


class Plan:
    """Steps to compute ``output_names`` from the inputs named in ``provided``."""

    __slots__ = (
        "steps",
        "runners",
        "levels",
        "output_names",
        "provided",
        "extract",
        "cache_plan",
        "specs",
        "resources",
        "segments",
        "batch_size",
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
        depth = max((s.level for s in self.steps), default=-1) + 1
        levels: list[list[Step]] = [[] for _ in range(depth)]
        for step in self.steps:
            levels[step.level].append(step)
        #: steps grouped by generation: the steps of one level never depend on each other
        self.levels = tuple(tuple(level) for level in levels)
        self.output_names = output_names
        self.provided = provided
        self.extract = _extractor(output_names)
        #: what the cache derives from this plan, on first cached use (hypernodes.cache)
        self.cache_plan: Any = None
        #: picklable specs of this plan for other processes, by context (engines.remote)
        self.specs: dict[Any, Any] = {}
        #: provided names that hold resources (hypernodes.model.resources): nodes get their objects
        self.resources = resources
        #: with batch nodes, the steps as segments for maps (hypernodes.execution.batching); else None
        self.segments: tuple[tuple[Step, ...] | Step, ...] | None = None
        #: items per batch that the batch nodes ask for (the smallest hint), or None
        self.batch_size: int | None = None
        if any(step.batch is not None for step in self.steps):
            from .batching import segments

            self.segments, self.batch_size = segments(self.steps)
        #: step runners with layers, by (cache set, callbacks set): see :meth:`composed`
        self._composed: dict[tuple[bool, bool], tuple[tuple[Any, ...], tuple[Any, ...]]] = {}

    def seed(self, values: dict[str, Any]) -> dict[str, Any]:
        """A fresh value dict for one item, that running it fills in (``values`` is not changed).

        It holds the user's names only: defaults are bound into the steps, and the machinery's
        per-item state lives in the item's :class:`~hypernodes.execution.context.RunContext`.
        """
        return dict(values)

    def run_item(self, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        """Run every step for one item (``values`` is filled in place) and return the outputs."""
        if ctx.instrumented:
            runners = self.composed(ctx)[0]
            step = None
            try:
                steps, item_ctx = self.steps_for(values, ctx)
                for step in steps:
                    runners[step.index](values, item_ctx)
            except Exception as exc:
                locate_failure(exc, step, ctx, self, values)
                raise
            return self.extract(values)
        try:
            for run in self.runners:
                run(values, ctx)
        except Exception as exc:
            locate_failure(exc, self.failed_step(values), ctx, self, values)
            raise
        return self.extract(values)

    def steps_for(
        self, values: dict[str, Any], ctx: RunContext
    ) -> tuple[Sequence[Step], RunContext]:
        """The steps that still have to run for this item, and the context to run them in.

        Without a cache that is every step, in ``ctx``.  This is the hook where a cache loads
        hits into ``values``, drops the steps it need not run and keeps its state for the item
        in the returned context; schedulers call it first, then :meth:`run_step` for each step
        returned, with that context.
        """
        if ctx.cache is None:
            return self.steps, ctx
        steps, item_ctx = _cache.steps_for(self, values, ctx)
        if ctx.dispatcher is not None:
            events.cached_steps(self, steps, item_ctx)
        return steps, item_ctx

    def composed(self, ctx: RunContext) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """The step runners, and their async twins, with the layers ``ctx`` needs around them
        (cache, events); composed on first use for each kind of context."""
        key = (ctx.cache is not None, ctx.dispatcher is not None)
        found = self._composed.get(key)
        if found is None:
            from .layers import acompose, compose
            from .layers.cache import CacheLayer
            from .layers.events import EVENTS

            layers: list[Any] = []
            if key[0]:
                layers.append(CacheLayer(self))
            if key[1]:
                layers.append(EVENTS)
            found = (
                tuple(compose(step, layers) for step in self.steps),
                tuple(
                    acompose(step, layers) if step.arun is not None else None for step in self.steps
                ),
            )
            self._composed[key] = found
        return found

    def run_step(self, step: Step, values: dict[str, Any], ctx: RunContext) -> None:
        """Run one step with the layers the context asks for around it (cache, callbacks)."""
        try:
            if ctx.instrumented:
                self.composed(ctx)[0][step.index](values, ctx)
            else:
                step.run(values, ctx)
        except Exception as exc:
            # Name this step: with a cache, steps before it may have been skipped, not stored.
            locate_failure(exc, step, ctx, self, values)
            raise

    async def arun_step(self, step: Step, values: dict[str, Any], ctx: RunContext) -> None:
        """:meth:`run_step` for a step with an ``arun`` (an ``async def`` node), awaited natively
        on the running loop, with the same layers."""
        try:
            if ctx.instrumented:
                await self.composed(ctx)[1][step.index](values, ctx)
            else:
                await step.arun(values, ctx)  # type: ignore[misc]
        except Exception as exc:
            locate_failure(exc, step, ctx, self, values)
            raise

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
    if outputs is None:
        requested: tuple[str, ...] = pgraph.output_names
    else:
        unknown = [o for o in outputs if o not in pgraph.producer]
        if unknown:
            raise UnknownOutputError(
                f"{pipeline_phrase(pipeline_name)} has no output(s) {unknown}; "
                f"its outputs are {list(pgraph.output_names)}"
            )
        requested = outputs
    included, external = analyze(pgraph, requested, provided)
    missing = {
        name: [who for who, has_default in users if not has_default]
        for name, users in external.items()
        if not all(has_default for _, has_default in users)
    }
    if missing:
        raise _missing_error(pipeline_name, missing, outputs)

    steps: list[Step] = []
    level_of: dict[str, int] = {}  # output name -> level of the step producing it in this plan
    for item in pgraph.order:
        outs = included.get(item)
        if outs is None:
            continue
        wiring: list[tuple[str, str]] = []  # (input name, key in the values dict)
        fixed: dict[int, Any] = {}  # position in wiring -> a default bound into the call
        level = 0
        for name, _ in requirements(item, outs):
            if name in provided or name in level_of:
                wiring.append((name, name))
                if name in level_of:
                    level = max(level, level_of[name] + 1)
            elif isinstance(item, Node):
                fixed[len(wiring)] = item.defaults[name]
                wiring.append((name, name))
            # a nested pipeline falls back on its own default for an optional input nobody has
        store = _stored_outputs(item, outs, provided)
        for out in store:
            level_of[out] = level
        batch = arun = None
        if isinstance(item, Node):
            whole = (
                tuple(i for i, (_, key) in enumerate(wiring) if key in resources)
                if resources
                else ()
            )
            run = _node_runner(item, wiring, store, whole, fixed)
            if item.is_async and item.per_item:
                arun = _async_node_runner(item, wiring, store, whole, fixed)
            if item.batch_func is not None:
                batch = _batch_node_runner(item, wiring, store, whole, fixed)
        else:
            run = item.make_runner(wiring, store)
        keys = _read_keys(wiring, fixed)
        bound = tuple((wiring[i][0], value) for i, value in fixed.items())
        steps.append(Step(item, item.name, keys, store, level, run, arun, len(steps), batch, bound))
    return Plan(steps, requested, provided, resources)


def _read_keys(wiring: list[tuple[str, str]], fixed: dict[int, Any] | None) -> tuple[str, ...]:
    """The keys a step reads from the values: its wiring without the defaults bound into it."""
    if not fixed:
        return tuple(key for _, key in wiring)
    return tuple(key for i, (_, key) in enumerate(wiring) if i not in fixed)


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


def _node_runner(
    node: Node,
    wiring: list[tuple[str, str]],
    store: tuple[str, ...],
    whole: tuple[int, ...] = (),
    fixed: dict[int, Any] | None = None,
) -> Runner:
    """A closure that calls ``node``'s function with its arguments from the values dict (with
    its timeout and retries, when it has them).  ``whole`` are the positions of arguments that
    hold resources (hypernodes.model.resources): the function gets their built objects.  ``fixed``
    maps positions to defaults bound into the call: those are not read from the values."""
    run = _bare_runner(node, wiring, store, whole, fixed)
    if node.retries:
        run = retrying(run, node)
    return run


def _batch_node_runner(
    node: Node,
    wiring: list[tuple[str, str]],
    store: tuple[str, ...],
    whole: tuple[int, ...],
    fixed: dict[int, Any] | None = None,
) -> Runner:
    """``run(values_list, ctx)``: ``node``'s batch function over many items (retries included)."""
    from .batching import batch_runner

    call = _function_call(node, node.batch_func, wiring)  # type: ignore[arg-type]
    run = batch_runner(node, call, tuple(key for _, key in wiring), store, whole, fixed or {})
    if node.retries:
        run = retrying(run, node)
    return run


def _function_call(
    node: Node, func: Callable[..., Any], wiring: list[tuple[str, str]]
) -> Callable[..., Any]:
    """``func`` (the node's function or its batch function) as a sync callable taking positional
    arguments in wiring order, with the node's concurrency limit and timeout around it."""
    limit = node.max_concurrency
    if node.is_async if func is node.func else _is_async(func):
        coroutine_function = func
        if limit is not None:
            coroutine_function = alimited(coroutine_function, node, limit)
        if node.timeout is not None:
            coroutine_function = atimed(coroutine_function, node.timeout, node.name)

        def func(*args: Any, **kwargs: Any) -> Any:
            return run_sync(coroutine_function(*args, **kwargs))

    else:
        if limit is not None:
            func = limited(func, node, limit)
        if node.timeout is not None:
            func = timed(func, node.timeout, node.name)
    if node.keyword_only:
        func = _keyword_adapter(func, node, wiring)
    return func


def _bare_runner(
    node: Node,
    wiring: list[tuple[str, str]],
    store: tuple[str, ...],
    whole: tuple[int, ...] = (),
    fixed: dict[int, Any] | None = None,
) -> Runner:
    if node.per_item:
        func = _function_call(node, node.func, wiring)
    else:  # a batch-only node runs one item as a batch of one
        from .batching import one_item

        call = _function_call(node, node.func, wiring)
        func = one_item(call, len(wiring), whole, len(node.outputs), node.name)
    if whole:
        func = resolving(func, whole)
    if fixed:  # a batch-only node's wrapper lists its arguments: it must get them all
        func = _binding(func, len(wiring), fixed, own=node.per_item)
    keys = _read_keys(wiring, fixed)
    outputs = node.outputs
    if len(outputs) == 1:
        out = outputs[0]
        if len(keys) == 0:

            def run(values: dict[str, Any], ctx: RunContext) -> None:
                values[out] = func()
        elif len(keys) == 1:
            key = keys[0]

            def run(values: dict[str, Any], ctx: RunContext) -> None:
                values[out] = func(values[key])
        else:
            getter = itemgetter(*keys)

            def run(values: dict[str, Any], ctx: RunContext) -> None:
                values[out] = func(*getter(values))

        return run

    pairs = tuple((i, name) for i, name in enumerate(outputs) if name in store)
    name = node.name

    def run(values: dict[str, Any], ctx: RunContext) -> None:
        _store_outputs(func(*[values[k] for k in keys]), name, outputs, pairs, values)

    return run


def _store_outputs(
    result: Any,
    name: str,
    outputs: tuple[str, ...],
    pairs: tuple[tuple[int, str], ...],
    values: dict[str, Any],
) -> None:
    """Store the elements of a multi-output node's ``result`` that the plan keeps (``pairs``)."""
    try:
        n = len(result)
    except TypeError:
        n = -1
    if n != len(outputs):
        kind = unfinished_kind(result)
        advice = unfinished_hint(kind) if kind else f"return a tuple of {len(outputs)} values"
        raise OutputShapeError(
            f"node {name!r} declares {len(outputs)} outputs {outputs} but returned "
            f"{type(result).__name__}{'' if n < 0 else f' of length {n}'}; {advice}"
        )
    for i, out in pairs:
        values[out] = result[i]


def _async_node_runner(
    node: Node,
    wiring: list[tuple[str, str]],
    store: tuple[str, ...],
    whole: tuple[int, ...] = (),
    fixed: dict[int, Any] | None = None,
) -> AsyncRunner:
    """The coroutine twin of :func:`_node_runner` for an ``async def`` node: awaits the function
    on the running loop instead of driving it to completion with :func:`run_sync`."""
    arun = _bare_async_runner(node, wiring, store, whole, fixed)
    if node.retries:
        arun = aretrying(arun, node)
    return arun


def _bare_async_runner(
    node: Node,
    wiring: list[tuple[str, str]],
    store: tuple[str, ...],
    whole: tuple[int, ...] = (),
    fixed: dict[int, Any] | None = None,
) -> AsyncRunner:
    func: Callable[..., Any] = node.func
    if node.max_concurrency is not None:
        func = alimited(func, node, node.max_concurrency)
    if node.keyword_only:
        func = _keyword_adapter(func, node, wiring)
    if node.timeout is not None:
        func = atimed(func, node.timeout, node.name)
    if whole:
        func = resolving(func, whole)
    if fixed:
        func = _binding(func, len(wiring), fixed)
    keys = _read_keys(wiring, fixed)
    outputs = node.outputs
    if len(outputs) == 1:
        out = outputs[0]

        async def arun(values: dict[str, Any], ctx: RunContext) -> None:
            values[out] = await func(*[values[k] for k in keys])

        return arun

    pairs = tuple((i, name) for i, name in enumerate(outputs) if name in store)
    name = node.name

    async def arun_many(values: dict[str, Any], ctx: RunContext) -> None:
        result = await func(*[values[k] for k in keys])
        _store_outputs(result, name, outputs, pairs, values)

    return arun_many


def _binding(
    func: Callable[..., Any], n: int, fixed: dict[int, Any], own: bool = True
) -> Callable[..., Any]:
    """``func`` of ``n`` positional arguments as a function of those not in ``fixed`` (position
    -> value): the fixed ones are put in their places.

    With ``own`` (``func`` passes its arguments on to the node's function as they are), fixed
    arguments that come last are simply left out: the function's own defaults, which are what
    ``fixed`` holds, fill them in at no cost.
    """
    positions = sorted(fixed)
    if positions == list(range(n - len(fixed), n)):  # the usual case: defaults come last
        if own:
            return func
        tail = tuple(fixed[i] for i in positions)
        return lambda *args: func(*args, *tail)
    template = [fixed.get(i) for i in range(n)]
    free = tuple(i for i in range(n) if i not in fixed)

    def call(*args: Any) -> Any:
        full = template.copy()
        for i, arg in zip(free, args):
            full[i] = arg
        return func(*full)

    return call


def _keyword_adapter(
    func: Callable[..., Any], node: Node, wiring: list[tuple[str, str]]
) -> Callable[..., Any]:
    """Call a function with keyword-only parameters from positional arguments in wiring order."""
    by_input = dict(zip(node.inputs, node.parameters))
    params = tuple(by_input[name] for name, _ in wiring)
    keyword = tuple(name in node.keyword_only for name, _ in wiring)

    def call(*args: Any) -> Any:
        positional = [a for a, kw in zip(args, keyword) if not kw]
        named = {p: a for p, a, kw in zip(params, args, keyword) if kw}
        return func(*positional, **named)

    return call


# ---------------------------------------------------------------------------------------------
# Where a node error happened: recorded as the exception unwinds, written as one note at the top.

_WHERE = "__hypernodes_where__"


class _Where:
    __slots__ = ("node", "path", "items", "noted", "inputs")

    def __init__(self, node: str | None, path: tuple[str, ...]) -> None:
        self.node = node
        self.path = path
        self.items: dict[int, int] = {}
        self.noted = False
        #: the failing step's inputs by name (None when unknown)
        self.inputs: dict[str, Any] | None = None

    def __getstate__(self) -> dict[str, Any]:
        # An error travels back from a worker process with its place; inputs that cannot travel
        # (a coroutine, a lock) go as their reprs rather than losing the whole error.
        state = {name: getattr(self, name) for name in self.__slots__}
        if self.inputs:
            import cloudpickle

            try:
                cloudpickle.dumps(self.inputs)
            except Exception:
                state["inputs"] = {k: _Shown(_short(v)) for k, v in self.inputs.items()}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)


class _Shown(str):
    """The repr of a value that could not be sent back from a worker (shown without quotes)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


def locate_failure(
    exc: BaseException,
    step: Step | None,
    ctx: RunContext,
    plan: Plan | None = None,
    values: dict[str, Any] | None = None,
) -> None:
    """Record on ``exc`` the node that raised it, its inputs and the pipeline path, once (the
    innermost place wins).

    Given the ``plan`` and the item's ``values``, also note when the step read a coroutine (or
    generator) that another node returned instead of a value (a function not ``async def``).
    """
    if getattr(exc, _WHERE, None) is not None or isinstance(exc, CacheTimeout):
        return  # a busy cache is not the node's doing: its own message says what happened
    where = _Where(step.name if step is not None else None, ctx.path)
    if step is not None and values is not None:
        where.inputs = step_inputs(step, values)
    try:
        setattr(exc, _WHERE, where)
    except (AttributeError, TypeError):  # an exception type that takes no attributes
        exc.add_note(describe(where))
    if plan is not None and values is not None and step is not None:
        note = unfinished_inputs_note(plan.steps, step.name, step.arg_keys, values)
        if note is not None:
            exc.add_note(note)


def step_inputs(step: Step, values: dict[str, Any]) -> dict[str, Any]:
    """What ``step`` was called with, by the node's input names (for error notes)."""
    return step.inputs(values)


def failure_inputs(exc: BaseException) -> dict[str, Any] | None:
    """The inputs of the node that raised ``exc``, if recorded."""
    where = getattr(exc, _WHERE, None)
    return where.inputs if where is not None else None


def mark_item(exc: BaseException, depth: int, index: int) -> None:
    """Record that ``exc`` happened in map item ``index`` of the pipeline at ``depth``."""
    where = getattr(exc, _WHERE, None)
    if where is not None:
        where.items.setdefault(depth, index)


def add_failure_note(exc: BaseException) -> None:
    """Write the recorded location as a PEP 678 note (called once, by the public entry point)."""
    where = getattr(exc, _WHERE, None)
    if where is not None and not where.noted:
        where.noted = True
        exc.add_note(describe(where))


def describe(where: _Where) -> str:
    """``node 'f' of pipeline outer[item 2] > inner[item 0]; inputs: x=1``: where a node error
    happened, and with what (each value's repr cut to about 100 characters)."""
    parts = [
        f"{name}[item {where.items[depth]}]" if depth in where.items else name
        for depth, name in enumerate(where.path)
    ]
    node = f"node {where.node!r}" if where.node else "a step"
    if (
        where.path and where.path[0] == UNNAMED
    ):  # "of the pipeline[item 3]", not "pipeline pipeline"
        text = f"hypernodes: raised by {node} of the {' > '.join(parts)}"
    else:
        text = f"hypernodes: raised by {node} of pipeline {' > '.join(parts)}"
    if where.inputs:
        text += "; inputs: " + ", ".join(f"{k}={_short(v)}" for k, v in where.inputs.items())
    return text


def _short(value: Any, limit: int = 100) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # a repr that raises must not hide the real error
        text = f"<{type(value).__name__}: repr failed: {exc}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def run_items(plan: Plan, items: Iterable[dict[str, Any]], ctx: RunContext) -> list[dict[str, Any]]:
    """Run ``plan`` over ``items`` one after the other: the sequential map loop."""
    if ctx.cache is not None and ctx.dispatcher is None:
        return _cache.run_items(plan, items, ctx)
    results: list[dict[str, Any]] = []
    append = results.append
    try:
        if ctx.dispatcher is not None:
            for index, values in enumerate(items):
                append(events.run_map_item(plan, values, index, ctx))
            return results
        run = plan.run_item
        for values in items:
            append(run(values, ctx))
    except Exception as exc:
        mark_item(exc, ctx.depth, len(results))
        raise
    return results
