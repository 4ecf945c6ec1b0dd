"""What a runner hands the Recorder, checked at the call that makes the event.

An event the ledger would refuse must be refused where the runner can see why — at
``log()``, ``case()``, ``run()`` — never at a later commit, where it would stand in front
of every event buffered behind it. So each call turns its arguments into exactly what
the ledger accepts, or raises an ``EventError`` that names the field:

- numpy integer and float scalars become Python ints and floats everywhere a number is
  accepted (steps, values, params, seeds): what a runner computes with numpy is a
  number like any other; numpy booleans become booleans and tuples lists;
- arrays are refused (give a number, a list, or store the data as an artifact), as are
  objects with no JSON form, ints beyond 64 bits, steps past 2**63 - 1, bad times;
- every other event is encoded and decoded with the ledger's own input schema, so its
  limits (id lengths, enums, sizes, nesting) are the same here as at append.

numpy is never imported: its scalars are recognised by their ``numpy.generic`` base and
their ``item()``, arrays by their type.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, Union

import msgspec

from .codec import (
    MAX_EVENT_BYTES,
    MAX_NESTING,
    _depth_ok,
    _msg,
    _path,
    encode_canonical,
    format_ts,
    is_numpy_scalar,
    parse_ts,
)
from .errors import EventTooLarge, LedgerDecodeError
from .events import FREE_FORM, I64_MAX, I64_MIN, U64_MAX, InputEvent
from .rules import check_names

__all__ = [
    "Stamp",
    "checked",
    "integer",
    "metric_values",
    "plain",
    "stamp",
]

Stamp = Union[str, float, datetime, None]
"""What a runner may pass as ``ts=``: RFC 3339 with an offset, Unix seconds, or an
aware ``datetime``; None stamps the event with the time of the call."""

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
_now = time.time  # the clock events are stamped with (tests replace it)
_input = msgspec.msgpack.Decoder(InputEvent)
_FLOAT = frozenset((float,))
_STR = frozenset((str,))
_JSON_LEAVES = (str, int, float, bool, type(None))


# -- times -----------------------------------------------------------------------------


def stamp(ts: Stamp = None) -> str | float:
    """The ``ts`` an event gets at the runner's call: now, or the caller's own time,
    checked here so that a bad time is refused at the call, never at a later commit.

    Raises ``LedgerDecodeError`` naming ``ts``.
    """
    if ts is None:
        return _now()
    if isinstance(ts, datetime):
        if ts.utcoffset() is None:
            raise LedgerDecodeError(
                "`ts`: a datetime without a time zone is ambiguous; give it one "
                "(e.g. datetime.now(timezone.utc))",
                field="ts",
            )
        return format_ts((ts - _EPOCH) // _MICROSECOND)
    if isinstance(ts, str):
        parse_ts(ts)
        return ts
    if isinstance(ts, bool):
        parse_ts(ts)  # "must be a timestamp, got a boolean"
    if isinstance(ts, numbers.Real):
        seconds = float(ts)  # numpy scalars too
        parse_ts(seconds)  # refuses NaN and infinities
        return seconds
    raise LedgerDecodeError(
        f"`ts` must be an RFC 3339 string, Unix seconds or an aware datetime, got "
        f"{type(ts).__name__}",
        field="ts",
    )


# -- numbers -----------------------------------------------------------------------------


def _what(value: Any) -> str:
    """How an unwanted value is named in an error: arrays with their shape."""
    kind = type(value)
    shape = getattr(value, "shape", None)
    if kind.__module__.split(".")[0] in ("numpy", "pandas", "torch") and shape is not None:
        return f"a {kind.__module__.split('.')[0]} array (shape {tuple(shape)})"
    return f"a {kind.__name__}"


def _array_hint(value: Any) -> str:
    if getattr(value, "shape", None) is not None:
        return "; give a number, a list (.tolist()), or store the data as an artifact"
    return ""


def _bounded_int(value: int, field: str, lo: int, hi: int) -> int:
    if lo <= value <= hi:
        return value
    if value > U64_MAX or value < I64_MIN:
        why = "is beyond 64 bits"
    else:
        why = f"is not an int in {_RANGES.get((lo, hi), f'{lo}..{hi}')}"
    raise LedgerDecodeError(f"`{field}` {_short(value)} {why}", field=field)


_RANGES = {
    (0, I64_MAX): "0..2**63-1",
    (I64_MIN, I64_MAX): "-2**63..2**63-1",
    (I64_MIN, U64_MAX): "-2**63..2**64-1",
}


def _short(value: int) -> str:
    text = str(value)
    return text if len(text) <= 24 else f"{text[:10]}...{text[-6:]} ({len(text)} digits)"


def integer(value: Any, field: str, *, lo: int = 0, hi: int = I64_MAX) -> int:
    """An int (a numpy integer too) in ``lo..hi``; booleans, floats and arrays are
    refused. Raises ``LedgerDecodeError`` naming ``field``."""
    if type(value) is not int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise LedgerDecodeError(
                f"`{field}` {value!r} is {_what(value)}, not an int in "
                f"{_RANGES.get((lo, hi), f'{lo}..{hi}')}{_array_hint(value)}",
                field=field,
            )
        value = int(value)
    return _bounded_int(value, field, lo, hi)


class _NotANumber(Exception):
    """Internal: why a metric value was refused (the caller names the metric)."""


def _number(value: Any) -> int | float:
    kind = type(value)
    if kind is float:
        return math.nan if value != value else value  # one canonical NaN
    if kind is not int:
        if (
            isinstance(value, bool)
            or kind.__name__ == "bool_"
            or not isinstance(value, numbers.Real)
        ):
            hint = (
                "; log one value per name (a step per element), or store the data as an artifact"
                if getattr(value, "shape", None) is not None
                else ""
            )
            what = repr(value) if not hint else _what(value)
            raise _NotANumber(f"{what} is not a number (metric values are ints or floats){hint}")
        if not isinstance(value, numbers.Integral):
            number = float(value)
            return math.nan if number != number else number
        value = int(value)
    if I64_MIN <= value <= I64_MAX:
        return value
    why = "beyond 64 bits" if value > U64_MAX or value < I64_MIN else "past 2**63 - 1"
    raise _NotANumber(
        f"{_short(value)} is {why} (an int value must fit a signed 64-bit int; "
        "give a float for a larger number)"
    )


def metric_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Metric values as plain ints (signed 64-bit) and floats with one canonical NaN,
    refused at the call when they are not, so a bad value never enters the buffer.
    Raises ``LedgerDecodeError`` naming the metric."""
    out = dict(values)
    vals = out.values()
    if _FLOAT.issuperset(map(type, vals)) and _STR.issuperset(map(type, out)):
        # The usual call: str names and float values. One sum says whether a NaN is
        # among them (inf - inf is NaN too: the loop below then looks closer).
        total = sum(vals)
        if total == total:
            return out
    for name, value in out.items():
        if type(name) is not str:
            raise LedgerDecodeError(
                f"metric name {name!r} is not a string",
                event_type="metrics_recorded",
                field="values",
            )
        try:
            out[name] = _number(value)
        except _NotANumber as exc:
            raise LedgerDecodeError(
                f"metric {name!r}: {exc}",
                event_type="metrics_recorded",
                field=f"values.{name}",
            ) from None
    return out


