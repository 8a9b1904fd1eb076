"""A pipeline used as a node of another pipeline, with renamed inputs/outputs and an optional map."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..exceptions import MappingError
from ..execution.context import RanFlag, RunContext
from ..execution.plan import analyze
from ..execution.step import Runner
from .checks import name_mapping, name_tuple
from .graph import PipelineGraph
from .mapspec import MAP_MODES, MapSpec

if TYPE_CHECKING:
    from .pipeline import Pipeline


class PipelineNode:
    """Adapts a :class:`Pipeline` to the node interface (``inputs``, ``outputs``, ``name``).

    ``input_mapping`` is ``{outer name: inner name}`` and ``output_mapping`` is
    ``{inner name: outer name}``; unmapped names pass through unchanged.  With ``map_over`` (outer
    names), the inner pipeline maps over those lists and each output reaches the outer pipeline as
    one list.  Inputs the inner pipeline has bound stay bound and are not asked of the outer
    pipeline, unless ``input_mapping`` names them explicitly.

    ``expose`` chooses which inner outputs the outer pipeline sees: ``"all"`` (the default),
    ``"mapped"`` (only those ``output_mapping`` names, as the original HyperNodes 0.4 did) or a
    list of inner output names.  An inner output that is not exposed, and that no exposed one
    needs, is never computed.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        input_mapping: Mapping[str, str] | None = None,
        output_mapping: Mapping[str, str] | None = None,
        map_over: str | Sequence[str] | None = None,
        map_mode: str = "zip",
        name: str | None = None,
        expose: str | Sequence[str] = "all",
    ) -> None:
        if not isinstance(getattr(pipeline, "pgraph", None), PipelineGraph):
            raise MappingError(f"as_node needs a Pipeline, got {pipeline!r}")
        self.pipeline = pipeline
        self.name: str = name or pipeline.name or "pipeline"
        label = f"as_node {self.name!r}"
        inner_inputs = pipeline.root_args
        input_mapping = name_mapping(input_mapping, f"{label}: input_mapping", MappingError)
        output_mapping = name_mapping(output_mapping, f"{label}: output_mapping", MappingError)

        to_outer = _inner_to_outer(label, input_mapping, inner_inputs)
        _check_output_mapping(label, output_mapping, pipeline.output_names)
        if map_mode not in MAP_MODES:
            raise MappingError(f"{label}: map_mode must be 'zip' or 'product', got {map_mode!r}")

        bound = pipeline.bound_inputs
        #: inner input name -> outer name, for the inputs the outer pipeline supplies
        self.input_to_outer = _supplied_inputs(inner_inputs, bound, to_outer)
        _check_unique_outer(label, "input", self.input_to_outer, input_mapping)
        #: inner output name -> outer name
        exposed = _exposed(label, expose, output_mapping, pipeline.output_names)
        self.output_to_outer = {o: output_mapping.get(o, o) for o in exposed}
        _check_unique_outer(label, "output", self.output_to_outer, output_mapping)
        self.output_to_inner = {o: i for i, o in self.output_to_outer.items()}
        self.input_mapping = input_mapping
        self.output_mapping = output_mapping
        self.inputs: tuple[str, ...] = tuple(self.input_to_outer.values())
        self.outputs: tuple[str, ...] = tuple(self.output_to_outer.values())

        names = _map_over_names(label, map_over, self.inputs)
        self.map_over: tuple[str, ...] = names
        self.map_mode = map_mode
        outer_to_inner = {outer: inner for inner, outer in self.input_to_outer.items()}
        self._inner_map_over = tuple(outer_to_inner[n] for n in names)
        self._requirements: dict[tuple[str, ...], list[tuple[str, bool]]] = {}

    @property
    def defaults(self) -> dict[str, Any]:
        """Outer names of the inputs the inner pipeline can do without (defaults or bound)."""
        optional = {name for name, has_default in self.requirements(self.outputs) if has_default}
        return {name: None for name in self.inputs if name in optional}

    def requirements(self, outputs: Sequence[str]) -> list[tuple[str, bool]]:
        """``(outer input, has_default)`` for what computing the outer ``outputs`` reads."""
        key = tuple(outputs)
        found = self._requirements.get(key)
        if found is None:
            inner_outputs = [self.output_to_inner[o] for o in outputs]
            bound = self.pipeline.bound_inputs
            _, external = analyze(self.pipeline.pgraph, inner_outputs, frozenset(bound))
            found = []
            for inner, outer in self.input_to_outer.items():
                if inner in bound:  # named in input_mapping: the outer may override it
                    found.append((outer, True))
                elif inner in external:
                    found.append((outer, all(has_default for _, has_default in external[inner])))
            self._requirements[key] = found
        return found

    def make_runner(self, wiring: list[tuple[str, str]], store: tuple[str, ...]) -> Runner:
        """A closure running the inner pipeline for one item of the outer one."""
        pipeline = self.pipeline
        outer_to_inner = {outer: inner for inner, outer in self.input_to_outer.items()}
        reads = tuple((outer_to_inner[outer], key) for outer, key in wiring)
        inner_outputs = tuple(self.output_to_inner[o] for o in store)
        pairs = tuple(zip(inner_outputs, store))
        name = self.name
        spec = MapSpec(self._inner_map_over, self.map_mode) if self._inner_map_over else None  # type: ignore[arg-type]

        if spec is not None:

            def run(values: dict[str, Any], ctx: RunContext) -> None:
                inputs = {inner: values[key] for inner, key in reads}
                child = _observed_child(ctx, pipeline, name)
                columns = pipeline.map_columns(inputs, spec, inner_outputs, child)
                for inner, outer in pairs:
                    values[outer] = columns[inner]
                if child.flag is not None and any(columns.values()):
                    _report_cached(ctx, child, name)

        else:

            def run(values: dict[str, Any], ctx: RunContext) -> None:
                inputs = {inner: values[key] for inner, key in reads}
                child = _observed_child(ctx, pipeline, name)
                result = pipeline.execute(inputs, inner_outputs, child)
                for inner, outer in pairs:
                    values[outer] = result[inner]
                if child.flag is not None:
                    _report_cached(ctx, child, name)

        return run

    def __repr__(self) -> str:
        mapped = f" map_over={list(self.map_over)}" if self.map_over else ""
        return f"{self.name}[pipeline]({', '.join(self.inputs)}) -> ({', '.join(self.outputs)}){mapped}"


