"""Resources: heavy objects (a model, a tokenizer, a client) built once per process from a recipe.

A :class:`Resource` is a *recipe* - a factory and its arguments - passed as an input or bound
value (``pipeline.bind(model=Resource(load_model, "small"))``).  Values flow through a pipeline as
the recipe: it is what travels to worker processes (a few bytes, never the object), what the cache
hashes (the factory's code and arguments, or the factory's ``cache_key``), and what nested
pipelines receive.  Only the nodes that read it get the built object: the plan compiles, for the
nodes whose parameters read a resource, a call wrapper that swaps the recipe for the object from
this process's registry, which builds it on first use (thread-safe, once per process however many
threads, items or engines use it).  Nodes that read no resource pay nothing.

Teardown: a ``teardown=`` callable, or a factory that is a generator function (the code after
``yield`` runs) or a ``contextlib.contextmanager`` function (entered when built, exited at
teardown).
:func:`close_resources` tears every built resource down; ``HypernodesEngine``, ``DaskEngine`` and
``DaftEngine`` call it when they shut down, and a process tears down what it built when it exits.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import inspect
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar, overload

from ..cache.keys import Unhashable, value_token
from ..exceptions import InvalidSettingError, ResourceError
from ..execution.aio import run_sync
from .loop_resources import aget, close_loop_resources, is_async_factory
from .node import importable, node_at

T = TypeVar("T")

__all__ = ["Resource", "ResourceFactory", "close_resources", "built_resources", "resource"]


class ResourceFactory(Generic[T]):
    """A function that builds a resource, with its options; calling it gives a :class:`Resource`.

    Made by :func:`resource`.  ``teardown(obj)`` is called when the resource is torn down;
    ``cache_key`` (any value the cache can hash) replaces the factory's code in cache keys, so
    that editing the factory does not invalidate the cache (bump it when results change).
    """

    def __init__(
        self,
        func: Callable[..., T],
        teardown: Callable[[T], Any] | None = None,
        cache_key: Any = None,
    ) -> None:
        if not callable(func):
            raise InvalidSettingError(
                f"@resource needs a function that makes the resource, got {func!r}; decorate the "
                "function itself (@resource or @resource(teardown=...) above def ...)"
            )
        if teardown is not None and not callable(teardown):
            raise InvalidSettingError(
                f"teardown must be a function taking the resource, got {teardown!r}"
            )
        self.func = func
        self.teardown = teardown
        self.cache_key = cache_key
        functools.update_wrapper(self, func)  # type: ignore[arg-type]

    def __call__(self, *args: Any, **kwargs: Any) -> Resource[T]:
        """The recipe for the resource built by ``func(*args, **kwargs)`` (nothing is built yet)."""
        return Resource(self, *args, **kwargs)

    def __reduce__(self) -> Any:
        # A module-level factory travels by reference (its module is imported in the worker),
        # like a node; any other (``__main__``, local) by value.
        module, qualname = getattr(self, "__module__", None), getattr(self, "__qualname__", "")
        if importable(module, qualname) is self:
            return (node_at, (module, qualname))
        return (ResourceFactory, (self.func, self.teardown, self.cache_key))

    def __repr__(self) -> str:
        return f"<resource {getattr(self.func, '__qualname__', self.func)!r}>"


@overload
def resource(func: Callable[..., T], /) -> ResourceFactory[T]: ...
@overload
def resource(
    *, teardown: Callable[[Any], Any] | None = None, cache_key: Any = None
) -> Callable[[Callable[..., T]], ResourceFactory[T]]: ...


def resource(
    func: Any = None, /, *, teardown: Callable[[Any], Any] | None = None, cache_key: Any = None
) -> Any:
    """Declare a resource factory: ``@resource`` or ``@resource(teardown=close, cache_key=...)``.

    Calling the decorated function does not build anything; it returns the :class:`Resource`
    recipe to pass as an input or bind: ``pipeline.bind(model=load_model("small"))``.  A generator
    function is a factory with teardown: it yields the object, and the code after ``yield`` runs
    at teardown (as with ``contextlib.contextmanager``).
    """
    if func is None:
        return lambda f: ResourceFactory(f, teardown, cache_key)
    return ResourceFactory(func, teardown, cache_key)


class Resource(Generic[T]):
    """The recipe of an object built lazily, once per process: ``Resource(factory, *args, **kw)``.

    Pass it as an input or bound value; a node whose parameter reads it receives
    ``factory(*args, **kwargs)`` (built on first use in each process, then shared).  It travels to
    other processes as its recipe and is hashed for the cache by its factory's code and
    arguments, never by the built object's state.
    """

    __slots__ = ("factory", "args", "kwargs", "_key")

    def __init__(self, factory: Callable[..., T], /, *args: Any, **kwargs: Any) -> None:
        if not callable(factory):
            raise InvalidSettingError(
                f"Resource needs a factory function, got {factory!r}; write Resource(make, *args) "
                "with make a function that builds the value (Resource(lambda: value) for a value "
                "made already)"
            )
        self.factory = factory
        self.args = args
        self.kwargs = kwargs
        self._key: Any = None

    # -- identity --------------------------------------------------------------------------

    @property
    def key(self) -> Any:
        """This recipe's identity in a process's registry: its cache token (factory code and
        arguments), or a random id for a recipe the cache cannot hash.  Computed once, in the
        process that made the recipe, and carried with it."""
        key = self._key
        if key is None:
            with _KEY_LOCK:  # threads asking at once must agree (a random id differs per call)
                key = self._key
                if key is None:
                    try:
                        key = value_token(self)
                    except Unhashable:
                        key = uuid.uuid4().hex
                    self._key = key
        return key

    def __cache_key__(self) -> Any:
        factory = self.factory
        if isinstance(factory, ResourceFactory):
            ident = factory.cache_key if factory.cache_key is not None else factory.func
        else:
            ident = factory
        return ("hypernodes.Resource", ident, self.args, self.kwargs)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Resource):
            return NotImplemented
        return self is other or self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __reduce__(self) -> tuple[Any, ...]:
        # Only the recipe travels, with the key it has here (so that every copy of it in a
        # worker finds the same built object); never the built object.
        return (_restore, (self.factory, self.args, self.kwargs, self.key))

    # -- the object --------------------------------------------------------------------------

    def get(self) -> T:
        """The built object in this process (built now if this is its first use here)."""
        entry = _BUILT.get(self.key)
        if entry is not None:
            return entry.value
        return _build(self)

    async def aget(self) -> T:
        """The object for an ``async def`` node: for an async factory, the copy built on the
        running event loop (see :mod:`hypernodes.model.loop_resources`), else :meth:`get`."""
        factory = self.factory
        func, teardown = factory, None
        if isinstance(factory, ResourceFactory):
            func, teardown = factory.func, factory.teardown
        if not is_async_factory(func):
            return self.get()
        return await aget(self, func, teardown)

    def __repr__(self) -> str:
        factory = self.factory
        func = factory.func if isinstance(factory, ResourceFactory) else factory
        name = getattr(func, "__qualname__", None) or repr(func)
        parts = [name, *(repr(a) for a in self.args)]
        parts += [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"Resource({', '.join(parts)})"


def _restore(factory: Any, args: tuple[Any, ...], kwargs: dict[str, Any], key: Any) -> Resource:
    made = Resource(factory, *args, **kwargs)
    made._key = key
    return made


# ---------------------------------------------------------------------------------------------
# The registry of this process


class _Entry:
    __slots__ = ("value", "close", "name")

    def __init__(self, value: Any, close: Callable[[], Any] | None, name: str) -> None:
        self.value = value
        self.close = close
        self.name = name


#: recipe key -> built entry, in build order
_BUILT: dict[Any, _Entry] = {}
#: recipe key -> the lock held while that recipe is being built
_BUILDING: dict[Any, threading.Lock] = {}
_LOCK = threading.Lock()
#: guards the first computation of a recipe's key
_KEY_LOCK = threading.Lock()
_EXIT_HOOK = [False]


def _build(recipe: Resource) -> Any:
    key = recipe.key
    with _LOCK:
        entry = _BUILT.get(key)
        if entry is not None:
            return entry.value
        lock = _BUILDING.setdefault(key, threading.Lock())
    with lock:  # one build per recipe; other recipes build meanwhile
        entry = _BUILT.get(key)
        if entry is not None:
            return entry.value
        value, close = _make(recipe)
        with _LOCK:
            _BUILT[key] = _Entry(value, close, repr(recipe))
            _BUILDING.pop(key, None)
            if not _EXIT_HOOK[0]:
                _EXIT_HOOK[0] = True
                atexit.register(close_resources)
        return value


def _make(recipe: Resource) -> tuple[Any, Callable[[], Any] | None]:
    """Build ``recipe``'s object; with the callable that tears it down (or None)."""
    factory = recipe.factory
    teardown = None
    func: Callable[..., Any] = factory
    if isinstance(factory, ResourceFactory):
        func, teardown = factory.func, factory.teardown
    if inspect.isasyncgenfunction(func):  # used by a sync node: on this thread's loop
        agen = func(*recipe.args, **recipe.kwargs)
        value = run_sync(_first(agen))
        return value, functools.partial(_finish_async_generator, agen)
    if inspect.isgeneratorfunction(func):
        generator = func(*recipe.args, **recipe.kwargs)
        try:
            value = next(generator)
        except StopIteration:
            raise ResourceError(
                f"resource factory {getattr(func, '__qualname__', func)!r} is a generator "
                "function that returned without yielding its value; yield the resource once "
                "(yield client), and put the teardown code after the yield"
            ) from None
        return value, functools.partial(_finish_generator, generator)
    value = func(*recipe.args, **recipe.kwargs)
    if inspect.isawaitable(value):
        value = run_sync(_awaited(value))
    if teardown is not None:
        return value, functools.partial(teardown, value)
    if isinstance(value, contextlib._GeneratorContextManager):  # a @contextmanager factory
        entered = value.__enter__()
        return entered, functools.partial(value.__exit__, None, None, None)
    return value, None


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


