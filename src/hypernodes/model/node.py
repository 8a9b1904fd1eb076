"""Nodes: plain Python functions that a pipeline wires together by parameter name.

A :class:`Node` wraps one function.  Its parameters name the values it needs and ``output_name``
names what it returns.  The node stays callable as the original function.
"""

from __future__ import annotations

import inspect
import math
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, overload

from ..exceptions import InvalidNodeError
from ..execution.byvalue import shipped
from .output_checks import read_checks
from .rates import read_rate
from .signature import code_flags, read_signature

if TYPE_CHECKING:  # defaults (PEP 696) so that a bare ``Node`` means ``Node[..., Any]``
    from typing_extensions import ParamSpec, TypeVar

    P = ParamSpec("P", default=...)
    R = TypeVar("R", default=Any)
else:
    from typing import ParamSpec, TypeVar

    P = ParamSpec("P")
    R = TypeVar("R")

_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)

#: the resource hints a node may declare (``@node(resources=...)``), honoured by engines that can
RESOURCE_KEYS = ("num_gpus", "num_cpus", "max_concurrency", "batch_size", "rate_limit")


def is_async(func: Callable[..., Any]) -> bool:
    flags = code_flags(func)
    if flags is not None:
        return bool(flags & inspect.CO_COROUTINE)
    if inspect.iscoroutinefunction(func):
        return True
    call = getattr(func, "__call__", None)  # noqa: B004 - callable objects with an async __call__
    return call is not None and not inspect.isfunction(func) and inspect.iscoroutinefunction(call)


def _check_not_generator(func: Callable[..., Any], name: str) -> None:
    """Refuse generator and async generator functions: calling one returns a generator object
    (lazy, single-use, never run to the end by the pipeline), not a value to pass on."""
    flags = code_flags(func)
    if flags is not None and not flags & (inspect.CO_GENERATOR | inspect.CO_ASYNC_GENERATOR):
        return
    call = getattr(func, "__call__", None)  # noqa: B004 - callable objects with a generator __call__
    targets = [func] if inspect.isfunction(func) or call is None else [func, call]
    for target in targets:
        if inspect.isasyncgenfunction(target):
            raise InvalidNodeError(
                f"node {name!r} is an async generator function (async def with yield); a node "
                "returns one value, and an async generator would be passed on unconsumed. "
                "Collect the items and return them: return [item async for item in ...], with "
                "the body as an ordinary async def"
            )
        if inspect.isgeneratorfunction(target):
            raise InvalidNodeError(
                f"node {name!r} is a generator function (it uses yield); a node returns one value, "
                "and a generator would be passed on unconsumed (and could be read only once). "
                "Return a list instead: return list(...) or build the list with append"
            )


def _check_output_name(output_name: Any, where: str) -> tuple[str, ...]:
    names = (output_name,) if isinstance(output_name, str) else output_name
    if (
        not isinstance(names, tuple)
        or not names
        or not all(isinstance(n, str) and n for n in names)
    ):
        raise InvalidNodeError(
            f"{where}: output_name must be a non-empty string or a tuple of strings, got {output_name!r}"
        )
    if len(set(names)) != len(names):
        raise InvalidNodeError(f"{where}: output_name {output_name!r} repeats a name")
    return names


def _check_retries(retries: Any, where: str) -> int:
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise InvalidNodeError(f"{where}: retries must be a whole number >= 0, got {retries!r}")
    return retries


#: the keyword-only parameters of most functions, shared
_NONE: frozenset[str] = frozenset()


def _check_retry_on(retry_on: Any, where: str) -> tuple[type[BaseException], ...]:
    if type(retry_on) is tuple and len(retry_on) == 1 and retry_on[0] is Exception:
        return retry_on  # the default, at once
    kinds = retry_on if isinstance(retry_on, tuple) else (retry_on,)
    if not kinds or not all(isinstance(k, type) and issubclass(k, BaseException) for k in kinds):
        raise InvalidNodeError(
            f"{where}: retry_on must be an exception class or a tuple of them, got {retry_on!r}"
        )
    return kinds


def _check_number(value: Any, what: str, where: str, positive: bool = False) -> float:
    if type(value) is float and 0 < value < math.inf:  # the common case, at once
        return value
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        none = " (None for no limit)" if what == "timeout" else ""
        raise InvalidNodeError(
            f"{where}: {what} must be a finite number {bound}{none}, got {value!r}"
        )
    return float(value)


