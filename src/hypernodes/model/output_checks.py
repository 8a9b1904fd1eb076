"""``@node(check=...)``: what a node's returned values must satisfy, read once when the node is
made.

A check is a callable (a falsy result or an exception means invalid), a pydantic model (the
value must validate against it) or a pandera schema or ``DataFrameModel`` (anything with a
``validate`` method that raises for an invalid value); a dict maps output names to checks, and
a node of several outputs takes one.  Running them is the ``check`` call layer's work
(:mod:`hypernodes.execution.layers.check`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..exceptions import InvalidNodeError

#: one check of a node: (output position, or None for the whole result of a one-output node;
#: a function returning truthy for a valid value or raising; how messages name the check)
OutputCheck = tuple[int | None, Callable[[Any], Any], str]


def read_checks(check: Any, outputs: tuple[str, ...], where: str) -> tuple[OutputCheck, ...] | None:
    """``check=`` as a tuple of :data:`OutputCheck` (None without checks); raises
    :class:`~hypernodes.exceptions.InvalidNodeError` for anything it cannot use."""
    if check is None:
        return None
    if isinstance(check, Mapping):
        found = []
        for name in check:
            if name not in outputs:
                raise InvalidNodeError(
                    f"{where}: check names output {name!r}, but the node's outputs are "
                    f"{list(outputs)}"
                )
        for index, name in enumerate(outputs):
            if name in check and check[name] is not None:
                position = None if len(outputs) == 1 else index
                found.append((position, *_validator(check[name], where)))
        return tuple(found) or None
    if len(outputs) > 1:
        raise InvalidNodeError(
            f"{where} has {len(outputs)} outputs {list(outputs)}; give check a dict naming the "
            f"output each check is for, e.g. check={{{outputs[0]!r}: ...}}"
        )
    return ((None, *_validator(check, where)),)


def _validator(check: Any, where: str) -> tuple[Callable[[Any], Any], str]:
    """A function that returns truthy for a valid value or raises, and the check's name."""
    name = getattr(check, "__qualname__", None) or getattr(check, "__name__", None) or repr(check)
    if isinstance(check, type) and hasattr(check, "model_validate"):  # a pydantic model

        def pydantic_check(value: Any) -> bool:
            check.model_validate(value)
            return True

        return pydantic_check, f"pydantic model {name}"
    validate = getattr(check, "validate", None)
    if callable(validate) and not _is_function(check):  # a pandera schema or DataFrameModel

        def schema_check(value: Any) -> bool:
            validate(value)
            return True

        return schema_check, f"schema {getattr(check, 'name', None) or name}"
    if callable(check):
        return check, str(name)
    raise InvalidNodeError(
        f"{where}: check must be a function (returning True for a valid value), a pydantic "
        f"model, a pandera schema, or a dict of those by output name; got {check!r}"
    )


def _is_function(check: Any) -> bool:
    return callable(check) and not isinstance(check, type) and hasattr(check, "__code__")
