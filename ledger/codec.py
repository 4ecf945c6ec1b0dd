"""Bytes in and out: the JSON Lines wire form, canonical msgpack, timestamps.

msgspec's JSON writes NaN/±inf as ``null`` and refuses the ``NaN`` token that Python's
``json`` writes, so the wire spelling of non-finite numbers is ours (docs/architecture.md, Events): output
uses the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``; input accepts those strings
in metric values and the bare tokens anywhere. Hashes and ids never see JSON: they use
deterministic msgpack.

Every decoder is wrapped so that only ``LedgerDecodeError`` escapes (msgspec raises
``UnicodeDecodeError`` on invalid UTF-8 and ``RecursionError`` on deep nesting).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, cast, get_args

import msgspec

from .errors import EventTooLarge, LedgerDecodeError
from .events import EVENT_TYPES, Envelope, Event, InputEvent, MetricsRecorded

__all__ = [
    "MAX_EVENT_BYTES",
    "MAX_NESTING",
    "decode_json_event",
    "decode_json_lines",
    "encode_canonical",
    "event_from_obj",
    "event_to_wire",
    "format_ts",
    "parse_ts",
    "to_json_safe",
]

MAX_EVENT_BYTES = 1 << 20
MAX_NESTING = 32

_json_input = msgspec.json.Decoder(InputEvent)
_canonical = msgspec.msgpack.Encoder(order="deterministic")
_json_out = msgspec.json.Encoder(order="deterministic")
_NONFINITE_IN = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_STRICT_BY_TYPE: dict[str, type[Event]] = {}


def encode_canonical(obj: Any) -> bytes:
    """Deterministic msgpack: the bytes that ids and hashes are computed over.

    Raises ``LedgerDecodeError`` naming the field of a value msgpack cannot hold (an int
    beyond 64 bits, an object of no known type) instead of msgspec's bare
    ``OverflowError``/``TypeError``.
    """
    try:
        return _canonical.encode(obj)
    except (OverflowError, TypeError) as exc:
        raise _unencodable(obj, exc) from None


def _unencodable(obj: Any, exc: Exception) -> LedgerDecodeError:
    tag = getattr(obj, "TYPE", None) or None
    found = _first_unencodable(obj)
    if found is None:
        return LedgerDecodeError(f"cannot encode event: {exc}", event_type=tag)
    path, value = found
    if type(value) is int:
        detail = f"`{path}` {_short_int(value)} is beyond 64 bits (ints are stored as 64-bit ints)"
    else:
        detail = (
            f"`{path}` is a {type(value).__module__}.{type(value).__name__}, which cannot "
            "be stored; use strings, numbers, booleans, null, lists and objects"
        )
    return LedgerDecodeError(detail, event_type=tag, field=path)


def _first_unencodable(obj: Any) -> tuple[str, Any] | None:
    """(path, value) of the first value msgpack refuses, depth first."""
    stack: list[tuple[str, Any]] = [("", obj)]
    while stack:
        path, node = stack.pop()
        kind = type(node)
        if kind is int:
            if not -(2**63) <= node <= 2**64 - 1:
                return path, node
        elif isinstance(node, msgspec.Struct):
            names = [f for f in node.__struct_fields__ if getattr(node, f) is not None]
            stack.extend((_join(path, f), getattr(node, f)) for f in reversed(names))
        elif isinstance(node, dict):
            stack.extend((_join(path, str(k)), v) for k, v in reversed(node.items()))
        elif isinstance(node, (list, tuple)):
            stack.extend((f"{path}[{i}]", v) for i, v in reversed(list(enumerate(node))))
        elif not isinstance(node, (str, float, bool, bytes, type(None), int)):
            return path, node
    return None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


_NUMPY_SCALAR: dict[type, bool] = {}


def is_numpy_scalar(kind: type) -> bool:
    """Whether ``kind`` is a numpy scalar type (``numpy.generic``), without numpy."""
    try:
        return _NUMPY_SCALAR[kind]
    except KeyError:
        found = any(c.__name__ == "generic" and c.__module__ == "numpy" for c in kind.__mro__)
        _NUMPY_SCALAR[kind] = found
        return found


def numpy_scalars_as_python(obj: Any) -> Any:
    """``obj`` with every numpy scalar inside dicts and lists as its Python value
    (``item()``); the very same object when there is none."""
    if is_numpy_scalar(type(obj)):
        return obj.item()
    if isinstance(obj, dict):
        out = {k: numpy_scalars_as_python(v) for k, v in obj.items()}
        return obj if all(out[k] is v for k, v in obj.items()) else out
    if isinstance(obj, list):
        items = [numpy_scalars_as_python(v) for v in obj]
        return obj if all(a is b for a, b in zip(items, obj)) else items
    return obj


# -- timestamps ---------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:?\d{2})$"
)


def parse_ts(value: str | float | int, *, field: str = "ts") -> int:
    """Memoised: importers and runners repeat the same timestamps many times."""
    if type(value) is str:
        return _parse_ts_cached(value, field)
    return _parse_ts(value, field=field)


@lru_cache(maxsize=8192)
def _parse_ts_cached(value: str, field: str) -> int:
    return _parse_ts(value, field=field)


def _parse_ts(value: str | float | int, *, field: str = "ts") -> int:
    """An RFC 3339 string or Unix seconds, as integer microseconds UTC.

    Raises ``LedgerDecodeError`` naming the field for anything else, including an RFC 3339
    string without a UTC offset (a naive time is ambiguous and would make replays differ
    between time zones).
    """
    if isinstance(value, bool):
        raise LedgerDecodeError(f"`{field}` must be a timestamp, got a boolean", field=field)
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise LedgerDecodeError(f"`{field}` must be a finite number of seconds", field=field)
        return round(value * 1_000_000)
    if not _RFC3339.match(value):
        raise LedgerDecodeError(
            f"`{field}` {value!r} is not an RFC 3339 time with an offset "
            "(e.g. 2026-01-31T12:00:00Z) nor Unix seconds",
            field=field,
        )
    text = value.replace("t", "T").replace(" ", "T").replace("z", "Z")
    frac = ""
    m = re.search(r"\.(\d+)", text)
    if m:
        frac = m.group(1)
        text = text[: m.start()] + text[m.end() :]
    text = text.replace("Z", "+00:00")
    try:
        dt = datetime.fromisoformat(text)
    except ValueError as exc:
        raise LedgerDecodeError(f"`{field}` {value!r}: {exc}", field=field) from None
    delta = dt - _EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000
    if frac:
        micros += int((frac + "000000")[:6])
    return micros


def format_ts(micros: int) -> str:
    """RFC 3339 UTC with microseconds and ``Z``, independent of the local time zone."""
    seconds, us = divmod(micros, 1_000_000)
    dt = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{us:06d}Z"


# -- JSON input -------------------------------------------------------------------


def _depth_ok(obj: Any, limit: int) -> bool:
    if limit >= 2 and type(obj) is dict:
        for v in obj.values():
            if isinstance(v, (dict, list)):
                break
        else:
            return True  # flat: the common case, no walk
    stack = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return True


_JSON_SCALARS = (str, int, float, bool, type(None))


def non_json_value(obj: Any) -> str | None:
    """The type name of the first value that has no JSON form (``Ext``, bytes, ...),
    or None. Free-form fields must survive ``log --json | append`` unchanged."""
    stack = [obj]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for k, v in node.items():
                if not isinstance(k, str):
                    return f"{type(k).__name__} key"
                stack.append(v)
        elif isinstance(node, list):
            stack.extend(node)
        elif not isinstance(node, _JSON_SCALARS):
            return type(node).__name__
    return None


def _strict_type(tag: str) -> type[Event] | None:
    if not _STRICT_BY_TYPE:
        for cls in get_args(InputEvent):
            _STRICT_BY_TYPE[cls.TYPE] = cls
    return _STRICT_BY_TYPE.get(tag)


def _metrics_class() -> type[MetricsRecorded]:
    global _METRICS
    if _METRICS is None:
        # The strict class of a tag subclasses the plain one (events._strict).
        _METRICS = cast("type[MetricsRecorded]", _strict_type("metrics_recorded"))
    return _METRICS


_METRICS: type[MetricsRecorded] | None = None


def canonical_values(values: dict[str, Any]) -> dict[str, Any]:
    """Metric values with every NaN as the one canonical NaN.

    A NaN's sign and payload survive msgpack but not JSON (``"NaN"``), so a negative
    NaN (numpy's ``inf - inf``) would hash differently once replicated through
    ``log --json | append``. The same dict is returned when it holds no NaN.
    """
    for v in values.values():
        if v != v:
            return {k: (math.nan if x != x else x) for k, x in values.items()}
    return values


def canonical_metrics(ev: Any) -> Any:
    """A metrics event ``ev`` with ``canonical_values``: itself when it holds no NaN,
    which the sum of its values says without a Python loop over them (inf - inf is NaN
    too, and looks closer)."""
    values = ev.values
    try:
        total = sum(values.values())
    except OverflowError:
        total = math.nan
    if total != total and canonical_values(values) is not values:
        return msgspec.structs.replace(ev, values=canonical_values(values))
    return ev


def _fix_nonfinite_values(obj: Any) -> Any:
    if isinstance(obj, dict) and obj.get("type") == "metrics_recorded":
        values = obj.get("values")
        if isinstance(values, dict):
            obj["values"] = {
                k: _NONFINITE_IN.get(v, v) if isinstance(v, str) else v for k, v in values.items()
            }
    return obj


def _reject_constant(token: str) -> float:
    return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[token]


_CHOICES = {
    "status": "completed, failed, pruned, timeout, cancelled, interrupted",
    "direction": "min, max",
}


def _msg(exc: Exception) -> str:
    text = str(exc)
    text = text[:1].lower() + text[1:] if text else type(exc).__name__
    if text.startswith("invalid enum value"):
        field = (_path(exc) or "").rsplit(".", 1)[-1]
        if field in _CHOICES:
            text += f" (one of: {_CHOICES[field]})"
    return text


def events_from_objs(objs: list[Any]) -> list[Event] | None:
    """Every wire dict of ``objs`` as a strict event in one msgspec call, or None when
    msgspec refuses any of them (the caller then converts one by one, which names the
    culprit and handles the "NaN" spellings and stray ``seq``/``hash`` fields).

    One call for a batch instead of one per event: about half the conversion time of a
    batch of metrics dicts."""
    try:
        events = msgspec.convert(objs, _input_list(), strict=True)
    except (msgspec.ValidationError, RecursionError):
        return None
    metrics = _metrics_class()
    replace = msgspec.structs.replace
    for i, ev in enumerate(events):
        if type(ev) is metrics:
            try:
                total = sum(ev.values.values())
            except OverflowError:
                total = math.nan
            if total != total and canonical_values(ev.values) is not ev.values:
                events[i] = replace(ev, values=canonical_values(ev.values))
    return events


def _input_list() -> type[list[Event]]:
    return list[InputEvent]


def event_from_obj(obj: Any) -> Event:
    """A wire-form dict (already parsed) as a strict event. Raises ``LedgerDecodeError``.

    numpy scalars (from a Python caller) are accepted wherever a number is, as their
    Python values."""
    if type(obj) is dict and obj.get("type") == "metrics_recorded":
        if "seq" not in obj and "hash" not in obj:
            ev = _metrics_fast(obj)
            if ev is not None:
                return ev
    cls, tag = _input_class(obj)
    if "seq" in obj or "hash" in obj:
        obj = {k: v for k, v in obj.items() if k not in ("seq", "hash")}
    if tag == "metrics_recorded":
        values = obj.get("values")
        if isinstance(values, dict):
            if any(type(v) is str for v in values.values()):
                obj = _fix_nonfinite_values(dict(obj))
            elif canonical_values(values) is not values:
                obj = dict(obj, values=canonical_values(values))
    try:
        return msgspec.convert(obj, cls, strict=True)
    except msgspec.ValidationError as exc:
        plain = numpy_scalars_as_python(obj)  # a Python caller's numpy numbers
        if plain is not obj:
            return event_from_obj(plain)
        raise _convert_error(exc, obj, tag) from None
    except RecursionError:
        raise LedgerDecodeError(
            f"nested deeper than {MAX_NESTING} levels", event_type=tag
        ) from None


def _metrics_fast(obj: dict[str, Any]) -> Event | None:
    """The bulk of every import and sweep: convert first, and only walk the values when
    their sum says a NaN is there (inf - inf is NaN too, and looks closer). None when
    msgspec refuses ("NaN" strings included): the careful path takes it."""
    try:
        ev = msgspec.convert(obj, _metrics_class(), strict=True)
    except (msgspec.ValidationError, RecursionError):
        return None
    return canonical_metrics(ev)


def _input_class(obj: Any) -> tuple[type[Event], str]:
    if not isinstance(obj, dict):
        raise LedgerDecodeError(f"an event must be a JSON object, got {type(obj).__name__}")
    tag = obj.get("type")
    if tag is None:
        raise LedgerDecodeError("missing field `type`", field="type")
    cls = _strict_type(tag) if isinstance(tag, str) else None
    if cls is None:
        known = ", ".join(sorted(EVENT_TYPES))
        raise LedgerDecodeError(f"unknown event type {tag!r} (known: {known})", field="type")
    return cls, tag


_I64_NOTE = " (2**63 - 1: steps, stages and counts are signed 64-bit ints)"


def _convert_error(exc: Exception, obj: dict[str, Any], tag: str) -> LedgerDecodeError:
    """The ``LedgerDecodeError`` for a refused wire dict; a bad metric value is named."""
    field, text = _path(exc), _msg(exc)
    values = obj.get("values")
    if field == "values[...]" and isinstance(values, dict):
        for name, value in values.items():
            if type(value) is int and not -(2**63) <= value <= 2**63 - 1:
                return LedgerDecodeError(
                    f"metric {name!r}: {_short_int(value)} does not fit a signed 64-bit int "
                    "(give a float for a larger number)",
                    event_type=tag,
                    field=f"values.{name}",
                )
            if type(value) not in (int, float):
                return LedgerDecodeError(
                    f"metric {name!r}: {text}", event_type=tag, field=f"values.{name}"
                )
    if "<= 9223372036854775807" in text:
        text += _I64_NOTE
    return LedgerDecodeError(text, event_type=tag, field=field)


def _short_int(value: int) -> str:
    text = str(value)
    return text if len(text) <= 24 else f"{text[:10]}...{text[-6:]} ({len(text)} digits)"


def _path(exc: Exception) -> str | None:
    m = re.search(r"at `\$\.?([^`]*)`", str(exc))
    return m.group(1) if m else None


def decode_json_event(line: bytes | str) -> Event:
    """One JSON Lines record as a strict event.

    The fast path is msgspec's typed decoder; only a line it refuses is re-parsed with
    Python's ``json`` (which knows the ``NaN``/``Infinity`` tokens) to accept the other
    spellings input allows (docs/architecture.md, Events) and to produce an error that
    names the field.
    """
    try:
        return _json_input.decode(line)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError, ValueError) as first:
        import json  # only for lines the fast path refused (its import costs ~1.5 ms)

        try:
            obj = json.loads(line, parse_constant=_reject_constant)
        except RecursionError:
            raise LedgerDecodeError(f"nested deeper than {MAX_NESTING} levels") from None
        except (ValueError, UnicodeDecodeError):
            raise LedgerDecodeError(f"invalid JSON: {_msg(first)}") from None
        if isinstance(obj, dict) and not _depth_ok(obj, MAX_NESTING + 1):
            raise LedgerDecodeError(
                f"nested deeper than {MAX_NESTING} levels",
                event_type=obj.get("type") if isinstance(obj.get("type"), str) else None,
            ) from None
        return event_from_obj(obj)


def decode_json_lines(
    lines: Iterable[bytes | str], *, source: str = "<stdin>"
) -> Iterator[tuple[int, Event]]:
    """(line number, event) for every non-blank line; errors say ``source:line``."""
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            if len(line) > 4 * MAX_EVENT_BYTES:
                raise EventTooLarge(
                    f"line is {len(line)} bytes; an event is at most {MAX_EVENT_BYTES} bytes "
                    "(1 MiB) encoded: store large data as an artifact"
                )
            yield lineno, decode_json_event(line)
        except (LedgerDecodeError, EventTooLarge) as exc:
            raise exc.located(f"{source}:{lineno}") from None


# -- JSON output ------------------------------------------------------------------


def to_json_safe(obj: Any) -> Any:
    """Replace non-finite floats by their spellings (docs/architecture.md, Events), recursively."""
    if isinstance(obj, float):
        if math.isfinite(obj):
            return obj
        return "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
    if isinstance(obj, dict):
        return {k: to_json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json_safe(v) for v in obj]
    return obj


def event_to_wire(env: Envelope, *, hash_hex: str | None = None) -> dict[str, Any]:
    """The wire form of a stored event plus ``seq``, ``id``, ``ts`` and ``hash``."""
    out = msgspec.to_builtins(env.event)
    out["id"] = env.id
    out["ts"] = format_ts(env.ts)
    out["seq"] = env.seq
    if hash_hex is not None:
        out["hash"] = hash_hex
    return to_json_safe(out)


def dumps(obj: Any) -> bytes:
    """Deterministic JSON (sorted keys) with the non-finite spelling of docs/architecture.md, Events."""
    return _json_out.encode(to_json_safe(obj))
