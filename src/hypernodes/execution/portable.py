"""Exceptions that travel back from a worker process as themselves.

Python pickles an exception as ``(type, args)`` and rebuilds it by calling ``type(*args)``.  An
exception whose ``__init__`` takes other arguments than it passes to ``super().__init__`` (two
parameters, one message) pickles fine in the worker and then fails to unpickle in the caller,
with a ``TypeError`` that hides the node's real error.  Replies are therefore pickled with
exceptions rebuilt without calling ``__init__`` (``__new__``, then ``args`` and the instance
dict, notes included), which keeps the original type; an exception that cannot be rebuilt even
so becomes a :class:`RemoteError` carrying its type name, message and the worker's traceback.
"""

from __future__ import annotations

import io
import pickle
import traceback
from typing import Any

from ..exceptions import HyperNodesError


class RemoteError(HyperNodesError):
    """An exception raised in another process that could not be sent back as itself."""


def rebuild_exception(
    cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any] | None, text: str
) -> BaseException:
    """The exception ``cls`` with ``args`` and ``state``, made without calling its ``__init__``;
    a :class:`RemoteError` naming it (with the worker's traceback ``text``) if that fails."""
    try:
        exc = cls.__new__(cls, *args)
        exc.args = args
        if state:
            exc.__dict__.update(state)
        return exc
    except Exception:
        message = str(args[0]) if len(args) == 1 else repr(args)
        error = RemoteError(
            f"{cls.__module__}.{cls.__qualname__} raised in a worker process could not be "
            f"rebuilt here: {message}\n{text}".rstrip()
        )
        for note in (state or {}).get("__notes__", ()):
            error.add_note(note)
        return error


_PICKLER: list[Any] = []


def _pickler() -> Any:
    """A cloudpickle pickler that sends exceptions with the default reduction through
    :func:`rebuild_exception` (made once: cloudpickle is imported on first use)."""
    if not _PICKLER:
        import cloudpickle

        class ReplyPickler(cloudpickle.CloudPickler):
            def reducer_override(self, obj: Any) -> Any:
                if (
                    isinstance(obj, BaseException)
                    and type(obj).__reduce__ is BaseException.__reduce__
                ):
                    text = "".join(traceback.format_exception(obj)).strip()
                    state = obj.__dict__ or None
                    return rebuild_exception, (type(obj), obj.args, state, text)
                return super().reducer_override(obj)

        _PICKLER.append(ReplyPickler)
    return _PICKLER[0]


def dumps(obj: Any) -> bytes:
    """``obj`` pickled with cloudpickle, its exceptions made to rebuild in any process."""
    buffer = io.BytesIO()
    _pickler()(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buffer.getvalue()
