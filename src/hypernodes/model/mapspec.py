"""``MapSpec``: what a map runs over (input names and how their values combine), checked once.

``Pipeline.map``/``imap`` and ``as_node(map_over=...)`` both describe a map this way, so names,
modes and value checks are validated in one place and the items are made in one place.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass
from typing import Any, Literal

from ..exceptions import MapError, pipeline_phrase
from .checks import name_tuple

MAP_MODES = ("zip", "product")
MapMode = Literal["zip", "product"]


@dataclass(frozen=True, slots=True)
class MapSpec:
    """The inputs a map runs over (``names``) and how their values combine (``mode``)."""

    names: tuple[str, ...]
    mode: MapMode = "zip"

    @classmethod
    def of(cls, map_over: str | Sequence[str] | None, map_mode: str = "zip") -> MapSpec:
        """Validate ``map_over`` (one name or a list of distinct names) and ``map_mode``."""
        names = name_tuple(map_over, "map_over", MapError)
        if not names:
            raise MapError(f"map_over must name one input or a list of inputs, got {map_over!r}")
        if len(set(names)) != len(names):
            raise MapError(f"map_over names an input twice: {list(names)}")
        if map_mode not in MAP_MODES:
            raise MapError(f"map_mode must be 'zip' or 'product', got {map_mode!r}")
        return cls(names, map_mode)  # type: ignore[arg-type]

    def check_inputs(
        self, inputs: Mapping[str, Any], root_args: Sequence[str], label: str | None
    ) -> None:
        """Every mapped name must be an input of the pipeline and have a value."""
        for name in self.names:
            if name not in root_args:
                raise MapError(
                    f"map_over names {name!r}, but {pipeline_phrase(label)} takes no input "
                    f"{name!r}; its inputs are {list(root_args)}"
                )
            if name not in inputs:
                raise MapError(f"map_over names {name!r}, but inputs has no value for it")

    def columns(self, inputs: Mapping[str, Any], lazy: bool = False) -> list[Iterable[Any]]:
        """The mapped values, one column per name, checked to be sequences of items.

        With ``lazy`` an iterator is kept as it is (a stream); otherwise it is read into a list.
        """
        lazy = lazy and self.mode == "zip"  # a product reads every column anyway
        return [_as_column(inputs[name], name, lazy) for name in self.names]

    def count(self, columns: Sequence[Iterable[Any]]) -> int | None:
        """How many items the columns make (None when a lazy column has no length)."""
        lengths = [len(c) if isinstance(c, Sized) else None for c in columns]
        if self.mode == "zip":
            known = {n for n in lengths if n is not None}
            if len(known) > 1:
                detail = ", ".join(
                    f"{n}: {k}" for n, k in zip(self.names, lengths) if k is not None
                )
                raise MapError(
                    f"map_mode='zip' needs lists of one length, got {detail}; "
                    "use map_mode='product' for every combination"
                )
            return known.pop() if known and None not in lengths else None
        total = 1
        for n in lengths:
            if n is None:
                return None
            total *= n
        return total

    def items(self, base: dict[str, Any], columns: Sequence[Iterable[Any]]) -> MapItems:
        """The items: ``base`` plus each item's mapped values (see :class:`MapItems`)."""
        return MapItems(base, self.names, list(columns), self.mode)


class MapItems:
    """The items of one map: ``base`` (values shared by every item) plus one value of each input
    in ``names``, taken from ``seqs`` as ``mode`` (``"zip"`` or ``"product"``) pairs them.

    Iterating yields one dict per item (made as they are drawn).  Engines that work on columns
    (Daft) read the parts instead, so shared values are not repeated per item.
    """

    __slots__ = ("base", "names", "seqs", "mode")

    def __init__(
        self, base: dict[str, Any], names: tuple[str, ...], seqs: list[Iterable[Any]], mode: str
    ) -> None:
        self.base = base
        self.names = names
        self.seqs = seqs
        self.mode = mode

    def __iter__(self) -> Iterator[dict[str, Any]]:
        base, names = self.base, self.names
        if len(names) == 1:
            (name,) = names
            for value in self.seqs[0]:
                item = base.copy()
                item[name] = value
                yield item
            return
        if self.mode == "zip":
            combos: Iterable[tuple[Any, ...]] = _zipped(self.seqs, names)
        else:
            combos = itertools.product(*self.seqs)
        for combo in combos:
            item = base.copy()
            item.update(zip(names, combo))
            yield item


def _zipped(seqs: list[Iterable[Any]], names: tuple[str, ...]) -> Iterator[tuple[Any, ...]]:
    """The columns zipped; a :class:`MapError` naming the inputs when one ends before another
    (a stream read as items start, whose length was not known in advance)."""
    try:
        yield from zip(*seqs, strict=True)
    except ValueError as exc:
        if not str(exc).startswith("zip() argument"):
            raise  # the user's own iterator raised it
        raise MapError(
            f"map_mode='zip' needs map_over inputs of one length, but {list(names)} are not "
            f"({_zip_detail(str(exc), names)}); make them the same length, or use "
            "map_mode='product' for every combination"
        ) from None


def _zip_detail(message: str, names: tuple[str, ...]) -> str:
    """``'w' is longer than 'x'`` from zip's ``zip() argument 2 is longer than argument 1``."""
    numbers = [int(n) for n in re.findall(r"\d+", message)]
    if len(numbers) == 2 and all(1 <= n <= len(names) for n in numbers):
        verb = "shorter" if "shorter" in message else "longer"
        return f"{names[numbers[0] - 1]!r} is {verb} than {names[numbers[1] - 1]!r}"
    return message


def _as_column(value: Any, name: str, lazy: bool) -> Iterable[Any]:
    """``value`` as a column of map items, or a :class:`MapError` saying what to pass instead."""
    if isinstance(value, (list, tuple, range)):
        return value
    if hasattr(value, "columns") and hasattr(value, "shape"):  # a table: pandas, polars, ...
        raise MapError(
            f"map_over input {name!r} is a {type(value).__name__}; iterating a table gives its "
            "column names, not its rows. Pass its rows, e.g. df.to_dict('records') (pandas) or "
            "df.to_dicts() (polars) to map over one dict per row, or one column, df['col']"
        )
    if isinstance(value, Mapping):
        raise MapError(
            f"map_over input {name!r} is a {type(value).__name__}; iterating a mapping gives its "
            "keys only. Say what to map over: list(d.values()), list(d.keys()) or "
            "list(d.items()); for a dict of equal-length columns, pass the columns as inputs "
            "(inputs={**d}) with map_over=list(d). To give the whole mapping to every item, "
            "leave it out of map_over"
        )
    if isinstance(value, (set, frozenset)):
        hint = "a set has no order, so the rows would come back in no fixed order: pass sorted(s)"
    elif getattr(value, "ndim", None) == 0:
        hint = "a 0-d array is one value: pass [value] for one item, or an array of items"
    elif isinstance(value, (str, bytes, bytearray)) or not isinstance(value, Iterable):
        hint = "pass [value] to map over a single item"
    elif lazy and not isinstance(value, Sized):
        return value
    else:
        return list(value)
    raise MapError(
        f"map_over input {name!r} must be a sequence of values (list, tuple, range, array), "
        f"got {type(value).__name__}; {hint}"
    )