def _exposed(
    label: str, expose: Any, output_mapping: Mapping[str, str], inner: Sequence[str]
) -> tuple[str, ...]:
    """The inner outputs the step gives its parent: all of them (``"all"``), the ones
    ``output_mapping`` names (``"mapped"``, the original HyperNodes 0.4's choice), or a list."""
    if expose == "all":
        return tuple(inner)
    if expose == "mapped":
        if not output_mapping:
            raise MappingError(f"{label}: expose='mapped' needs an output_mapping to expose")
        return tuple(o for o in inner if o in output_mapping)
    names = (expose,) if isinstance(expose, str) else tuple(expose)
    unknown = [n for n in names if n not in inner]
    if unknown or not names:
        raise MappingError(
            f"{label}: expose takes 'all', 'mapped' or a list of the inner pipeline's outputs "
            f"{list(inner)}; got {expose!r}"
        )
    return tuple(o for o in inner if o in names)


def _observed_child(ctx: RunContext, pipeline: Pipeline, name: str) -> RunContext:
    """The context of the nested step ``name``; with callbacks and a cache in the caller, it
    gets its own ran-flag, so the step can tell whether every inner node came from the cache."""
    child = ctx.child(pipeline, name)
    if ctx.dispatcher is not None and child.cache is not None:
        child.flag = RanFlag(ctx.flag)
    return child


def _report_cached(ctx: RunContext, child: RunContext, name: str) -> None:
    """``on_node_cached`` for the nested step ``name`` itself when none of its nodes ran."""
    if not child.flag.ran:  # type: ignore[union-attr]
        ctx.dispatcher.emit("on_node_cached", node=name, signature="", context=ctx.cb)


