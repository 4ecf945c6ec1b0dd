"""Canonical JSON: sorted keys, 2-space indent, shortest floats, the spellings of
non-finite numbers, and nothing that depends on the hash seed (sets are sorted)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from projections.export.hashing_sink import Sink
from projections.export.safety import ExportError

__all__ = ["RawJSON", "canonical_json", "to_jsonable", "write_json"]


class RawJSON:
    """A value already encoded as compact canonical JSON, spliced into the document as
    it is (on one line) by :func:`canonical_json`: long number series stay one line
    each instead of one line per number, and are encoded in one C call."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)


def to_jsonable(obj: Any) -> Any:
    """A copy of ``obj`` that msgspec encodes canonically.

    Non-finite floats become the strings of docs/architecture.md, Events (msgspec would write
    ``null``); numpy scalars and arrays become Python numbers and lists; tuples become
    lists; sets become sorted lists (their iteration order follows the hash seed);
    mapping keys must be strings (ints are converted).

    Raises:
        ExportError: a mapping key that is not a string or an int.
    """
    if isinstance(obj, float):  # np.float64 too (a float subclass msgspec refuses)
        if math.isfinite(obj):
            return float(obj)
        return "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
    if obj is None or type(obj) in (str, bool, int) or isinstance(obj, RawJSON):
        return obj
    if isinstance(obj, bool):
        return bool(obj)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if isinstance(k, bool) or not isinstance(k, (str, int)):
                raise ExportError(
                    f"JSON object keys must be strings; got {k!r} ({type(k).__name__})"
                )
            out[str(k)] = to_jsonable(v)
        return out
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted(to_jsonable(v) for v in obj)
    if isinstance(obj, (datetime, date)):
        if isinstance(obj, datetime) and obj.tzinfo is not None:
            obj = obj.astimezone(timezone.utc)
        return obj
    tolist = getattr(obj, "tolist", None)  # numpy scalars and arrays
    if callable(tolist):
        return to_jsonable(tolist())
    return obj


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, 2-space indent, ``\\n`` at the end, shortest floats, UTF-8;
    :class:`RawJSON` values spliced in as they are."""
    import re
    import secrets

    import msgspec

    pieces: list[bytes] = []
    nonce = secrets.token_hex(16)  # no text in the document can forge a placeholder

    def splice(value: Any) -> Any:
        if isinstance(value, RawJSON):
            pieces.append(value.data)
            return f"\0raw-{nonce}-{len(pieces) - 1}\0"
        raise TypeError(f"Encoding objects of type {type(value).__name__} is unsupported")

    raw = msgspec.json.encode(to_jsonable(obj), order="sorted", enc_hook=splice)
    text = msgspec.json.format(raw, indent=2) + b"\n"
    if pieces:
        placeholder = re.compile(rb'"\\u0000raw-' + nonce.encode() + rb'-(\d+)\\u0000"')
        text = placeholder.sub(lambda m: pieces[int(m[1])], text)
    return text


def write_json(obj: Any, path: Sink) -> None:
    """Write :func:`canonical_json` of ``obj`` to a path or a binary file object."""
    data = canonical_json(obj)
    if hasattr(path, "write"):
        path.write(data)
    else:
        Path(path).write_bytes(data)  # type: ignore[arg-type]
