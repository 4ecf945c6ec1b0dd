"""Timestamp columns as RFC 3339 UTC text (``2024-05-01T12:00:00.000001Z``) and as
spreadsheet serial dates, computed with numpy, never one Python call per value.

Arrow's ``strftime`` spells a microsecond UTC column the same way, but it costs about
a microsecond a value (a second per million metric values, doubling a CSV export).
Here the calendar date comes from the day number with Hinnant's ``civil_from_days``
(exact for the proleptic Gregorian calendar) and every digit is written into one
fixed-width byte buffer that becomes the Arrow string array without a copy per value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped]

__all__ = ["excel_serial", "format_utc_micros", "utc_micros_bytes"]

_WIDTH = 27  # len("2024-05-01T12:00:00.000001Z")
_US_PER_DAY = 86_400_000_000
#: Days from Excel's day 0 (1899-12-30, in the 1900 date system) to 1970-01-01.
_EXCEL_EPOCH_DAYS = 25_569
#: Years this formatter spells (four digits); outside them, the caller falls back.
_MIN_US = -62_135_596_800_000_000  # 0001-01-01T00:00:00Z
_MAX_US = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z


def _civil_from_days(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(year, month, day) of each day number since 1970-01-01 (Hinnant's algorithm)."""
    z = days + 719_468
    era = np.floor_divide(z, 146_097)
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    return year, month, day


def _digits(out: np.ndarray, col: int, values: np.ndarray, width: int) -> None:
    """Write ``values`` (non-negative ints) zero-padded into ``out[:, col:col+width]``."""
    for i in range(width - 1, -1, -1):
        out[:, col + i] = values % 10 + 48
        values = values // 10


def utc_micros_bytes(micros: np.ndarray) -> np.ndarray | None:
    """µs since the epoch (int64) -> an ``(n, 27)`` uint8 array, row ``i`` the RFC 3339
    UTC text of value ``i`` (``2024-05-01T12:00:00.000001Z``). None when a value lies
    outside years 1-9999."""
    us = np.asarray(micros, np.int64)
    if len(us) and (int(us.min()) < _MIN_US or int(us.max()) > _MAX_US):
        return None
    return _text_rows(us)


def format_utc_micros(micros: np.ndarray, valid: np.ndarray | None = None) -> pa.Array | None:
    """µs since the epoch (int64) -> an Arrow string array of RFC 3339 UTC text with
    microseconds and ``Z``; ``valid`` False gives null. Returns None when a value lies
    outside years 1-9999 (the caller then uses Arrow's ``strftime``)."""
    import pyarrow as pa  # type: ignore[import-untyped]

    us = np.asarray(micros, np.int64)
    n = len(us)
    mask = None if valid is None else ~np.asarray(valid, bool)
    check = us if mask is None else us[~mask]
    if len(check) and (int(check.min()) < _MIN_US or int(check.max()) > _MAX_US):
        return None
    if (n + 1) * _WIDTH >= 2**31:  # past 32-bit offsets: let Arrow do it
        return None
    if mask is not None:
        us = np.where(mask, 0, us)
    out = _text_rows(us)
    offsets = np.arange(0, (n + 1) * _WIDTH, _WIDTH, dtype=np.int32)
    nulls = None
    if mask is not None and mask.any():
        nulls = pa.py_buffer(np.packbits(~mask, bitorder="little"))
    return pa.StringArray.from_buffers(
        n,
        pa.py_buffer(offsets),
        pa.py_buffer(out.reshape(-1)),
        nulls,
        null_count=-1 if nulls is not None else 0,
    )


def _text_rows(us: np.ndarray) -> np.ndarray:
    """The ``(n, 27)`` text of in-range µs values."""
    n = len(us)
    days, rest = np.divmod(us, _US_PER_DAY)
    year, month, day = _civil_from_days(days)
    secs, frac = np.divmod(rest, 1_000_000)
    out = np.empty((n, _WIDTH), np.uint8)
    _digits(out, 0, year, 4)
    _digits(out, 5, month, 2)
    _digits(out, 8, day, 2)
    _digits(out, 11, secs // 3600, 2)
    _digits(out, 14, secs // 60 % 60, 2)
    _digits(out, 17, secs % 60, 2)
    _digits(out, 20, frac, 6)
    for col, ch in ((4, "-"), (7, "-"), (10, "T"), (13, ":"), (16, ":"), (19, "."), (26, "Z")):
        out[:, col] = ord(ch)
    return out


def excel_serial(micros: Any) -> np.ndarray:
    """µs since the epoch -> spreadsheet serial dates (days since 1899-12-30, the 1900
    date system), which a cell shows as a date with a date number format."""
    us = np.asarray(micros, np.int64)
    days, rest = np.divmod(us, _US_PER_DAY)
    return (days + _EXCEL_EPOCH_DAYS).astype(np.float64) + rest / _US_PER_DAY
