"""A step of a compiled plan, and the builders of its call: what runs for one node of one item.

:class:`Step` holds what a node reads and stores and its runner, a closure that reads its
arguments from an item's values and writes its outputs back.  The builders here compose that
runner once, at compile time, from the node's options: the call layers (concurrency limit,
timeout, retries, see :mod:`hypernodes.execution.layers`), keyword-only parameters, bound
defaults, resources, and for batch nodes the call that runs many items at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from ..exceptions import OutputShapeError
from ..model.checks import unfinished_hint, unfinished_kind
from ..model.node import Node, is_async
from ..model.resources import Resource, aresolving, resolving
from .aio import run_sync
from .layers import call_layers, runner_layers

if TYPE_CHECKING:
    from .context import RunContext

Runner = Callable[[dict[str, Any], Any], None]
AsyncRunner = Callable[[dict[str, Any], Any], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Step:
    """One node of a plan: what it reads, what it stores and its runner."""

    node: Any
    name: str
    arg_keys: tuple[str, ...]
    store: tuple[str, ...]
    run: Runner
    #: for an ``async def`` node: the awaitable twin of ``run``, awaited on the caller's event loop
    arun: AsyncRunner | None = None
    #: position in the plan's steps
    index: int = 0
    #: for a batch node: ``batch(values_list, ctx)`` runs the node once for many items' values
    #: (see :mod:`hypernodes.execution.loops`); None for every other step
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


def read_keys(wiring: list[tuple[str, str]], fixed: dict[int, Any] | None) -> tuple[str, ...]:
    """The keys a step reads from the values: its wiring without the defaults bound into it."""
    if not fixed:
        return tuple(key for _, key in wiring)
    return tuple(key for i, (_, key) in enumerate(wiring) if i not in fixed)


def node_runner(
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
    for layer in runner_layers(node):
        run = layer.wrap(run, node)
    return run


def batch_node_runner(
    node: Node,
    wiring: list[tuple[str, str]],
    store: tuple[str, ...],
    whole: tuple[int, ...],
    fixed: dict[int, Any] | None = None,
) -> Runner:
    """``run(values_list, ctx)``: ``node``'s batch function over many items (retries included)."""
    call = _function_call(node, node.batch_func, wiring)  # type: ignore[arg-type]
    run = batch_runner(node, call, tuple(key for _, key in wiring), store, whole, fixed or {})
    for layer in runner_layers(node):
        run = layer.wrap(run, node)
    return run


def _function_call(
    node: Node,
    func: Callable[..., Any],
    wiring: list[tuple[str, str]],
    whole: tuple[int, ...] = (),
) -> Callable[..., Any]:
    """``func`` (the node's function or its batch function) as a sync callable taking positional
    arguments in wiring order, with the node's concurrency limit and timeout around it, and the
    resources at positions ``whole`` resolved (for an ``async def`` function, on the loop that
    runs it)."""
    layers = call_layers(node)
    if node.is_async if func is node.func else is_async(func):
        coroutine_function = func
        for layer in layers:
            coroutine_function = layer.awrap(coroutine_function, node)
        if node.keyword_only:
            coroutine_function = _keyword_adapter(coroutine_function, node, wiring)
        if whole:  # resources resolved inside, on the loop that runs the call
            coroutine_function = aresolving(coroutine_function, whole)

        def func(*args: Any) -> Any:
            return run_sync(coroutine_function(*args))

        return func
    for layer in layers:
        func = layer.wrap(func, node)
    if node.keyword_only:
        func = _keyword_adapter(func, node, wiring)
    if whole:
        func = resolving(func, whole)
    return func


def _bare_runner(
    node: Node,
    wiring: list[tuple[str, str]],
    store: tuple[str, ...],
    whole: tuple[int, ...] = (),
    fixed: dict[int, Any] | None = None,
) -> Runner:
    if node.per_item:
        func = _function_call(node, node.func, wiring, whole)
    else:  # a batch-only node runs one item as a batch of one
        call = _function_call(node, node.func, wiring)
        func = one_item(call, len(wiring), whole, len(node.outputs), node.name)
        if whole:
            func = resolving(func, whole)
    if fixed:  # a batch-only node's wrapper lists its arguments: it must get them all
        func = _binding(func, len(wiring), fixed, own=node.per_item)
    keys = read_keys(wiring, fixed)
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
        store_outputs(func(*[values[k] for k in keys]), name, outputs, pairs, values)

    return run


