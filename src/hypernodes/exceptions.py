"""Errors raised by HyperNodes itself.

Every library error derives from :class:`HyperNodesError` and its message says what to do next.
Errors raised by a user's node keep their own type; they only gain a note naming where they happened.
"""

from __future__ import annotations


class HyperNodesError(Exception):
    """Base class of every error HyperNodes raises on its own behalf."""


class InvalidNodeError(HyperNodesError, TypeError):
    """Something that is not a node (or a pipeline) was given where a node is expected."""


class DuplicateOutputError(HyperNodesError, ValueError):
    """Two nodes of one pipeline produce the same output name."""


class CycleError(HyperNodesError, ValueError):
    """The nodes depend on each other in a cycle, so no order can run them."""

    def __init__(self, message: str, cycle: list[str] | None = None) -> None:
        super().__init__(message)
        self.cycle = cycle or []


class DependencyError(HyperNodesError, ValueError):
    """A value a node needs cannot be obtained from the inputs or other nodes."""


class MissingInputError(DependencyError):
    """Inputs the requested outputs need were not given."""

    def __init__(self, message: str, missing: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        #: input name -> names of the nodes that need it
        self.missing = missing or {}


class UnknownOutputError(HyperNodesError, ValueError):
    """An output name was requested that no node of the pipeline produces."""


class MapError(HyperNodesError, ValueError):
    """``Pipeline.map`` was called with inputs it cannot map over."""


class MappingError(HyperNodesError, ValueError):
    """``as_node`` mappings name inputs or outputs the inner pipeline does not have."""


class OutputShapeError(HyperNodesError, ValueError):
    """A node declared several outputs but returned something of another length."""


class ExecutorError(HyperNodesError, ValueError):
    """An engine was configured with an executor it cannot use."""


class GraphvizNotFoundError(HyperNodesError, RuntimeError):
    """Drawing a pipeline needs the ``graphviz`` Python package or the ``dot`` program, and it is
    missing; the message says how to install it."""


class UnpicklableError(HyperNodesError, TypeError):
    """A node, input or output cannot be copied to or from a worker process (``"parallel"``)."""


class TypeMismatchError(HyperNodesError, TypeError):
    """A node's annotated output type cannot be what the node reading it takes (raised when the
    pipeline is built), or a value a node returned is not of its annotated type
    (``type_check="runtime"``).  The message names both nodes, the value and both types."""

    def __init__(
        self,
        message: str,
        *,
        producer: str | None = None,
        consumer: str | None = None,
        name: str | None = None,
        produced: object = None,
        expected: object = None,
    ) -> None:
        super().__init__(message)
        #: who produces the value (``"node 'load'"``) and who takes it (``None`` at run time)
        self.producer = producer
        self.consumer = consumer
        #: the value's name, and the produced and expected types
        self.name = name
        self.produced = produced
        self.expected = expected


class TypeMismatchWarning(UserWarning):
    """What :class:`TypeMismatchError` says, as a warning: ``Pipeline(..., type_check="warn")``."""


__all__ = [
    "CycleError",
    "DependencyError",
    "DuplicateOutputError",
    "ExecutorError",
    "GraphvizNotFoundError",
    "HyperNodesError",
    "InvalidNodeError",
    "MapError",
    "MappingError",
    "MissingInputError",
    "OutputShapeError",
    "TypeMismatchError",
    "TypeMismatchWarning",
    "UnknownOutputError",
    "UnpicklableError",
]
