"""``DaftEngine``: a map as a lazy Daft DataFrame whose batch UDFs run our compiled plan.

The mapped inputs become columns (plus an item index), the values shared by every item travel
with the UDFs, and the plan runs as *stages*: a run of consecutive nodes without resource hints is
one batch UDF, and a node with ``@node(resources=...)`` is a stage of its own with those UDF
options, so Daft places it.  A stage's UDF hands its batch to the remote kit
(:func:`hypernodes.execution.remote.run_items`), which runs the items with the same cache, events
and error handling as every other engine and returns them as values instead of raising; each
cell of a stage's column holds one item's outputs, and the first cell of a batch also holds the
batch's callback events, cache writes and error.  The caller replays those in item order, so rows,
events, cache hits and errors are the same as under ``HypernodesEngine``.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import os
import pickle
import sys
import threading
import typing
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..exceptions import ExecutorError, UnpicklableError
from ..execution import remote
from ..execution.context import Policy, RunContext
from ..execution.executors import Executor
from ..execution.item_error import ItemError
from ..execution.plan import DEFAULT_BATCH_SIZE, Plan, compile_plan
from ..execution.step import Step
from ..model.checks import check_cache
from ..model.graph import PipelineGraph
from ..model.mapspec import MapItems
from ..model.node import Node
from ..model.resources import release_resources
from ..observe.callbacks import check_callbacks
from .base import is_tolerant
from .daft_codegen import generate_code
from .hypernodes import HypernodesEngine, make_executor
from .seq import map_pipeline, original_batch_size, run_pipeline

_WHERE = "a Daft UDF of DaftEngine"
#: the column that numbers the items of a map
INDEX = "__item"
RUNNERS = (None, "native", "ray")
#: map-item hooks, merged across stages so that an item reports them once
_ITEM_HOOKS = frozenset({"on_map_item_start", "on_map_item_end", "on_map_item_cached"})

_RUNNER_LOCK = threading.Lock()
#: set once a DaftEngine stopped the local Ray it started: Daft's Ray runner, fixed for the
#: process, keeps actors of that Ray and cannot run on a new one
_RAY_STOPPED = [False]


def require_daft() -> None:
    """Raise a clear error when the ``daft`` package is not installed."""
    if importlib.util.find_spec("daft") is None:
        raise ImportError(
            'DaftEngine needs the daft package: pip install "hypernodes[daft]" '
            '(and "hypernodes[ray]" for runner="ray")'
        )


class DaftEngine:
    """Runs a map as a lazy Daft DataFrame: one batch UDF per stage of the compiled plan.

    - ``collect=True`` collects the DataFrame and returns the rows exactly as
      ``HypernodesEngine`` would; ``collect=False`` makes ``Pipeline.map`` return the lazy
      ``daft.DataFrame`` (the mapped inputs plus one column per output) to chain Daft operations
      on or write out.  Maps nested in a node always collect.
    - ``show_plan=True`` prints Daft's plan (``explain``) of every map.
    - ``runner``: ``None`` uses whatever Daft is set to (its native runner by default);
      ``"native"`` or ``"ray"`` sets it.  With ``"ray"``, ``ray_address`` names a cluster; without
      it a local Ray is started on the loopback interface (and stopped by :meth:`shutdown`).
      Daft allows one runner per process: asking for another raises ``ExecutorError``.
    - ``batch_size``: items per UDF call (Daft's choice by default); on Ray it also sets the number
      of partitions.
    - ``node_executor`` runs the nodes of each item inside the UDF, as in ``HypernodesEngine``.
    - 0.4's options: ``use_batch_udf=False`` gives every UDF call one item;
      ``default_daft_config={"batch_size": n}`` sets ``batch_size`` (other keys are kept on the
      engine and warned about: nothing here reads them); ``cache``/``callbacks`` are used by
      pipelines that set none, as with ``SeqEngine``.

    ``run`` is a one-row map.  Nodes declaring ``resources`` (``num_gpus``, ``num_cpus``,
    ``max_concurrency``, ``batch_size``) become stages of their own with those Daft options.
    """

    def __init__(
        self,
        collect: bool = True,
        show_plan: bool = False,
        runner: str | None = None,
        batch_size: int | None = None,
        ray_address: str | None = None,
        node_executor: str | Any = "sequential",
        use_batch_udf: bool = True,
        default_daft_config: Mapping[str, Any] | None = None,
        cache: Any = None,
        callbacks: Iterable[Any] | None = None,
    ) -> None:
        require_daft()
        if runner not in RUNNERS:
            raise ExecutorError(f"runner must be None, 'native' or 'ray', got {runner!r}")
        if runner == "ray" and importlib.util.find_spec("ray") is None:
            raise ImportError('DaftEngine(runner="ray") needs ray: pip install "hypernodes[ray]"')
        if ray_address is not None and runner != "ray":
            raise ExecutorError("ray_address is used with runner='ray' only")
        if batch_size is not None and (
            isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
        ):
            raise ExecutorError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
        self.collect = collect
        self.show_plan = show_plan
        self.runner = runner
        #: 0.4's options: no batching (one item per UDF call), and Daft settings (batch_size)
        self.use_batch_udf = use_batch_udf
        self.default_daft_config = dict(default_daft_config or {})
        self.batch_size = original_batch_size(batch_size, use_batch_udf, self.default_daft_config)
        #: 0.4's engine-held cache and callbacks, used by pipelines that set none
        self.cache = check_cache(cache)
        self.callbacks: list[Any] = check_callbacks(callbacks or [])
        self.ray_address = ray_address
        self.node_executor = node_executor
        self._node: Executor = make_executor(node_executor, "node_executor", None)
        self._ready = False
        self._ray: list[bool] = [False]  # whether this engine started the local Ray
        self._finalizer = weakref.finalize(self, _stop_ray, self._ray)

    # -- the Engine protocol -----------------------------------------------------------------

    def run(self, plan: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one item of ``plan`` (a one-row DataFrame), or 0.4's ``run(pipeline, inputs)``."""
        if not isinstance(plan, Plan):
            return run_pipeline(self, plan, *args, **kwargs)
        return self._run_plan(plan, *args, **kwargs)

    def _run_plan(self, plan: Plan, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        if remote.in_worker():
            return self._local().run(plan, values, ctx)
        source = _Source(values, {}, 1)
        rows, error = self._job(plan, source, ctx, tolerant=False, single=True).collect(ctx)
        if error is not None:
            raise error
        return rows[0]

    def map(self, plan: Any, *args: Any, **kwargs: Any) -> Any:
        """Every item's outputs in input order, or (``collect=False``) the lazy DataFrame; or
        0.4's ``map(pipeline, inputs, map_over, map_mode="zip", output_name=None)``."""
        if not isinstance(plan, Plan):
            return map_pipeline(self, plan, *args, **kwargs)
        return self._map_plan(plan, *args, **kwargs)

    def _map_plan(
        self,
        plan: Plan,
        items: Iterable[dict[str, Any]],
        count: int | None,
        ctx: RunContext,
        on_error: str = "raise",
    ) -> Any:
        tolerant = is_tolerant(on_error)
        if remote.in_worker():
            extra = {"on_error": on_error} if tolerant else {}
            return self._local().map(plan, items, count, ctx, **extra)
        source = _Source.of(items)
        if not self.collect and ctx.depth == 0:
            return self._job(plan, source, ctx, tolerant).table()
        if source.count == 0:
            return []
        rows, error = self._job(plan, source, ctx, tolerant).collect(ctx)
        if error is not None:
            raise error
        return rows

    def imap(
        self,
        plan: Plan,
        items: Iterable[dict[str, Any]],
        count: int,
        ctx: RunContext,
        on_error: str = "raise",
        ordered: bool = True,
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(index, outputs)`` of every item, in input order (``ordered`` is accepted for the
        Engine protocol; the DataFrame is collected first, so the order is always the input's).
        A failing item is raised after the rows before it."""
        tolerant = is_tolerant(on_error)
        if remote.in_worker():
            extra = {"on_error": on_error} if tolerant else {}
            yield from enumerate(self._local().map(plan, items, count, ctx, **extra))
            return
        source = _Source.of(items)
        if source.count == 0:
            return
        rows, error = self._job(plan, source, ctx, tolerant).collect(ctx)
        yield from enumerate(rows)
        if error is not None:
            raise error

    @staticmethod
    def generate_code(
        pipeline: Any,
        inputs: Mapping[str, Any] | None = None,
        mode: str = "run",
        map_over: str | Sequence[str] | None = None,
    ) -> str:
        """The source of a standalone Daft script computing ``pipeline`` on ``inputs`` (0.4's
        code generation; see :mod:`hypernodes.engines.daft_codegen` for what it covers)."""
        return generate_code(pipeline, inputs, mode, map_over)

    def shutdown(self, wait: bool = True) -> None:
        """Stop the local Ray this engine started, if any (Daft's native runner holds nothing),
        and tear down the resources built in this process (hypernodes.model.resources)."""

        _stop_ray(self._ray)
        self._ready = False
        release_resources()

    def __enter__(self) -> DaftEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def __copy__(self) -> DaftEngine:
        return DaftEngine(
            self.collect,
            self.show_plan,
            self.runner,
            self.batch_size,
            self.ray_address,
            self.node_executor,
            self.use_batch_udf,
            self.default_daft_config,
            self.cache,
            self.callbacks,
        )

    def __deepcopy__(self, memo: dict[int, Any]) -> DaftEngine:
        return self.__copy__()

    def __reduce__(self) -> tuple[Any, ...]:
        # Inside a UDF the plan runs in-process: a nested pipeline (or a map nested in a node)
        # that inherits this engine runs there on a local engine with the same node executor.

        return (HypernodesEngine, (self._node, "sequential", None, self.batch_size))

    def __repr__(self) -> str:
        return (
            f"DaftEngine(collect={self.collect!r}, show_plan={self.show_plan!r}, "
            f"runner={self.runner!r}, batch_size={self.batch_size!r})"
        )

    # -- building the DataFrame --------------------------------------------------------------

    def _local(self) -> Any:
        return HypernodesEngine(node_executor=self._node)

    def _job(
        self, plan: Plan, source: _Source, ctx: RunContext, tolerant: bool, single: bool = False
    ) -> _Job:
        self._prepare_runner()
        import daft

        on_ray = daft.get_or_infer_runner_type() == "ray"
        stages = layout(plan, tuple(source.columns), ctx.path[-1] if ctx.path else "pipeline")
        on_error = "continue" if tolerant else "raise"
        specs = [
            remote.PlanSpec.for_call(stage.plan, ctx, self._node, on_error, _WHERE)
            for stage in stages
        ]
        from daft import DataType, Series

        numbers = Series.from_pylist(list(range(source.count)), name=INDEX, dtype=DataType.int64())
        frame = daft.from_pydict({INDEX: numbers, **_input_series(source.columns)})
        if on_ray and source.count > 1:
            frame = frame.into_partitions(self._partitions(source.count))
        for stage, spec in zip(stages, specs):
            call = _StageCall(
                spec.token,
                spec.blob,
                _fixed_for(stage, source.fixed, len(stages) == 1),
                stage.mapped,
                tuple(names for _, names in stage.reads),
                tolerant,
                on_ray or bool(stage.resources),
                single,
                self._node,
                remote.tokens_of(ctx),
            )
            args = [frame[INDEX], *(frame[n] for n in stage.mapped)]
            args += [frame[stages[k].column] for k, _ in stage.reads]
            try:
                column = _stage_udf(stage, call, self.batch_size)(*args)
            except ValueError as exc:  # Daft's "must be serializable"
                raise _unserializable(exc, source.fixed) from exc
            frame = frame.with_column(stage.column, column)
        job = _Job(plan, stages, specs, source, frame, tolerant, single)
        if self.show_plan:
            job.table().explain(show_all=True)
        return job

    def _partitions(self, count: int) -> int:
        if self.batch_size:
            return max(1, min(count, math.ceil(count / self.batch_size)))
        import ray

        cpus = int(ray.cluster_resources().get("CPU", 1)) if ray.is_initialized() else 1
        return max(1, min(count, 2 * cpus))

    # -- the runner ---------------------------------------------------------------------------

    def _prepare_runner(self) -> None:
        if self._ready or self.runner is None:
            return
        import daft

        with _RUNNER_LOCK:
            current = _current_runner()
            if current is not None and current != self.runner:
                raise ExecutorError(
                    f"DaftEngine(runner={self.runner!r}): Daft already runs on its {current!r} "
                    "runner in this process, and Daft allows one runner per process. Use "
                    "runner=None to run on it, or start a new process"
                )
            if current is None:
                if self.runner == "native":
                    daft.set_runner_native()
                else:
                    if self.ray_address is None:
                        self._ray[0] = _start_local_ray() or self._ray[0]
                    daft.set_runner_ray(address=self.ray_address, noop_if_initialized=True)
            elif self.runner == "ray" and self.ray_address is None and _RAY_STOPPED[0]:
                raise ExecutorError(
                    "the local Ray that DaftEngine started in this process was stopped by "
                    "shutdown(), and Daft's Ray runner cannot move to a new one: run further "
                    "maps in a new process, or shut the engine down only when you are done"
                )
            self._ready = True


def _current_runner() -> str | None:
    """The name of the runner Daft has fixed for this process, or None if none is set yet."""
    from daft.runners import _get_runner

    runner = _get_runner()
    return None if runner is None else str(runner.name)


def _start_local_ray() -> bool:
    """Start a local Ray bound to the loopback interface unless Ray runs already; True if started.

    Ray resolves "127.0.0.1" to the machine's address and listens on every interface unless its
    single-machine mode is on (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, read when ray is imported
    and by the processes it starts).  Both are set while this Ray starts, then put back.
    """
    flag = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
    before = os.environ.get(flag)
    os.environ[flag] = "0"
    try:
        import ray
        from ray._private import ray_constants

        if ray.is_initialized():
            return False
        cluster_mode = ray_constants.ENABLE_RAY_CLUSTER
        ray_constants.ENABLE_RAY_CLUSTER = False
        try:
            ray.init(include_dashboard=False, _node_ip_address="127.0.0.1")
        finally:
            ray_constants.ENABLE_RAY_CLUSTER = cluster_mode
        return True
    finally:
        if before is None:
            os.environ.pop(flag, None)
        else:
            os.environ[flag] = before


def _stop_ray(started: list[bool]) -> None:
    if started[0]:
        started[0] = False
        ray = sys.modules.get("ray")
        if ray is not None:
            ray.shutdown()
            _RAY_STOPPED[0] = True


# ---------------------------------------------------------------------------------------------
# The items as columns


@dataclass(slots=True)
class _Source:
    """A map's items as Daft will see them: shared values, one list per mapped input, a count."""

    fixed: dict[str, Any]
    columns: dict[str, list[Any]]
    count: int

    @classmethod
    def of(cls, items: Iterable[dict[str, Any]]) -> _Source:
        if isinstance(items, MapItems):
            return cls.of_spec(items)
        rows = list(items)
        if not rows:
            return cls({}, {}, 0)
        first = rows[0]
        # Values shared by every item are the very same object in each (Pipeline.map copies one
        # dict); a value that happens to repeat is shared too, which changes nothing.
        varying = [k for k in first if any(row[k] is not first[k] for row in rows)]
        fixed = {k: v for k, v in first.items() if k not in varying}
        columns = {k: [row[k] for row in rows] for k in varying}
        return cls(fixed, columns, len(rows))

    @classmethod
    def of_spec(cls, items: MapItems) -> _Source:
        """The columns of a map's own items, without building one dict per item."""
        names, seqs = items.names, items.seqs
        if items.mode == "zip" or len(names) == 1:
            lists = [list(seq) for seq in seqs]
        else:
            combos = list(itertools.product(*seqs))
            lists = [list(values) for values in zip(*combos)] if combos else [[] for _ in names]
        fixed = {k: v for k, v in items.base.items() if k not in names}
        return cls(fixed, dict(zip(names, lists)), len(lists[0]))


_EXACT = {int: "int64", float: "float64", str: "string", bool: "bool", bytes: "binary"}


def _input_series(columns: dict[str, list[Any]]) -> dict[str, Any]:
    """Columns typed by Daft where that keeps every value exactly (all ints, all strs, ...);
    anything else is a Python column, so the nodes get the very objects the caller passed."""
    from daft import DataType, Series

    typed = {}
    for name, values in columns.items():
        kinds = {type(v) for v in values}
        kind = kinds.pop() if len(kinds) == 1 else None
        dtype = getattr(DataType, _EXACT[kind])() if kind in _EXACT else DataType.python()
        if kind is int and not -(2**63) <= min(values) <= max(values) < 2**63:
            dtype = DataType.python()
        try:
            typed[name] = Series.from_pylist(values, name=name, dtype=dtype)
        except Exception:  # a value Daft's type cannot hold (a lone surrogate in a str, ...)
            typed[name] = Series.from_pylist(values, name=name, dtype=DataType.python())
    return typed


# ---------------------------------------------------------------------------------------------
# Stages


@dataclass(frozen=True, slots=True)
class Stage:
    """A part of a plan that runs as one batch UDF.

    ``plan`` computes ``outputs`` from the mapped inputs in ``mapped``, the shared values and the
    outputs of earlier stages listed in ``reads`` (``(stage number, names)``).
    """

    number: int
    label: str
    plan: Plan
    resources: Mapping[str, Any]
    mapped: tuple[str, ...]
    reads: tuple[tuple[int, tuple[str, ...]], ...]
    reads_fixed: frozenset[str] | None

    @property
    def column(self) -> str:
        return f"__stage{self.number}"

    @property
    def outputs(self) -> tuple[str, ...]:
        return self.plan.output_names


def layout(plan: Plan, mapped: tuple[str, ...], label: str) -> list[Stage]:
    """The stages of ``plan``: consecutive steps without resource hints form one stage, and a step
    with hints is a stage of its own.  A plan of one stage runs whole (same cache keys as any
    engine); with several, each stage is compiled on its own from the outputs it needs."""
    key = ("daft-layout", mapped)
    found = plan.specs.get(key)
    if found is None:
        found = plan.specs[key] = _layout(plan, mapped, label)
    return found


def _layout(plan: Plan, mapped: tuple[str, ...], label: str) -> list[Stage]:
    groups = _groups(plan.steps)
    if len(groups) <= 1:
        hints = groups[0][0] if groups else None
        return [Stage(0, _label(plan.steps), plan, hints or {}, mapped, (), None)]
    reads_of = [{k for step in steps for k in step.arg_keys} for _, steps in groups]
    wanted = set(plan.output_names)
    stages: list[Stage] = []
    producer: dict[str, int] = {}
    for number, (hints, steps) in enumerate(groups):
        own = [name for step in steps for name in step.store]
        later = set().union(*reads_of[number + 1 :])
        outputs = tuple(name for name in own if name in wanted or name in later)
        stages.append(
            _stage(
                plan,
                number,
                hints,
                steps,
                outputs,
                reads_of[number] - set(own),
                producer,
                mapped,
                label,
            )
        )
        producer.update(dict.fromkeys(own, number))
    return stages


def _groups(steps: Sequence[Step]) -> list[tuple[Mapping[str, Any] | None, list[Step]]]:
    """Consecutive steps grouped into stages: a step with resource hints, or a batch step (a batch
    UDF of its own), is a group of its own."""
    groups: list[tuple[Mapping[str, Any] | None, list[Step]]] = []
    alone = False  # whether the last group is a stage of its own
    for step in steps:
        hints = getattr(step.node, "resources", None)
        own = bool(hints) or step.batch is not None
        if own or not groups or alone:
            groups.append((hints, [step]))
        else:
            groups[-1][1].append(step)
        alone = own
    return groups


def _stage(
    plan: Plan,
    number: int,
    hints: Mapping[str, Any] | None,
    steps: list[Step],
    outputs: tuple[str, ...],
    outside: set[str],
    producer: dict[str, int],
    mapped: tuple[str, ...],
    label: str,
) -> Stage:
    """One stage compiled on its own: it reads ``outside`` names from earlier stages (by their
    ``producer``), from the mapped inputs or from the shared values."""
    reads: dict[int, list[str]] = {}
    for name in sorted(outside):
        if name in producer:
            reads.setdefault(producer[name], []).append(name)
    earlier = {name for names in reads.values() for name in names}
    pgraph = PipelineGraph([step.node for step in steps], label)
    provided = frozenset(plan.provided | earlier)
    stage_plan = compile_plan(pgraph, outputs, provided, label, plan.resources)
    return Stage(
        number,
        _label(steps),
        stage_plan,
        hints or {},
        tuple(name for name in mapped if name in outside),
        tuple((k, tuple(names)) for k, names in sorted(reads.items())),
        frozenset(outside - earlier - set(mapped)),
    )


def _label(steps: Sequence[Step]) -> str:
    names = [step.name for step in steps]
    shown = ", ".join(names[:6]) + (f", ... {len(names) - 6} more" if len(names) > 6 else "")
    return f"[{shown}]"


def _fixed_for(stage: Stage, fixed: dict[str, Any], whole: bool) -> dict[str, Any]:
    """The shared values a stage's UDF carries: all of them for a whole plan, only those it
    reads for a stage compiled on its own."""
    if whole:
        return fixed
    names = stage.reads_fixed or frozenset()
    return {k: v for k, v in fixed.items() if k in names}


# ---------------------------------------------------------------------------------------------
# The UDFs (worker side)


class Head:
    """The first cell of a batch: the first item's outputs (``row``, None if it failed), and the
    batch's ``meta`` (a :class:`~hypernodes.execution.remote.Reply` without rows, or its pickle)
    and how many items ran before its error (``done``)."""

    __slots__ = ("row", "meta", "done")

    def __init__(self, row: Any, meta: Any, done: int) -> None:
        self.row = row
        self.meta = meta
        self.done = done

    def __reduce__(self) -> tuple[Any, ...]:
        return (Head, (self.row, self.meta, self.done))

    def reply(self) -> remote.Reply:
        meta = self.meta
        return pickle.loads(meta) if isinstance(meta, bytes) else meta


@dataclass(slots=True)
class _StageCall:
    """What a stage's UDF needs: the spec, shared values, column layout and error policy."""

    token: str
    blob: bytes
    fixed: dict[str, Any]
    mapped: tuple[str, ...]
    #: per earlier stage column passed in, the names read from its cells
    reads: tuple[tuple[str, ...], ...]
    tolerant: bool
    #: send the batch's meta as bytes (it leaves the process; the kit makes what cannot travel
    #: an error that can)
    ship: bool
    #: one item run as Pipeline.run (not a map item)
    single: bool
    node: Any
    #: the cache tokens of the inputs every item shares (computed once by the caller), or None
    tokens: dict[str, bytes] | None = None


def _unserializable(exc: ValueError, fixed: Mapping[str, Any]) -> Exception:
    """For Daft refusing a stage that cannot be pickled: an :class:`UnpicklableError` naming
    the shared input that holds what cannot travel (a lock, an open file, a client), else
    ``exc`` itself."""
    if "serializable" not in str(exc):
        return exc
    for name, value in fixed.items():
        problem = remote.pickles(value)
        if problem is not None:
            return UnpicklableError(
                f"shared input {name!r} cannot be sent to {_WHERE}: {problem}. A DaftEngine map "
                "copies the inputs every item shares to Daft's workers; pass a value that can "
                "be pickled, make the object inside a node (or as a Resource, built where the "
                "node runs), or use HypernodesEngine(map_executor='threaded')"
            )
    return UnpicklableError(f"the map cannot be sent to {_WHERE}: {exc}")


def _stage_udf(stage: Stage, call: _StageCall, batch_size: int | None) -> Any:
    """The Daft UDF of one stage: ``(index, *mapped columns, *earlier stage columns) -> cells``."""
    import daft
    from daft import DataType, Series

    python = DataType.python()
    hints = dict(stage.resources)
    size = hints.pop("batch_size", None) or batch_size
    if size is None and stage.plan.segments is not None:  # a batch node: our default batch
        size = DEFAULT_BATCH_SIZE
    name = f"stage{stage.number}{stage.label}"

    if not hints:

        def stage_fn(index: Series, *columns: Series) -> Series:
            cells = run_stage(call, index.to_pylist(), [c.to_pylist() for c in columns])
            return Series.from_pylist(cells, dtype=python)

        stage_fn.__name__ = stage_fn.__qualname__ = name
        return daft.func.batch(return_dtype=python, batch_size=size)(stage_fn)

    def init(self: Any, call: _StageCall) -> None:
        self.call = call

    def run(self: Any, index: Series, *columns: Series) -> Series:
        cells = run_stage(self.call, index.to_pylist(), [c.to_pylist() for c in columns])
        return Series.from_pylist(cells, dtype=python)

    # Daft names a UDF by its function: the stage's name shows in explain()
    run.__name__ = run.__qualname__ = name
    method = daft.method.batch(return_dtype=python, batch_size=size)(run)
    stage_class = type(name, (), {"__init__": init, "run": method, "__module__": __name__})
    options = {
        "gpus": hints.get("num_gpus", 0),
        "cpus": hints.get("num_cpus"),
        "max_concurrency": hints.get("max_concurrency"),
    }
    return daft.cls(**options)(stage_class)(call).run


def run_stage(call: _StageCall, index: list[int], columns: list[list[Any]]) -> list[Any]:
    """Run one batch of a stage through the remote kit; one cell per row (see :class:`Head`)."""
    n = len(index)
    cells: list[Any] = [None] * n
    if not n:
        return cells
    mapped = columns[: len(call.mapped)]
    earlier = columns[len(call.mapped) :]
    if not earlier:
        items = _plain_items(call.fixed, call.mapped, mapped, n)
        for p0, p1 in _runs(index):
            _run(call, cells, items[p0:p1], p0, index[p0])
        return cells

    run: list[dict[str, Any]] = []
    first = 0
    for p in range(n):
        item = dict(call.fixed)
        for name, column in zip(call.mapped, mapped):
            item[name] = column[p]
        failed = _read_earlier(call, item, earlier, p)
        ready = failed is not None
        if run and (not ready or failed or index[p] != index[p - 1] + 1):
            _run(call, cells, run, first, index[first])
            run = []
        if not ready:
            continue
        if failed:
            cells[p] = _partial(call, item, failed, index[p])
            continue
        if not run:
            first = p
        run.append(item)
    if run:
        _run(call, cells, run, first, index[first])
    return cells


def _read_earlier(
    call: _StageCall, item: dict[str, Any], earlier: list[list[Any]], p: int
) -> list[str] | None:
    """Put row ``p`` of the earlier stages' cells into ``item``; the names among them that hold
    an ``ItemError``, or None when an earlier stage did not run this item (it raised before)."""
    failed: list[str] = []
    for names, column in zip(call.reads, earlier):
        cell = column[p]
        if type(cell) is Head:
            cell = cell.row
        if cell is None:
            return None
        for name in names:
            value = item[name] = cell[name]
            if type(value) is ItemError:
                failed.append(name)
    return failed


def _plain_items(
    fixed: dict[str, Any], names: tuple[str, ...], columns: list[list[Any]], n: int
) -> list[dict[str, Any]]:
    if not names:
        return [dict(fixed) for _ in range(n)]
    if len(names) == 1:
        (name,) = names
        (column,) = columns
        if not fixed:
            return [{name: value} for value in column]
        return [{**fixed, name: value} for value in column]
    return [{**fixed, **dict(zip(names, values))} for values in zip(*columns)]


def _runs(index: list[int]) -> Iterator[tuple[int, int]]:
    """``(start, end)`` positions of the runs of consecutive item numbers in ``index``."""
    n = len(index)
    if index[-1] - index[0] == n - 1 and index == list(range(index[0], index[0] + n)):
        yield 0, n
        return
    start = 0
    for p in range(1, n):
        if index[p] != index[p - 1] + 1:
            yield start, p
            start = p
    yield start, n


def _run(
    call: _StageCall, cells: list[Any], items: list[dict[str, Any]], first: int, start: int
) -> None:
    reply = remote.run_items(
        call.token, call.blob, items, None if call.single else start, call.tokens
    )
    rows = reply.rows
    cells[first : first + len(rows)] = rows
    meta: Any = remote.Reply([], reply.events, reply.writes, reply.error, reply.warnings)
    if call.ship:
        meta = remote.dump_reply(meta, start)
    cells[first] = Head(cells[first], meta, len(rows))


#: specs of stage plans pruned to the outputs an item's failed inputs leave computable
_PARTIAL: dict[tuple[str, tuple[str, ...]], remote.PlanSpec] = {}
_PARTIAL_LOCK = threading.Lock()


def _partial(call: _StageCall, item: dict[str, Any], failed: list[str], index: int) -> Any:
    """``on_error="continue"``: run the outputs of a stage that do not depend on an input an
    earlier stage failed to produce; the others hold that input's ``ItemError``."""
    worker = remote.compiled(call.token, call.blob)
    plan = worker.plan
    errors: dict[str, ItemError] = {name: item.pop(name) for name in failed}
    policy = Policy(tolerant=True)
    policy.failed = errors  # the steps that read a failed value fail with it
    for step in plan.steps:
        policy.blocked(step)
    wanted = tuple(name for name in plan.output_names if name not in errors)
    row: dict[str, Any] = {}
    meta: Any = None
    if wanted:
        key = (call.token, wanted)
        with _PARTIAL_LOCK:
            spec = _PARTIAL.get(key)
            if spec is None:
                if len(_PARTIAL) >= 64:
                    _PARTIAL.clear()
                nodes = [step.node for step in plan.steps]
                label = worker.ctx.path[-1] if worker.ctx.path else "pipeline"
                pruned = compile_plan(
                    PipelineGraph(nodes, label), wanted, plan.provided, label, plan.resources
                )
                spec = _PARTIAL[key] = remote.PlanSpec(
                    pruned, worker.ctx, call.node, "continue", _WHERE
                )
        reply = remote.run_items(spec.token, spec.blob, [item], index, call.tokens)
        row = reply.rows[0] if reply.rows else {}
        meta = remote.Reply([], reply.events, reply.writes, reply.error, reply.warnings)
        if call.ship:
            meta = remote.dump_reply(meta, index)
    cells = {name: errors[name] if name in errors else row[name] for name in plan.output_names}
    return cells if meta is None else Head(cells, meta, 1)


# ---------------------------------------------------------------------------------------------
# Reading a collected DataFrame back (caller side)


class _Job:
    """One map as a DataFrame: its stages, and how to turn the collected cells into rows."""

    def __init__(
        self,
        plan: Plan,
        stages: list[Stage],
        specs: list[remote.PlanSpec],
        source: _Source,
        frame: Any,
        tolerant: bool,
        single: bool,
    ) -> None:
        self.plan = plan
        self.stages = stages
        self.specs = specs
        self.source = source
        self.frame = frame
        self.tolerant = tolerant
        self.single = single
        produced = {name: stage.number for stage in stages for name in stage.outputs}
        #: per output: ("stage", number), ("input", name) or ("fixed", value)
        self.sources: list[tuple[str, str, Any]] = []
        for name in plan.output_names:
            if name in produced:
                self.sources.append((name, "stage", produced[name]))
            elif name in source.columns:
                self.sources.append((name, "input", name))
            else:
                self.sources.append((name, "fixed", source.fixed.get(name)))

    def table(self) -> Any:
        """The lazy DataFrame users get: the mapped inputs and one column per output."""
        frame = self.frame
        types = _output_types(self.stages, self.tolerant)
        for name, kind, ref in self.sources:
            if kind == "stage":
                column = frame[self.stages[ref].column]
                frame = frame.with_column(name, _output_udf(name, types.get(name))(column))
            elif kind == "fixed":
                frame = frame.with_column(name, _constant_udf(ref)(frame[INDEX]))
        shown = list(self.source.columns)
        shown += [name for name in self.plan.output_names if name not in self.source.columns]
        return frame.select(*shown)

    def collect(self, ctx: RunContext) -> tuple[list[dict[str, Any]], BaseException | None]:
        """Collect the stage columns, replay events and cache writes here in item order, and
        return the rows in item order up to the first failing item, with its error (or None)."""
        wanted = [INDEX, *(stage.column for stage in self.stages)]
        wanted += [ref for _, kind, ref in self.sources if kind == "input" and ref not in wanted]
        data = self.frame.select(*wanted).to_pydict()
        index: list[int] = data[INDEX]
        if index != list(range(len(index))):  # Daft keeps the order; never rely on it blindly
            order = sorted(range(len(index)), key=index.__getitem__)
            data = {name: [column[p] for p in order] for name, column in data.items()}
        if len(self.stages) == 1 and self.sources and all(k == "stage" for _, k, _ in self.sources):
            return self._whole(data[self.stages[0].column], ctx)
        return self._staged(data, ctx)

    def _whole(
        self, cells: list[Any], ctx: RunContext
    ) -> tuple[list[dict[str, Any]], BaseException | None]:
        spec = self.specs[0]
        stop = len(cells)
        error: BaseException | None = None
        for p in [p for p, cell in enumerate(cells) if type(cell) is Head]:
            if p >= stop:  # batches after the failing item: not reported, as if never run
                break
            head = cells[p]
            reply = head.reply()
            if reply.error is not None:
                stop, error = p + head.done, reply.error
                reply.error = None
            spec.receive(reply, ctx)
            cells[p] = head.row
        return (cells if error is None else cells[:stop]), error

    def _staged(
        self, data: dict[str, list[Any]], ctx: RunContext
    ) -> tuple[list[dict[str, Any]], BaseException | None]:
        depth = ctx.depth
        columns = []
        events: list[dict[Any, list[Any]]] = []
        errors: list[dict[int, BaseException]] = []
        for stage, spec in zip(self.stages, self.specs):
            cells = list(data[stage.column])
            mine: dict[Any, list[Any]] = {}
            failures: dict[int, BaseException] = {}
            for p, cell in enumerate(cells):
                if type(cell) is not Head:
                    continue
                reply = cell.reply()
                if reply.error is not None:
                    failures[p + cell.done] = reply.error
                    reply.error = None
                if reply.writes:
                    spec.receive(remote.Reply([], [], reply.writes), ctx)
                for event in reply.events:
                    items = event[2]
                    mine.setdefault(items[depth] if len(items) > depth else None, []).append(event)
                cells[p] = cell.row
            columns.append(cells)
            events.append(mine)
            errors.append(failures)
        dispatcher = ctx.dispatcher
        path = ctx.path
        rows: list[dict[str, Any]] = []
        for p in range(len(data[INDEX])):
            if dispatcher is not None:
                key = None if self.single else p
                dispatcher.replay(merge_item_events([mine.pop(key, []) for mine in events], path))
            for failures in errors:
                if p in failures:
                    return rows, failures[p]
            row = {}
            for name, kind, ref in self.sources:
                if kind == "stage":
                    row[name] = columns[ref][p][name]
                elif kind == "input":
                    row[name] = data[ref][p]
                else:
                    row[name] = ref
            rows.append(row)
        return rows, None


def merge_item_events(parts: list[list[Any]], path: tuple[str, ...]) -> list[Any]:
    """One item's events from each stage, as one run of the item would have reported them: the
    stages' own map-item events become one start, one end (with the summed duration) and, when
    every stage was all cache hits, one ``on_map_item_cached``.

    Events are the kit's recorded tuples ``(hook, path, items, time, kwargs)``.
    """
    ran = [events for events in parts if events]
    if len(ran) <= 1:
        return ran[0] if ran else []

    cached = all(_has(events, "on_map_item_cached", path) for events in parts)
    duration = sum(
        e[4].get("duration", 0.0)
        for events in ran
        for e in events
        if e[0] == "on_map_item_end" and e[1] == path
    )
    last = len(ran) - 1
    merged: list[Any] = []
    for k, events in enumerate(ran):
        for event in events:
            if event[0] not in _ITEM_HOOKS or event[1] != path:
                merged.append(event)
            elif _kept(event[0], first=k == 0, last=k == last, cached=cached):
                if event[0] == "on_map_item_end":
                    event = (*event[:4], {**event[4], "duration": duration})
                merged.append(event)
    return merged


def _has(events: list[Any], hook: str, path: tuple[str, ...]) -> bool:
    return any(e[0] == hook and e[1] == path for e in events)


def _kept(hook: str, *, first: bool, last: bool, cached: bool) -> bool:
    """Whether one stage's map-item event stays in the merged run: the first stage's start, the
    last stage's end and error, and the last stage's cached mark only when every stage hit."""
    if hook == "on_map_item_start":
        return first
    if hook == "on_map_item_cached":
        return last and cached
    return last


# ---------------------------------------------------------------------------------------------
# Output columns of the user's DataFrame


def _output_udf(name: str, dtype: Any) -> Any:
    import daft
    from daft import DataType, Series

    dtype = dtype if dtype is not None else DataType.python()

    def output(cells: Series) -> Series:
        values = []
        for cell in cells.to_pylist():
            if type(cell) is Head:
                error = cell.reply().error
                if error is not None:
                    raise error
                cell = cell.row
            values.append(None if cell is None else cell[name])
        try:
            series = Series.from_pylist(values, dtype=dtype)
        except Exception as exc:
            raise TypeError(
                f"hypernodes: output {name!r} does not fit the Daft type {dtype} its node's return "
                f"annotation gives ({exc}); fix the annotation or leave it out"
            ) from exc
        if series.count().to_pylist()[0] != len(values) - values.count(None):
            raise TypeError(_misfit(name, values, dtype))  # Daft made a value null
        return series

    output.__name__ = output.__qualname__ = f"output[{name}]"
    return daft.func.batch(return_dtype=dtype)(output)


def _misfit(name: str, values: list[Any], dtype: Any) -> str:
    """The message for a value of output ``name`` that Daft would turn into a null of ``dtype``
    (``"many"`` returned by a node annotated ``-> int``)."""
    from daft import Series

    bad = next(
        (v for v in values if v is not None and Series.from_pylist([v], dtype=dtype).count()
         .to_pylist()[0] == 0),
        None,
    )  # fmt: skip
    return (
        f"hypernodes: output {name!r} is annotated as a Daft {dtype} column, but its node "
        f"returned {bad!r} ({type(bad).__name__}), which Daft would store as a null; fix the "
        "node or its return annotation (or leave the annotation out: a Python column)"
    )


def _constant_udf(value: Any) -> Any:
    import daft
    from daft import DataType, Series

    def constant(index: Series) -> Series:
        return Series.from_pylist([value] * len(index), dtype=DataType.python())

    return daft.func.batch(return_dtype=DataType.python())(constant)


def _output_types(stages: list[Stage], tolerant: bool) -> dict[str, Any]:
    """Daft types for outputs whose node's return annotation is a plain type (``int``,
    ``str``, ``list[float]``, ...); everything else stays a Python column.  With
    ``on_error="continue"`` every output may hold an ``ItemError``, so all stay Python."""
    if tolerant:
        return {}
    types: dict[str, Any] = {}
    for stage in stages:
        for step in stage.plan.steps:
            node = step.node
            if type(node) is not Node:
                continue
            hints = _return_hints(node)
            for name, hint in zip(node.outputs, hints):
                dtype = _daft_type(hint)
                if dtype is not None:
                    types[name] = dtype
    return types


def _return_hints(node: Node) -> list[Any]:
    try:
        hint = typing.get_type_hints(node.func).get("return")
    except Exception:
        return []
    if hint is None:
        return []
    if len(node.outputs) == 1:
        return [hint]
    args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple and len(args) == len(node.outputs) and Ellipsis not in args:
        return list(args)
    return []


def _daft_type(hint: Any) -> Any:
    from daft import DataType

    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, _UnionType) and len(args) == 2 and type(None) in args:
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint in _EXACT:
        return getattr(DataType, _EXACT[hint])()
    if origin is list and len(args) == 1 and args[0] in _EXACT:
        return DataType.list(getattr(DataType, _EXACT[args[0]])())
    return None


_UnionType = type(int | None)
