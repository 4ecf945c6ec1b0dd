"""A column as the text its cells hold in CSV and xlsx: neutralised strings, ``repr``
floats, RFC 3339 timestamps, Arrow's spelling for the rest."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from projections.export.float_text import format_floats
from projections.export.safety import ExportError, neutralise_array

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["format_column", "is_plain_text"]


def format_column(arr: pa.Array, *, name: str = "?", neutralise: bool = True) -> pa.Array:
    """One column as the text a CSV cell holds: neutralised strings (as they are with
    ``neutralise=False``), ``repr`` floats.

    Integers, booleans (``true``/``false``), dates and decimals keep Arrow's spelling;
    timestamps become RFC 3339 (``Z`` when the column has a time zone). Nested and
    binary columns are refused: flatten them first.

    Raises:
        ExportError: a column type CSV cannot hold.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    t = arr.type
    if pa.types.is_dictionary(t):
        return format_column(arr.dictionary_decode(), name=name, neutralise=neutralise)
    if pa.types.is_floating(t):
        return format_floats(arr)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or _is_string_view(t):
        if neutralise:
            return neutralise_array(arr)
        return arr.cast(pa.string()) if _is_string_view(t) else arr
    if pa.types.is_timestamp(t):
        if t.tz is not None:
            if t.unit == "us":
                fast = _utc_micros_text(arr)
                if fast is not None:
                    return fast
            arr = arr.cast(pa.timestamp(t.unit, "UTC"))
            return pc.strftime(arr, format="%Y-%m-%dT%H:%M:%SZ")
        return pc.strftime(arr, format="%Y-%m-%dT%H:%M:%S")
    if is_plain_text(t):
        return arr.cast(pa.string())
    raise ExportError(
        f"column {name!r} has type {t}, which CSV cannot hold; "
        "flatten it or convert it to text before exporting"
    )


def _utc_micros_text(arr: pa.Array) -> pa.Array | None:
    """What ``strftime`` writes for a µs UTC column (the same text), without its cost."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from projections.export.time_text import format_utc_micros

    micros = pc.fill_null(arr.view(pa.int64()), 0).to_numpy()
    valid = arr.is_valid().to_numpy(zero_copy_only=False) if arr.null_count else None
    return format_utc_micros(micros, valid)


def is_plain_text(t: Any) -> bool:
    """Types whose Arrow cast to string is already the cell's text (no float spelling,
    no time zone, nothing a spreadsheet could read as a formula)."""
    import pyarrow as pa

    return (
        pa.types.is_integer(t)
        or pa.types.is_boolean(t)
        or pa.types.is_date(t)
        or pa.types.is_decimal(t)
        or pa.types.is_null(t)
    )


def _is_string_view(t: Any) -> bool:
    import pyarrow as pa

    check = getattr(pa.types, "is_string_view", None)
    return bool(check and check(t))
