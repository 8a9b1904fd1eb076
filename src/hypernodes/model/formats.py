"""What ``Pipeline.map(return_format=...)`` returns: rows, columns, or (0.4's formats) a Daft
DataFrame or a pyarrow Table of the columns."""

from __future__ import annotations

from typing import Any

from ..exceptions import MapError

#: every return_format a map takes
RETURN_FORMATS = ("list", "columns", "daft", "arrow")


def check_return_format(return_format: str) -> None:
    """Raise :class:`MapError` for a ``return_format`` that is not one of :data:`RETURN_FORMATS`."""
    if return_format not in RETURN_FORMATS:
        raise MapError(
            f"return_format must be one of {list(RETURN_FORMATS)}, got {return_format!r}"
        )


def as_frame(columns: dict[str, list[Any]], return_format: str) -> Any:
    """``columns`` as a ``daft.DataFrame`` (``"daft"``) or a ``pyarrow.Table`` (``"arrow"``).
    Values Arrow cannot type (your own objects) make Python-object columns in Daft; for
    ``"arrow"`` they raise pyarrow's error."""
    if return_format == "daft":
        try:
            import daft
        except ImportError as exc:
            raise ImportError(
                'return_format="daft" needs daft: pip install "hypernodes[daft]"'
            ) from exc
        return daft.from_pydict(columns)
    try:
        import pyarrow as pa
    except ImportError as exc:
        raise ImportError('return_format="arrow" needs pyarrow: pip install pyarrow') from exc
    return pa.table(columns)