def _inner_to_outer(
    label: str, input_mapping: Mapping[str, str], inner_inputs: Sequence[str]
) -> dict[str, str]:
    """``{inner: outer}`` for ``input_mapping``, checked to name real inner inputs, once each."""
    for outer, inner in input_mapping.items():
        if inner not in inner_inputs:
            raise MappingError(
                f"{label}: input_mapping maps {outer!r} to {inner!r}, but the inner pipeline has "
                f"no input {inner!r}; its inputs are {list(inner_inputs)}"
            )
    to_outer = {inner: outer for outer, inner in input_mapping.items()}
    if len(to_outer) != len(input_mapping):
        raise MappingError(
            f"{label}: input_mapping maps two outer names onto one inner input: "
            f"{_shared_targets(input_mapping)}. Each inner input reads one outer value; "
            "keep one of these names"
        )
    return to_outer


def _check_output_mapping(
    label: str, output_mapping: Mapping[str, str], output_names: Sequence[str]
) -> None:
    """Raise :class:`MappingError` unless ``output_mapping`` gives real outputs distinct names."""
    for inner in output_mapping:
        if inner not in output_names:
            raise MappingError(
                f"{label}: output_mapping names {inner!r}, but the inner pipeline has no output "
                f"{inner!r}; its outputs are {list(output_names)}"
            )
    if len(set(output_mapping.values())) != len(output_mapping):
        raise MappingError(
            f"{label}: output_mapping gives two outputs one outer name: "
            f"{_shared_targets(output_mapping)}; give each output its own name"
        )


def _supplied_inputs(
    inner_inputs: Sequence[str], bound: Mapping[str, Any], to_outer: Mapping[str, str]
) -> dict[str, str]:
    """``{inner: outer}`` for the inner inputs the outer pipeline supplies: unbound or mapped."""
    return {
        inner: to_outer.get(inner, inner)
        for inner in inner_inputs
        if inner not in bound or inner in to_outer
    }


def _map_over_names(
    label: str, map_over: str | Sequence[str] | None, inputs: tuple[str, ...]
) -> tuple[str, ...]:
    """``map_over`` as a tuple of names, checked to be inputs of the node."""
    names = name_tuple(map_over, "map_over", MappingError, f"{label}: ")
    unknown = [n for n in names if n not in inputs]
    if unknown:
        raise MappingError(
            f"{label}: map_over names {unknown}, which the node does not take; "
            f"its inputs are {list(inputs)} (map_over uses the outer names)"
        )
    return names


def _shared_targets(mapping: Mapping[str, str]) -> str:
    """``'a', 'b' -> 'x'`` for the keys of ``mapping`` that share a value."""
    by_target: dict[str, list[str]] = {}
    for key, target in mapping.items():
        by_target.setdefault(target, []).append(key)
    return "; ".join(
        f"{', '.join(repr(k) for k in keys)} -> {target!r}"
        for target, keys in by_target.items()
        if len(keys) > 1
    )


def _check_unique_outer(
    label: str, kind: str, to_outer: Mapping[str, str], mapping: Mapping[str, str]
) -> None:
    """Raise :class:`MappingError` when two inner inputs (or outputs) end up under one outer name:
    one renamed onto a name that another, unmapped one keeps."""
    seen: dict[str, str] = {}
    for inner, outer in to_outer.items():
        other = seen.get(outer)
        if other is None:
            seen[outer] = inner
            continue
        renamed, kept = (inner, other) if inner in _renamed(kind, mapping) else (other, inner)
        arg = f"{kind}_mapping"
        if kind == "input":
            detail = (
                f"input_mapping maps outer {outer!r} onto inner input {renamed!r}, but the inner "
                f"pipeline also takes an input {kept!r}, which is not mapped and so reads outer "
                f"{outer!r} too: one outer value would feed two inner inputs"
            )
            fix = f"map {kept!r} as well (e.g. input_mapping={{..., 'outer_{kept}': {kept!r}}})"
        else:
            detail = (
                f"output_mapping renames output {renamed!r} to {outer!r}, but the inner pipeline "
                f"already has an output {kept!r}, which is not mapped and keeps that name"
            )
            fix = f"rename {kept!r} as well (e.g. output_mapping={{..., {kept!r}: 'inner_{kept}'}})"
        raise MappingError(f"{label}: {detail}. Pick another name in {arg}, or {fix}")


def _renamed(kind: str, mapping: Mapping[str, str]) -> set[str]:
    """The inner names ``mapping`` renames (its values for inputs, its keys for outputs)."""
    return set(mapping.values()) if kind == "input" else set(mapping)