def _check_options(name: Any, cache: Any, cache_version: Any, fname: str) -> None:
    """Refuse a ``name``, ``cache`` or ``cache_version`` of a kind that would be silently
    misread (``cache="false"`` is true; ``name=5`` is no name)."""
    if name is not None and (not isinstance(name, str) or not name):
        raise InvalidNodeError(
            f"node of function {fname!r}: name must be a non-empty string, got {name!r}"
        )
    where = f"node {name or fname!r}"
    if not isinstance(cache, bool):
        raise InvalidNodeError(
            f"{where}: cache must be True or False, got {cache!r} ({type(cache).__name__}); "
            "write cache=False to keep the node out of the cache"
        )
    if cache_version is not None and not isinstance(cache_version, (str, int, float, bytes, tuple)):
        raise InvalidNodeError(
            f"{where}: cache_version must be a string or a number (change it to invalidate the "
            f"node's cached results), got {type(cache_version).__name__} {cache_version!r}"
        )


def _check_resources(resources: Any, where: str) -> dict[str, Any] | None:
    """The validated resource hints (a plain dict), or None when none are declared."""
    if resources is None:
        return None
    if not isinstance(resources, Mapping):
        raise InvalidNodeError(
            f"{where}: resources must be a dict such as {{'num_gpus': 1}}, got {resources!r}"
        )
    checked: dict[str, Any] = {}
    for key, value in resources.items():
        if key not in RESOURCE_KEYS:
            raise InvalidNodeError(
                f"{where}: unknown resource {key!r}; use {', '.join(RESOURCE_KEYS)}"
            )
        if key == "rate_limit":  # "10/s", "600/min": checked here, used by the rate layer
            read_rate(value, where)
            checked[key] = value
            continue
        whole = key in ("max_concurrency", "batch_size")
        kinds = int if whole else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or value < (1 if whole else 0):
            need = "a whole number >= 1" if whole else "a number >= 0"
            raise InvalidNodeError(f"{where}: resources[{key!r}] must be {need}, got {value!r}")
        checked[key] = value
    return checked or None


def _check_variant(variant: Any, default: Any, where: str) -> tuple[str | None, bool]:
    if variant is not None and not (isinstance(variant, str) and variant):
        raise InvalidNodeError(f"{where}: variant must be a non-empty string, got {variant!r}")
    if not isinstance(default, bool):
        raise InvalidNodeError(f"{where}: variant_default must be True or False, got {default!r}")
    if default and variant is None:
        raise InvalidNodeError(
            f"{where}: variant_default=True needs variant='name' (the variant it makes the default)"
        )
    return variant, default


def _read_parameters(
    signature: Any,
    fname: str,
    params: list[str],
    defaults: dict[str, Any],
    keyword_only: list[str],
) -> None:
    """Fill ``params``, ``defaults`` and ``keyword_only`` from ``signature``; refuse ``*args``."""
    for param in signature.parameters.values():
        if param.kind in _VARIADIC:
            raise InvalidNodeError(
                f"node {fname!r} takes *{param.name}/**{param.name}; a node's parameters must be "
                "named, because the pipeline wires values by parameter name"
            )
        params.append(param.name)
        if param.default is not inspect.Parameter.empty:
            defaults[param.name] = param.default
        if param.kind is inspect.Parameter.KEYWORD_ONLY:
            keyword_only.append(param.name)