async def _first(agen: Any) -> Any:
    return await agen.__anext__()


def _finish_async_generator(agen: Any) -> None:
    async def finish() -> None:
        with contextlib.suppress(StopAsyncIteration):
            await agen.__anext__()

    run_sync(finish())


def _finish_generator(generator: Any) -> None:
    try:
        next(generator)
    except StopIteration:
        return
    generator.close()
    raise RuntimeError("a resource factory that is a generator must yield exactly once")


#: calls (runs, maps) running now with resources among their inputs, and whether an engine's
#: shutdown asked for a teardown while they ran
_USERS = [0]
_CLOSE_PENDING = [False]


@contextlib.contextmanager
def resources_in_use() -> Iterator[None]:
    """Held by a run or map whose inputs include resources: an engine shut down meanwhile
    (another engine, or this one from another thread) tears them down when the last such call
    ends, not under its feet."""
    with _LOCK:
        _USERS[0] += 1
    try:
        yield
    finally:
        with _LOCK:
            _USERS[0] -= 1
            close = _USERS[0] == 0 and _CLOSE_PENDING[0]
            if close:
                _CLOSE_PENDING[0] = False
        if close:
            close_resources()


def release_resources() -> list[Exception]:
    """What an engine's ``shutdown()`` calls: :func:`close_resources` now, or, while runs or
    maps that use resources are still running, when the last of them ends."""
    with _LOCK:
        if _USERS[0]:
            _CLOSE_PENDING[0] = True
            return []
    return close_resources()