def store_outputs(
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
    if n != len(outputs) or (type(result) not in _SEQUENCES and _unordered(result)):
        raise _outputs_error(result, n, name, outputs)
    for i, out in pairs:
        values[out] = result[i]


def _outputs_error(result: Any, n: int, name: str, outputs: tuple[str, ...]) -> OutputShapeError:
    kind = unfinished_kind(result)
    if kind:
        advice = unfinished_hint(kind)
    elif isinstance(result, Mapping):
        picked = ", ".join(f"d[{o!r}]" for o in outputs)
        advice = (
            f"a mapping is not read by name; return the values as a tuple in the order of "
            f"output_name {outputs}: return {picked}"
        )
    elif isinstance(result, AbstractSet):
        advice = f"a set has no order; return a tuple of {len(outputs)} values in order {outputs}"
    else:
        advice = f"return a tuple of {len(outputs)} values"
    return OutputShapeError(
        f"node {name!r} declares {len(outputs)} outputs {outputs} but returned "
        f"{type(result).__name__}{'' if n < 0 else f' of length {n}'}; {advice}"
    )


def async_node_runner(
    node: Node,
    wiring: list[tuple[str, str]],
    store: tuple[str, ...],
    whole: tuple[int, ...] = (),
    fixed: dict[int, Any] | None = None,
) -> AsyncRunner:
    """The coroutine twin of :func:`node_runner` for an ``async def`` node: awaits the function
    on the running loop instead of driving it to completion with :func:`run_sync`."""
    arun = _bare_async_runner(node, wiring, store, whole, fixed)
    for layer in runner_layers(node):
        arun = layer.awrap(arun, node)
    return arun


def _bare_async_runner(
    node: Node,
    wiring: list[tuple[str, str]],
    store: tuple[str, ...],
    whole: tuple[int, ...] = (),
    fixed: dict[int, Any] | None = None,
) -> AsyncRunner:
    func: Callable[..., Any] = node.func
    for layer in call_layers(node):
        func = layer.awrap(func, node)
    if node.keyword_only:
        func = _keyword_adapter(func, node, wiring)
    if whole:
        func = aresolving(func, whole)
    if fixed:
        func = _binding(func, len(wiring), fixed)
    keys = read_keys(wiring, fixed)
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
        store_outputs(result, name, outputs, pairs, values)

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


def one_item(
    call: Callable[..., Any], n_args: int, whole: tuple[int, ...], n_outputs: int, name: str
) -> Callable[..., Any]:
    """A batch function as a per-item function: each argument (but resources) in a one-element
    list, and the one element of each output taken back."""
    listed = tuple(i not in whole for i in range(n_args))

    def call_one(*args: Any) -> Any:
        result = call(*[[a] if wrap else a for a, wrap in zip(args, listed)])
        if n_outputs == 1:
            return next(iter(_column(result, 1, name, None)))  # by position, not label
        columns = _columns(result, n_outputs, 1, name)
        return tuple(next(iter(column)) for column in columns)

    return call_one


_FREE: Any = object()  # an argument read from the values, not bound


def batch_runner(
    node: Any,
    call: Callable[..., Any],
    keys: tuple[str, ...],
    store: tuple[str, ...],
    whole: tuple[int, ...],
    fixed: dict[int, Any],
) -> Callable[[list[dict[str, Any]], Any], None]:
    """``run(values_list, ctx)``: call the batch function once with one list per argument (a
    resource whole, a bound default repeated per item) and store each item's outputs in its
    values dict."""
    name = node.name
    outputs = node.outputs
    parts = tuple((key, i in whole, fixed.get(i, _FREE)) for i, key in enumerate(keys))
    pairs = tuple((i, out) for i, out in enumerate(outputs) if out in store)

    def args_of(group: list[dict[str, Any]]) -> list[Any]:
        args = []
        for key, is_whole, default in parts:
            if default is not _FREE:
                args.append([default] * len(group))
            elif is_whole:
                value = group[0][key]
                args.append(value.get() if isinstance(value, Resource) else value)
            else:
                args.append([values[key] for values in group])
        return args

    if len(outputs) == 1:
        (out,) = outputs

        def run(group: list[dict[str, Any]], ctx: Any) -> None:
            result = _column(call(*args_of(group)), len(group), name, None)
            for values, value in zip(group, result):
                values[out] = value

        return run

    def run_many(group: list[dict[str, Any]], ctx: Any) -> None:
        columns = _columns(call(*args_of(group)), len(outputs), len(group), name)
        for i, out in pairs:
            for values, value in zip(group, columns[i]):
                values[out] = value

    return run_many


def _column(result: Any, n: int, name: str, output: str | None) -> Any:
    """``result`` checked to be an ordered sequence of ``n`` values (a list, tuple, array,
    Series, ...), whose values are read in iteration order."""
    try:
        size = len(result)
    except TypeError:
        size = -1
    if size != n or (type(result) not in _SEQUENCES and _unordered(result)):
        what = f"output {output!r} of batch node {name!r}" if output else f"batch node {name!r}"
        kind = unfinished_kind(result)
        advice = unfinished_hint(kind) if kind else _column_advice(result)
        shown = f"{type(result).__name__}" + ("" if size < 0 else f" of length {size}")
        raise OutputShapeError(f"{what} got {n} item(s) but returned {shown}; {advice}")
    return result


#: what most functions return: ordered, no further check needed
_SEQUENCES = (tuple, list)


def _unordered(result: Any) -> bool:
    """Whether ``result`` has a length but no per-item order to read values by: a set or a
    mapping has no row order, a string is one value, a table iterates over its columns."""
    return isinstance(result, (str, bytes, AbstractSet, Mapping)) or _is_table(result)


def _is_table(result: Any) -> bool:
    return hasattr(result, "columns") and not hasattr(result, "dtype")  # not a Series/array


def _column_advice(result: Any) -> str:
    if isinstance(result, AbstractSet):
        return "a set has no order, so its values cannot be matched to the items; return a list"
    if _is_table(result):
        return (
            "a table cannot be split into items by position; return a list with one value per "
            "item (df.to_dict('records') for one dict per row, df['col'].tolist() for one column)"
        )
    return "return a list with one value per item"


def _columns(result: Any, n_outputs: int, n: int, name: str) -> Sequence[Any]:
    if not isinstance(result, (tuple, list)) or len(result) != n_outputs:
        kind = unfinished_kind(result)
        advice = (
            unfinished_hint(kind)
            if kind
            else f"return a tuple of {n_outputs} lists, each with one value per item"
        )
        raise OutputShapeError(
            f"batch node {name!r} declares {n_outputs} outputs but returned "
            f"{type(result).__name__}; {advice}"
        )
    return [_column(column, n, name, f"#{i}") for i, column in enumerate(result)]