class Node(Generic[P, R]):
    """One function as a pipeline step.

    ``Node[P, R]`` keeps the function's parameters ``P`` and return type ``R`` for type checkers:
    calling the node is calling the function, and is checked like it.

    Attributes that the pipeline reads:

    - ``inputs``: the names of the values the function takes, in parameter order;
    - ``outputs``: the names of the values it produces (one, or several for a tuple ``output_name``);
    - ``defaults``: input name -> default value, for parameters that have one (optional inputs);
    - ``is_async``: whether calling the function returns an awaitable.
    """

    def __init__(
        self,
        func: Callable[P, R],
        output_name: str | tuple[str, ...] | None = None,
        *,
        cache: bool = True,
        cache_version: str | int | None = None,
        name: str | None = None,
        retries: int = 0,
        retry_on: type[BaseException] | tuple[type[BaseException], ...] = (Exception,),
        retry_delay: float = 0.0,
        backoff: float = 1.0,
        timeout: float | None = None,
        resources: Mapping[str, Any] | None = None,
        batch: bool | Callable[..., Any] = False,
        check: Any = None,
        variant: str | None = None,
        variant_default: bool = False,
    ) -> None:
        if isinstance(func, Node):
            func = func.func
        if not callable(func):
            raise InvalidNodeError(f"@node needs a function, got {func!r}")
        try:
            signature = read_signature(func)
        except (TypeError, ValueError) as exc:
            raise InvalidNodeError(f"cannot read the parameters of {func!r}: {exc}") from exc
        fname: str = getattr(func, "__name__", type(func).__name__)
        _check_options(name, cache, cache_version, fname)
        _check_not_generator(func, name or fname)
        params: list[str] = []
        defaults: dict[str, Any] = {}
        keyword_only: list[str] = []
        _read_parameters(signature, fname, params, defaults, keyword_only)

        self.func: Callable[P, R] = func
        self.name: str = name or fname
        where = f"node {self.name!r}"
        if output_name is None:
            output_name = fname
        self.outputs: tuple[str, ...] = _check_output_name(output_name, where)
        self.output_name: str | tuple[str, ...] = output_name
        #: the names the pipeline wires, in parameter order (changed by :meth:`with_inputs`)
        self.inputs: tuple[str, ...] = tuple(params)
        #: the function's own parameter names, in the same order as ``inputs``
        self.parameters: tuple[str, ...] = self.inputs  # one tuple: fewer objects for the GC
        self.defaults: dict[str, Any] = defaults
        self.keyword_only: frozenset[str] = frozenset(keyword_only) if keyword_only else _NONE
        self.is_async: bool = is_async(func)
        self.cache = cache
        self.cache_version = cache_version
        #: how many more attempts after a failure in ``retry_on`` (0: none)
        self.retries: int = _check_retries(retries, where)
        self.retry_on: tuple[type[BaseException], ...] = _check_retry_on(retry_on, where)
        self.retry_delay: float = _check_number(retry_delay, "retry_delay", where)
        self.backoff: float = _check_number(backoff, "backoff", where)
        #: seconds one call may take (None: no limit); see hypernodes.execution.layers.timeout
        self.timeout: float | None = (
            None if timeout is None else _check_number(timeout, "timeout", where, positive=True)
        )

        #: hints for engines that schedule resources (DaftEngine): ``num_gpus``, ``num_cpus``, ...
        self.resources = _check_resources(resources, where)
        #: the batch implementation (lists of inputs -> list of outputs), or None
        self.batch_func: Callable[..., Any] | None = None
        #: whether ``func`` takes one item's values (False for a batch-only node)
        self.per_item: bool = True
        if batch is not False:
            self._set_batch(batch, func, where)
        #: what ``check=`` was given, and the checks read from it (None: no check, no cost)
        self.check = check
        self.output_checks = read_checks(check, self.outputs, where)
        #: which variant of its outputs this node is (None: not a variant), and whether it is the
        #: one a pipeline runs unless told otherwise (see hypernodes.model.variants)
        self.variant, self.variant_default = _check_variant(variant, variant_default, where)
        self.__name__ = fname
        self.__qualname__ = getattr(func, "__qualname__", fname)
        self.__module__ = getattr(func, "__module__", None)  # type: ignore[assignment]
        self.__doc__ = getattr(func, "__doc__", None)
        self.__wrapped__ = func

    def _set_batch(
        self, batch: bool | Callable[..., Any], func: Callable[..., Any], where: str
    ) -> None:
        """Set ``batch_func`` and ``per_item`` from ``batch=`` (anything but ``False``)."""
        if batch is True:
            self.batch_func, self.per_item = func, False
        elif callable(batch):
            self.batch_func = _check_batch_func(batch, self)
        else:
            raise InvalidNodeError(
                f"{where}: batch must be True, False or the batch function, got {batch!r}"
            )

    # The node is still the plain function.
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.func(*args, **kwargs)

    def _clone(self) -> Node[P, R]:
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        return clone

    def batch(self, func: Callable[..., Any]) -> Node[P, R]:
        """A copy of this node with ``func`` as its batch implementation (a *dual* node).

        ``func`` takes the same parameters, each as a list with one value per item (resources
        whole), and returns a list of outputs of the same length (a tuple of lists for several
        outputs).  Engines call it for batches of a map, and this node's own function for one
        item.  Use as a decorator: ``@embed.batch`` below ``@node def embed(...)``.
        """
        clone = self._clone()
        clone.batch_func = _check_batch_func(func, self)
        clone.per_item = True
        return clone

    @property
    def is_batch(self) -> bool:
        """Whether the node has a batch implementation (``batch=True`` or a dual node)."""
        return self.batch_func is not None

    @property
    def max_concurrency(self) -> int | None:
        """``resources["max_concurrency"]``: calls of this node at once in a process (or None)."""
        return self.resources.get("max_concurrency") if self.resources else None

    def with_inputs(self, **renames: str) -> Node[P, R]:
        """Return a copy that reads parameter ``old`` from the value named ``new`` (``old=new``)."""
        unknown = [k for k in renames if k not in self.inputs]
        if unknown:
            raise InvalidNodeError(
                f"node {self.name!r} has no input(s) {unknown}; its inputs are {list(self.inputs)}"
            )
        clone = self._clone()
        clone.inputs = tuple(renames.get(i, i) for i in self.inputs)
        clone.defaults = {renames.get(k, k): v for k, v in self.defaults.items()}
        clone.keyword_only = frozenset(renames.get(k, k) for k in self.keyword_only)
        if len(set(clone.inputs)) != len(clone.inputs):
            raise InvalidNodeError(
                f"node {self.name!r}: renaming {renames} gives two inputs one name"
            )
        return clone

    def with_output(self, output_name: str | tuple[str, ...]) -> Node[P, R]:
        """Return a copy whose result is stored under ``output_name``."""
        names = _check_output_name(output_name, f"node {self.name!r}")
        if len(names) != len(self.outputs):
            raise InvalidNodeError(
                f"node {self.name!r} returns {len(self.outputs)} output(s); "
                f"{output_name!r} names {len(names)}"
            )
        clone = self._clone()
        clone.output_name = output_name
        clone.outputs = names
        return clone

    def __repr__(self) -> str:
        outs = self.outputs[0] if len(self.outputs) == 1 else "(" + ", ".join(self.outputs) + ")"
        options = []
        if self.retries:
            options.append(f"retries={self.retries}")
        if self.timeout is not None:
            options.append(f"timeout={self.timeout:g}")
        if self.resources:
            options.append(f"resources={self.resources}")
        if self.batch_func is not None:
            options.append("batch" if not self.per_item else "dual")
        if getattr(self, "output_checks", None):
            options.append("check")
        if getattr(self, "variant", None) is not None:
            options.append(f"variant={self.variant!r}" + ("*" if self.variant_default else ""))
        shown = f" [{', '.join(options)}]" if options else ""
        return f"{self.name}({', '.join(self.inputs)}) -> {outs}{shown}"

    def __reduce__(self) -> tuple[Any, ...]:
        # ``@node`` replaces a module-level function by its Node, so pickling the function by
        # reference (module.qualname) would find the Node and fail.  Pickle such a node by
        # reference instead, and a renamed copy as its settings plus a reference to that node's
        # function; anything else (``__main__``, local functions) goes by value, which
        # cloudpickle can do.
        found = importable(self.__module__, self.__qualname__)
        if found is self:
            return (node_at, (self.__module__, self.__qualname__))
        state = dict(self.__dict__)
        ref = None
        if isinstance(found, Node) and found.func is self.func:
            ref = (self.__module__, self.__qualname__)
            del state["func"], state["__wrapped__"]
        return (_restore_node, (type(self), state, ref))


