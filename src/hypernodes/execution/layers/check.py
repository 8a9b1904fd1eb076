"""The check layer: the values a node returns are checked (``@node(check=...)``) before anything
reads or stores them; a failed check raises
:class:`~hypernodes.exceptions.OutputCheckError`, so nothing invalid reaches the cache or the
nodes after it.

Innermost of the call layers: it checks what the function itself returned, inside the node's
timeout and concurrency slot, and a failed check is retried like any error in ``retry_on``.
A batch function's list is checked element by element.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...exceptions import OutputCheckError
from .base import Entry


def _short(value: Any, limit: int = 80) -> str:
    try:
        text = repr(value)
    except Exception:  # a value whose repr raises: its type says enough
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _failed(node: Any, index: int | None, label: str, value: Any, why: str) -> OutputCheckError:
    output = node.outputs[0 if index is None else index]
    return OutputCheckError(
        f"node {node.name!r} returned an invalid {output!r} = {_short(value)} (fix the node or "
        f"its check=; nothing was cached): {label} {why}",
        node=node.name,
        output=output,
    )


def verify(node: Any, result: Any) -> None:
    """Raise :class:`OutputCheckError` unless each checked output in ``result`` passes."""
    for index, check, label in node.output_checks:
        if index is None:
            value = result
        else:
            try:
                value = result[index]
            except Exception:  # the wrong shape: the step reports it with its own error
                return
        try:
            ok = check(value)
        except Exception as exc:
            raise _failed(node, index, label, value, f"raised {type(exc).__name__}: {exc}") from exc
        if not ok:
            raise _failed(node, index, label, value, f"returned {_short(ok)}")


def _verify_batch(node: Any, results: Any) -> None:
    if isinstance(results, list):
        for result in results:
            verify(node, result)
    elif isinstance(results, tuple):  # several outputs: a tuple of lists
        for result in zip(*results):
            verify(node, result)


def _checker(node: Any, func: Callable[..., Any]) -> Callable[[Any, Any], None]:
    return _verify_batch if func is node.batch_func else verify


def _wanted(node: Any) -> bool:
    return getattr(node, "output_checks", None) is not None


def _wrap(func: Callable[..., Any], node: Any) -> Callable[..., Any]:
    check = _checker(node, func)

    def call_checked(*args: Any, **kwargs: Any) -> Any:
        result = func(*args, **kwargs)
        check(node, result)
        return result

    return call_checked


def _awrap(func: Callable[..., Any], node: Any) -> Callable[..., Any]:
    check = _checker(node, func)

    async def acall_checked(*args: Any, **kwargs: Any) -> Any:
        result = await func(*args, **kwargs)
        check(node, result)
        return result

    return acall_checked


LAYER = Entry("check", "call", wanted=_wanted, wrap=_wrap, awrap=_awrap)
