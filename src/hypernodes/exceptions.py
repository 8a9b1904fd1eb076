"""Errors raised by HyperNodes itself.

Every library error derives from :class:`HyperNodesError` and its message says what to do next.
Errors raised by a user's node keep their own type; they only gain a note naming where they happened.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: the name paths and events give a pipeline created without ``name=``
UNNAMED = "pipeline"


def pipeline_phrase(label: str | None) -> str:
    """How a message names a pipeline: ``pipeline 'etl'``, or ``the pipeline`` when it has no
    name (``pipeline 'pipeline'`` would only repeat itself)."""
    return "the pipeline" if label in (None, UNNAMED) else f"pipeline {label!r}"


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


class InputError(HyperNodesError, TypeError):
    """``inputs`` given to ``run``/``map``/``bind`` is not a mapping of input names to values.

    A ``TypeError``, as Python raises for a call with arguments it cannot take.
    """


class UnknownInputError(InputError):
    """An input name was given that the pipeline does not take (often a typo of one it does).

    Like ``f(unknown=1)`` raising ``TypeError`` for a plain function: a name the pipeline would
    silently ignore could hide a wrong result (a misspelled optional input keeps its default).
    """

    def __init__(
        self,
        message: str,
        unknown: list[object] | None = None,
        accepted: list[str] | None = None,
        suggestions: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(message)
        #: the names (keys) given that the pipeline does not take
        self.unknown = unknown or []
        #: every name the pipeline takes: its inputs, then the outputs a value may override
        self.accepted = accepted or []
        #: unknown name -> close matches among ``accepted``
        self.suggestions = suggestions or {}


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


class NamespaceError(MappingError):
    """``as_node(namespace=...)`` was given a name that is not an identifier, or a namespaced
    name collides with one that ``input_mapping``/``output_mapping`` gives another value."""


class VariantError(HyperNodesError, ValueError):
    """Variants of an output cannot be used as given: none is chosen and none is the default
    (the message lists them and says how to pick), a name or default is given twice, or a
    variant asked for does not exist."""


class OutputShapeError(HyperNodesError, ValueError):
    """A node declared several outputs but returned something of another length."""


class InvalidSettingError(HyperNodesError, TypeError):
    """``engine=``, ``cache=`` or ``callbacks=`` was given something of a kind it does not take
    (a string, a class instead of an instance, ...); the message names the argument."""


class SettingValueError(InvalidSettingError, ValueError):
    """A setting of a cache, engine or executor that is of the wrong kind or out of range
    (``MemoryCache(max_entries="10")``, ``DiskCache(size_limit=-5)``, ``timeout="x"``, a key
    too short); raised where the object is made, never later while a node runs.  Both a
    ``TypeError`` and a ``ValueError``, so code written for either keeps catching it."""


class CachePathError(HyperNodesError, NotADirectoryError):
    """``DiskCache(path)`` was pointed at something that is not a directory (an existing file)."""


class CacheStoreError(HyperNodesError, OSError):
    """``FsspecCache(url)`` cannot reach its store (a wrong URL, missing credentials, no
    network, s3fs not installed) or has no usable key; the message says which."""


class ExecutorError(HyperNodesError, ValueError):
    """An engine was configured with an executor it cannot use."""


class CallbackSignatureError(HyperNodesError, TypeError):
    """A callback's hook override takes arguments that neither calling style (our keywords, or
    the original HyperNodes' positional arguments) can give it."""


class UnsupportedEngineError(HyperNodesError, TypeError):
    """A callback's ``supported_engines`` does not name the engine a pipeline runs on."""


class GraphvizNotFoundError(HyperNodesError, RuntimeError):
    """Drawing a pipeline needs the ``graphviz`` Python package or the ``dot`` program, and it is
    missing; the message says how to install it."""


class ResourceError(HyperNodesError, RuntimeError):
    """A :class:`~hypernodes.Resource` could not be built or used as declared (a generator
    factory that never yields its value, ...); the message names the factory."""


class UnpicklableError(HyperNodesError, TypeError):
    """A node, input or output cannot be copied to or from a worker process (``"parallel"``)."""


class NodeTimeoutError(HyperNodesError, TimeoutError):
    """A node ran longer than its ``timeout``; the message names the node, the item and the limit."""


class WorkerCrashedError(HyperNodesError, RuntimeError):
    """A worker process died while running map items (killed, out of memory, a crash in C code).

    ``items`` holds the indices of the map items it took down; with retries of single items the
    culprit is found, so ``items`` is usually that one item.
    """

    def __init__(self, message: str, items: list[int] | None = None) -> None:
        super().__init__(message)
        self.items = items or []

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (str(self), self.items), self.__dict__)