def close_resources() -> list[Exception]:
    """Tear down every resource built in this process (newest first) and forget them; a later
    use builds them again.  Returns the errors teardowns raised (each is also warned about).
    Resources of async factories are torn down on the event loops they were built on."""
    errors: list[Exception] = close_loop_resources()
    with _LOCK:
        entries = list(_BUILT.values())
        _BUILT.clear()
    for entry in reversed(entries):
        if entry.close is None:
            continue
        try:
            entry.close()
        except Exception as exc:
            import warnings

            warnings.warn(
                f"tearing down {entry.name} raised {type(exc).__name__}: {exc}",
                RuntimeWarning,
                stacklevel=2,
            )
            errors.append(exc)
    return errors


def built_resources() -> list[str]:
    """The recipes built in this process and not torn down yet (their reprs, oldest first)."""
    with _LOCK:
        return [entry.name for entry in _BUILT.values()]


# ---------------------------------------------------------------------------------------------
# What plans use


def resource_names(values: dict[str, Any]) -> frozenset[str]:
    """The names in ``values`` that hold a :class:`Resource` (the plan resolves them in nodes)."""
    for value in values.values():  # the common case: none, found without building anything
        if isinstance(value, Resource):
            break
    else:
        return _NONE
    return frozenset(name for name, value in values.items() if isinstance(value, Resource))


_NONE: frozenset[str] = frozenset()


def aresolving(func: Callable[..., Any], positions: tuple[int, ...]) -> Callable[..., Any]:
    """The coroutine function ``func`` called with the resources at argument ``positions``
    replaced by their objects on the running loop (:meth:`Resource.aget`)."""

    async def acall_with_resources(*args: Any) -> Any:
        args_list = list(args)
        for i in positions:
            value = args_list[i]
            if isinstance(value, Resource):
                args_list[i] = await value.aget()
        return await func(*args_list)

    return acall_with_resources


def resolving(func: Callable[..., Any], positions: tuple[int, ...]) -> Callable[..., Any]:
    """``func`` called with the resources at argument ``positions`` replaced by their objects."""

    def call_with_resources(*args: Any) -> Any:
        args_list = list(args)
        for i in positions:
            value = args_list[i]
            if isinstance(value, Resource):
                args_list[i] = value.get()
        return func(*args_list)

    return call_with_resources
