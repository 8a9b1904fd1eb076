"""``resources={"rate_limit": "10/s"}``: how often a node may start, read once when it is made."""

from __future__ import annotations

import re
from typing import Any

from ..exceptions import InvalidNodeError

_UNITS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*([a-z]+?)s?\s*$")


def read_rate(value: Any, where: str) -> tuple[int, float]:
    """``"10/s"``, ``"600/min"`` or ``"100/hour"`` as (starts, seconds); raises
    :class:`~hypernodes.exceptions.InvalidNodeError` for anything else."""
    found = _RATE.match(value.lower()) if isinstance(value, str) else None
    unit = None if found is None else _UNITS.get(found.group(2)) or _UNITS.get(found.group(2) + "s")
    if found is None or unit is None or int(found.group(1)) < 1:
        raise InvalidNodeError(
            f"{where}: resources['rate_limit'] is a number of starts per second, minute or hour, "
            f"such as '10/s', '600/min' or '100/hour' (a whole number >= 1); got {value!r}"
        )
    return int(found.group(1)), unit