def _check_batch_func(func: Any, item_node: Node) -> Callable[..., Any]:
    """A dual node's batch function: callable, with the per-item function's parameters."""
    where = f"node {item_node.name!r}"
    if isinstance(func, Node):
        func = func.func
    if not callable(func):
        raise InvalidNodeError(
            f"{where}: the batch implementation must be a function, got {func!r}"
        )
    _check_not_generator(func, item_node.name)
    try:
        names = tuple(inspect.signature(func).parameters)
    except (TypeError, ValueError) as exc:
        raise InvalidNodeError(f"{where}: cannot read the parameters of {func!r}: {exc}") from exc
    if names != item_node.parameters:
        raise InvalidNodeError(
            f"{where}: its batch function takes {list(names)}, but the node takes "
            f"{list(item_node.parameters)}; give it the same parameters, in the same order "
            "(each receives a list with one value per item)"
        )
    checked: Callable[..., Any] = func
    return checked


def importable(module: str | None, qualname: str) -> Any:
    """The object found at ``module.qualname`` in an imported module other than ``__main__``
    (and other than a module being shipped by value, see :mod:`hypernodes.execution.byvalue`)."""
    mod = sys.modules.get(module) if module and module != "__main__" else None
    if mod is None or "<locals>" in qualname or shipped(module):
        return None
    found: Any = mod
    for part in qualname.split("."):
        found = getattr(found, part, None)
        if found is None:
            return None
    return found


def node_at(module: str, qualname: str) -> Node:
    """Unpickle a node by importing it from where it was defined."""
    import importlib

    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    restored: Node = found
    return restored


def _restore_node(cls: type[Node], state: dict[str, Any], ref: tuple[str, str] | None) -> Node:
    """Unpickle a node from its settings (and a reference to its function, if it has one)."""
    restored = object.__new__(cls)
    restored.__dict__.update(state)
    if ref is not None:
        func = node_at(*ref).func
        restored.func = restored.__wrapped__ = func
    return restored