# -- free-form values (config, params, provenance, resources, policy) ----------------------


def plain(obj: Any, field: str) -> Any:
    """``obj`` as JSON-shaped Python: numpy scalars as Python scalars, tuples as lists.
    The very same object when nothing needed changing.

    Raises ``LedgerDecodeError`` naming the path of an array, an int beyond 64 bits, or
    a value with no JSON form (bytes, sets, paths, ...).
    """
    kind = type(obj)
    if kind is str or kind is float or kind is bool or obj is None:
        return obj
    if kind is int:
        return _bounded_int(obj, field, I64_MIN, U64_MAX)
    if kind is dict:
        out: dict[str, Any] | None = None
        for key, value in obj.items():
            if type(key) is not str:
                raise LedgerDecodeError(
                    f"`{field}` has a {type(key).__name__} key {key!r}; keys are strings",
                    field=field,
                )
            new = plain(value, f"{field}.{key}")
            if new is not value:
                if out is None:
                    out = dict(obj)
                out[key] = new
        return obj if out is None else out
    if kind is list or kind is tuple:
        items = [plain(v, f"{field}[{i}]") for i, v in enumerate(obj)]
        if kind is list and all(a is b for a, b in zip(items, obj)):
            return obj
        return items
    return _plain_other(obj, field)


def _plain_other(obj: Any, field: str) -> Any:
    if is_numpy_scalar(type(obj)):
        return plain(obj.item(), field)
    if isinstance(obj, Mapping):
        return plain(dict(obj), field)
    if isinstance(obj, _JSON_LEAVES):  # subclasses: a str enum, an IntEnum, a float subclass
        base: Any = next(t for t in (bool, int, float, str) if isinstance(obj, t))
        return plain(base(obj), field)
    raise LedgerDecodeError(
        f"`{field}` is {_what(obj)}, which has no JSON form; use strings, numbers, "
        f"booleans, null, lists and objects{_array_hint(obj)}",
        field=field,
    )


# -- whole events --------------------------------------------------------------------------


def checked(ev: Any) -> Any:
    """``ev`` as the strict input struct the ledger accepts as validated, with its
    free-form fields made plain; or an ``EventError`` naming the field. This is what
    ``Ledger.append`` would check of the event on its own (its rules against the log
    are checked at the commit)."""
    tag = ev.TYPE
    changed = {}
    for name in FREE_FORM.get(tag, ()):
        value = getattr(ev, name)
        if value is None:
            continue
        if not _depth_ok(value, MAX_NESTING - 1):
            raise EventTooLarge(
                f"`{name}` nests deeper than {MAX_NESTING} levels", event_type=tag, field=name
            )
        new = plain(value, name)
        if new is not value:
            changed[name] = new
    if changed:
        ev = msgspec.structs.replace(ev, **changed)
    content = encode_canonical(ev)
    if len(content) > MAX_EVENT_BYTES:
        raise EventTooLarge(
            f"event is {len(content)} bytes encoded; the limit is {MAX_EVENT_BYTES} bytes "
            "(1 MiB): store large data as an artifact",
            event_type=tag,
        )
    try:
        strict = _input.decode(content)
    except msgspec.ValidationError as exc:
        raise LedgerDecodeError(_msg(exc), event_type=tag, field=_path(exc)) from None
    check_names(strict)
    return strict
