"""Resources whose factory is ``async``: built, used and torn down on the event loop that runs
the node.

An ``async def`` factory usually makes a loop-bound object: an ``aiohttp.ClientSession``, an
``httpx.AsyncClient``, an asyncpg pool.  Such an object works only on the loop it was made on, so
one copy per process (as for sync factories) breaks as soon as a node runs on another loop.  An
``async def`` node therefore gets the copy of the loop it is awaited on, built there on first use
(once per loop, however many items ask at once): the caller's loop under ``arun``/``amap`` and
the async executor, each worker thread's own loop under the threaded executor.

Teardown runs on that loop too: when the loop shuts down (``asyncio.run`` and thread loops
cancel the tasks left on them, among them a guard task this module leaves on the loop), or when
:func:`close_loop_resources` is called (engine shutdown) while the loop is still open.

A factory counts as async when it is an ``async def`` function, an async generator function
(the code after ``yield`` is its teardown), or a ``contextlib.asynccontextmanager`` function;
``teardown=`` may then be a plain or an ``async def`` function.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
import warnings
import weakref
from collections.abc import Callable
from typing import Any

_LOCK = threading.Lock()


def is_async_factory(func: Any) -> bool:
    """Whether a resource factory makes its object with ``await`` (see the module docstring)."""
    wrapped = getattr(func, "__wrapped__", None)
    return (
        inspect.iscoroutinefunction(func)
        or inspect.isasyncgenfunction(func)
        or (wrapped is not None and inspect.isasyncgenfunction(wrapped))
    )


class _Place:
    """The resources built on one event loop, and the locks of those being built."""

    __slots__ = ("built", "locks", "guard", "__weakref__")

    def __init__(self) -> None:
        self.built: dict[Any, tuple[Any, Callable[[], Any] | None, str]] = {}
        self.locks: dict[Any, asyncio.Lock] = {}
        self.guard: Any = None

    async def aclose(self) -> list[Exception]:
        """Tear down what was built here, newest first (on this place's loop)."""
        with _LOCK:
            entries = list(self.built.values())
            self.built.clear()
        errors: list[Exception] = []
        for _, close, name in reversed(entries):
            if close is None:
                continue
            try:
                done = close()
                if inspect.isawaitable(done):
                    await done
            except Exception as exc:
                warnings.warn(
                    f"tearing down {name} raised {type(exc).__name__}: {exc}",
                    RuntimeWarning,
                    stacklevel=2,
                )
                errors.append(exc)
        return errors


#: event loop -> what was built on it (forgotten with the loop)
_PLACES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Place] = weakref.WeakKeyDictionary()


async def aget(recipe: Any, func: Callable[..., Any], teardown: Any) -> Any:
    """The object of ``recipe`` on the running loop, built there (once) if it is not yet."""
    loop = asyncio.get_running_loop()
    key = recipe.key
    with _LOCK:
        place = _PLACES.get(loop)
        if place is None:
            place = _PLACES[loop] = _Place()
        found = place.built.get(key)
        if found is not None:
            return found[0]
        lock = place.locks.setdefault(key, asyncio.Lock())
    async with lock:
        found = place.built.get(key)
        if found is not None:
            return found[0]
        value, close = await _amake(func, recipe.args, recipe.kwargs, teardown)
        with _LOCK:
            place.built[key] = (value, close, repr(recipe))
            place.locks.pop(key, None)
        if place.guard is None:
            place.guard = await _start_guard(place)
    return value


async def _amake(
    func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], teardown: Any
) -> tuple[Any, Callable[[], Any] | None]:
    """Build one object on the running loop; with what tears it down (or None)."""
    made = func(*args, **kwargs)
    if inspect.isasyncgen(made):  # code after its yield is the teardown
        value = await made.__anext__()
        return value, lambda: _finish(made)
    if inspect.isawaitable(made):
        made = await made
    if teardown is not None:
        return made, lambda: teardown(made)
    if isinstance(made, contextlib.AbstractAsyncContextManager):  # @asynccontextmanager
        entered = await made.__aenter__()
        return entered, lambda: made.__aexit__(None, None, None)
    return made, None


async def _finish(generator: Any) -> None:
    try:
        await generator.__anext__()
    except StopAsyncIteration:
        return
    await generator.aclose()
    raise RuntimeError("a resource factory that is an async generator must yield exactly once")


async def _guard(place: _Place) -> None:
    """A task that waits on the loop until it is cancelled - ``asyncio.run`` and a thread's
    loop cancel the tasks left on a loop as it closes, before its async generators are shut
    down - and then tears down what was built on the loop, there."""
    try:
        await asyncio.get_running_loop().create_future()  # never set
    finally:
        await place.aclose()


async def _start_guard(place: _Place) -> Any:
    return asyncio.get_running_loop().create_task(_guard(place), name="hypernodes-resources")


def close_loop_resources() -> list[Exception]:
    """Tear down the resources built on every event loop, each on its loop: at once where the
    loop is idle or runs in another thread (waited for), as a task where it is this thread's
    running loop.  A closed loop tore its own down when it closed."""
    with _LOCK:
        places = list(_PLACES.items())
    errors: list[Exception] = []
    for loop, place in places:
        if not place.built or loop.is_closed():
            continue
        errors.extend(_close_on(loop, place))
    return errors


def _close_on(loop: asyncio.AbstractEventLoop, place: _Place) -> list[Exception]:
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    try:
        if loop is running:
            loop.create_task(place.aclose())
            return []
        if loop.is_running():
            return asyncio.run_coroutine_threadsafe(place.aclose(), loop).result(timeout=30)
        return loop.run_until_complete(place.aclose())
    except Exception as exc:  # a loop that cannot run it now: say so, do not fail shutdown
        warnings.warn(
            f"could not tear down the resources built on {loop!r}: {type(exc).__name__}: {exc}",
            RuntimeWarning,
            stacklevel=3,
        )
        return [exc]