@overload
def node(func: Callable[P, R], /) -> Node[P, R]: ...
@overload
def node(
    output_name: str | tuple[str, ...] | None = None,
    /,
    *,
    cache: bool = ...,
    cache_version: str | int | None = ...,
    name: str | None = ...,
    retries: int = ...,
    retry_on: type[BaseException] | tuple[type[BaseException], ...] = ...,
    retry_delay: float = ...,
    backoff: float = ...,
    timeout: float | None = ...,
    resources: Mapping[str, Any] | None = ...,
    batch: bool | Callable[..., Any] = ...,
    check: Any = ...,
    variant: str | None = ...,
    variant_default: bool = ...,
) -> Callable[[Callable[P, R]], Node[P, R]]: ...
@overload
def node(
    *,
    output_name: str | tuple[str, ...] | None = None,
    cache: bool = ...,
    cache_version: str | int | None = ...,
    name: str | None = ...,
    retries: int = ...,
    retry_on: type[BaseException] | tuple[type[BaseException], ...] = ...,
    retry_delay: float = ...,
    backoff: float = ...,
    timeout: float | None = ...,
    resources: Mapping[str, Any] | None = ...,
    batch: bool | Callable[..., Any] = ...,
    check: Any = ...,
    variant: str | None = ...,
    variant_default: bool = ...,
) -> Callable[[Callable[P, R]], Node[P, R]]: ...


def node(
    func: Any = None,
    /,
    *,
    output_name: str | tuple[str, ...] | None = None,
    cache: bool = True,
    cache_version: str | int | None = None,
    name: str | None = None,
    retries: int = 0,
    retry_on: type[BaseException] | tuple[type[BaseException], ...] = (Exception,),
    retry_delay: float = 0.0,
    backoff: float = 1.0,
    timeout: float | None = None,
    resources: Mapping[str, Any] | None = None,
    batch: bool | Callable[..., Any] = False,
    check: Any = None,
    variant: str | None = None,
    variant_default: bool = False,
) -> Any:
    """Turn a function into a :class:`Node`: ``@node``, ``@node(output_name="y")`` or ``@node("y")``.

    ``output_name`` may be a tuple; the function then returns a tuple of that length and each element
    becomes its own output.  ``cache=False`` keeps the node out of the cache; ``cache_version`` is a
    salt: change it to force a recompute.  ``retries`` more attempts are made when the function
    raises one of ``retry_on``, waiting ``retry_delay`` seconds, multiplied by ``backoff`` after
    each retry.  ``timeout`` (seconds) fails a call that runs longer with
    :class:`~hypernodes.exceptions.NodeTimeoutError` (see ``docs/reliability.md``).
    ``resources`` holds hints for engines that place work (``num_gpus``, ``num_cpus``,
    ``max_concurrency``, ``batch_size``): DaftEngine runs such a node as a stage of its own with
    those options, DaskEngine sends tasks to workers that declare the resources, and every engine
    runs at most ``max_concurrency`` calls of the node at once per process, and starts at most
    ``rate_limit`` calls (``"10/s"``, ``"600/min"``) per process.
    ``batch=True`` makes the function a batch function: it takes a list per input (one value per
    item; a resource whole) and returns a list of outputs of the same length (a tuple of lists
    for several outputs); maps call it on batches of ``resources["batch_size"]`` items, ``run``
    on one-element lists.  ``batch=fn`` keeps the function for one item and adds ``fn`` as its
    batch implementation (a dual node; see ``docs/ml.md``).
    ``check`` validates what the node returns (a function, a pydantic model, a pandera schema,
    or a dict of those by output name): a value that fails raises
    :class:`~hypernodes.exceptions.OutputCheckError` and is never cached (``docs/reliability.md``).
    ``variant="ridge"`` makes the node one of several that produce the same outputs; a pipeline
    runs the one marked ``variant_default=True`` or the one ``with_variants`` picks
    (``docs/variants.md``).
    """
    if isinstance(func, (str, tuple)):
        if output_name is not None:
            raise InvalidNodeError("give output_name once, positionally or by keyword")
        output_name, func = func, None
    options: Mapping[str, Any] = {
        "cache": cache,
        "cache_version": cache_version,
        "name": name,
        "retries": retries,
        "retry_on": retry_on,
        "retry_delay": retry_delay,
        "backoff": backoff,
        "timeout": timeout,
        "resources": resources,
        "batch": batch,
        "check": check,
        "variant": variant,
        "variant_default": variant_default,
    }
    if func is None:
        return lambda f: Node(f, output_name, **options)
    return Node(func, output_name, **options)