class ClusterLostError(HyperNodesError, RuntimeError):
    """The cluster a map ran on went away: its scheduler (or head) cannot be reached any more.

    ``address`` is the cluster's address.  Rows yielded before it (``imap``) are kept; the map
    stops, since no item can run.
    """

    def __init__(self, message: str, address: str | None = None) -> None:
        super().__init__(message)
        self.address = address

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (str(self), self.address), self.__dict__)


class NoWorkersError(HyperNodesError, RuntimeError):
    """No worker of the cluster can run a map's tasks, and none came back within the engine's
    ``no_worker_timeout``: every worker is gone, or none offers the resources (``GPU``) the tasks
    need any more.  ``address`` is the cluster's, ``resources`` what the tasks asked for."""

    def __init__(
        self, message: str, address: str | None = None, resources: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.address = address
        self.resources = resources or {}

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (str(self), self.address, self.resources), self.__dict__)


class WorkerImportError(HyperNodesError, ImportError):
    """A worker process cannot import a module the pipeline needs (``module``): the message says
    to install it on the workers (or, on Dask, ``client.upload_file``)."""

    def __init__(self, message: str, module: str | None = None) -> None:
        super().__init__(message, name=module)
        self.module = module

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (str(self), self.module), self.__dict__)


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


class UnknownNameError(HyperNodesError, ValueError):
    """A lineage question (``upstream_of``, ``downstream_of``, ``path_between``) named something
    that is neither a node nor a value of the pipeline; the message lists close matches."""


class SubpipelineError(HyperNodesError, ValueError):
    """``pipeline.subpipeline(inputs=..., outputs=...)`` cannot cut the pipeline as asked: a name
    is no value of it, an input leads to none of the outputs, or a node kept would compute a
    value given as an input."""


class UnknownNodeError(HyperNodesError, ValueError):
    """A node was named (``with_node_function``, ``hypernodes.testing.patch``) that the pipeline
    does not have; the message lists its nodes and close matches."""


class NodeSignatureError(InvalidNodeError):
    """A function given to replace a node (``with_node_function``) does not fit it: it takes
    other parameters, or declares another number of outputs."""


class OutputCheckError(HyperNodesError, ValueError):
    """A value a node returned failed the node's ``check=`` (a callable, pydantic model or
    pandera schema).  ``node``, ``output`` and ``item`` (the map item, or None) say which; the
    check's own exception, if it raised one, is the ``__cause__``.  Nothing is cached."""

    def __init__(
        self,
        message: str,
        *,
        node: str | None = None,
        output: str | None = None,
        item: int | None = None,
    ) -> None:
        super().__init__(message)
        self.node = node
        self.output = output
        self.item = item

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), str(self), self.__dict__))


class FailureBudgetError(HyperNodesError, RuntimeError):
    """``map(..., on_error="continue", max_failures=...)`` stopped: more items failed than the
    budget allows.  ``failures`` holds ``(index, ItemError)`` of the failed items seen,
    ``finished`` how many items had finished."""

    def __init__(
        self, message: str, failures: Sequence[tuple[int, object]] | None = None, finished: int = 0
    ) -> None:
        super().__init__(message)
        self.failures = list(failures or [])
        self.finished = finished

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (str(self), self.failures, self.finished), self.__dict__)


def _rebuild(cls: type[BaseException], message: str, state: dict[str, object]) -> BaseException:
    """Unpickle an error whose constructor takes keyword-only details (from a worker process)."""
    error = cls(message)
    error.__dict__.update(state)
    return error


__all__ = [
    "CycleError",
    "DependencyError",
    "CachePathError",
    "DuplicateOutputError",
    "ExecutorError",
    "FailureBudgetError",
    "GraphvizNotFoundError",
    "HyperNodesError",
    "InputError",
    "InvalidNodeError",
    "InvalidSettingError",
    "SettingValueError",
    "MapError",
    "MappingError",
    "MissingInputError",
    "NamespaceError",
    "NodeSignatureError",
    "NodeTimeoutError",
    "OutputCheckError",
    "OutputShapeError",
    "ResourceError",
    "SubpipelineError",
    "UnknownInputError",
    "UnknownNameError",
    "UnknownNodeError",
    "TypeMismatchError",
    "TypeMismatchWarning",
    "UnknownOutputError",
    "UnpicklableError",
    "VariantError",
    "WorkerCrashedError",
]
