"""Preparing a batch: the CPU work of an append that does not need the log.

Outside the write lock, each event is decoded or validated, checked against the limits
(size, nesting, names), redacted, encoded to canonical msgpack and given its content
digest and id; each block's metric columns are encoded too. With several writers, one
writer's preparation overlaps another's commit. What needs the log (duplicates, rules,
seqs, the chain) is ``ledger.commit``'s, inside the write transaction.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

try:  # the same type hashlib exports, without loading OpenSSL at start-up
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - an interpreter without CPython's _blake2
    from hashlib import blake2b

import msgspec

from .codec import (
    MAX_EVENT_BYTES,
    MAX_NESTING,
    _canonical,
    _depth_ok,
    _msg,
    _path,
    canonical_values,
    encode_canonical,
    event_from_obj,
    events_from_objs,
    non_json_value,
    parse_ts,
)
from .columns import encode_columns
from .errors import EventError, EventTooLarge, LedgerDecodeError
from .events import (
    FREE_FORM,
    I64_MIN,
    U64_MAX,
    Envelope,
    InputEnvelope,
    InputEvent,
    _Base,
    strict_class,
)
from .redact import redact_fields
from .rules import check_names

__all__ = [
    "BLOCK_MAX_EVENTS",
    "Batch",
    "Prepared",
    "block_columns",
    "id_key",
    "prepare",
    "stored_digest",
]

BLOCK_MAX_EVENTS = 4096
_SECONDS = 9.2e12  # |ts| in seconds whose microseconds fit an int64 (NaN fails the test)
"""Events per stored block: a batch is stored as blocks of at most this many events."""

_STRICT = frozenset(InputEvent.__args__)  # type: ignore[attr-defined]
_STRICT_METRICS = strict_class("metrics_recorded")
_HEX32 = b"\xd9\x20"  # msgpack str8 header of a 32-character derived id
_validate = msgspec.msgpack.Decoder(InputEvent)
_encode_head = msgspec.msgpack.Encoder().encode
_REDACTABLE = {
    "study_created": ("config",),
    "case_created": ("params",),
    "eco_applied": ("params",),
    "run_started": ("config", "provenance"),
    "artifact_recorded": ("uri",),
}
# The fields whose nesting and JSON-ness an append checks: the free-form ones, and an
# artifact's URI (a string, scanned for credentials like the others).
_NESTED = {**FREE_FORM, "artifact_recorded": ("uri",)}


class Prepared(NamedTuple):
    """One event, ready to be numbered: its struct (id and ts removed), canonical bytes,
    content digest, id, id index key, encoded id, client ts (None: stamp at append) and
    position in the input."""

    event: Any
    content: bytes
    digest: bytes
    id: str
    key: bytes
    id_enc: bytes
    ts: int | None
    pos: int


class Batch(NamedTuple):
    items: list[Prepared]
    redacted: list[str]
    where_of: Any
    all_metrics: bool
    now: int  # the append time, for events without a client ts
    columns: list[bytes]  # each block's metric columns, if nothing turns out a duplicate


def _validate_content(content: bytes, tag: str) -> None:
    """Structs built in Python skip msgspec's constraints; decoding checks them."""
    try:
        _validate.decode(content)
    except msgspec.ValidationError as exc:
        raise LedgerDecodeError(_msg(exc), event_type=tag, field=_path(exc)) from None


def block_columns(events: Sequence[Any], times: Sequence[int]) -> bytes:
    """The metric columns a block of ``events`` stored at ``times`` carries: what an
    append writes, and what ``verify`` re-derives from the stored events."""
    pos = [i for i, e in enumerate(events) if e.TYPE == "metrics_recorded"]
    if len(pos) == len(events):
        return encode_columns(range(len(events)), times, events)
    return encode_columns(pos, [times[i] for i in pos], [events[i] for i in pos])


def stored_digest(key: bytes, value: Any) -> bytes:
    """The content digest an id index entry vouches for. An entry is its event's seq
    (8 bytes) and, when the id is not the content digest itself (a client's id), the
    digest (16 more); a derived id's key is its digest, so its entry stores the seq
    alone (format 2; format 1 stored the digest twice)."""
    return bytes(value[8:24]) if len(value) >= 24 else key


def id_key(event_id: str) -> bytes:
    """Index key of an id: derived ids (32 hex digits) are their own digest."""
    if len(event_id) == 32:
        try:
            return bytes.fromhex(event_id)
        except ValueError:
            pass
    return blake2b(event_id.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def prepare(
    events: Iterable[Any],
    *,
    source: str | None,
    redact: bool,
    wheres: Sequence[str] | None,
) -> Batch:
    """Check, redact, encode and identify ``events`` (wire dicts, event structs, or
    envelopes of another ledger: copied with their id and ts).

    Raises ``EventError`` subclasses located by ``wheres[i]`` (else ``source`` and the
    position); nothing is written here, so a refusal costs nothing but the work done.
    """
    if type(events) is not list:
        events = list(events)
    if events and all(type(e) is dict for e in events):
        events = events_from_objs(events) or events

    def where_of(i: int) -> str:
        if wheres is not None:
            return wheres[i]
        return f"{source}[{i}]" if source else f"event {i + 1} of the batch"

    out: list[Prepared] = []
    redacted: list[str] = []
    seen: set[str] = set()
    all_metrics = True
    fast: Any = _STRICT_METRICS
    copied: Any = InputEnvelope
    digest_of = blake2b
    fast_encode = _canonical.encode
    new_tuple = tuple.__new__  # a named tuple's own __new__ is a Python function
    unstamp = msgspec.structs.replace
    raw: Any
    item: Prepared
    for i, raw in enumerate(events):
        try:
            if type(raw) is dict:
                raw = event_from_obj(raw)  # a strict struct: checked as it was made
            if type(raw) is copied:  # another ledger's, read by its strict decoder
                ev, eid, ts = raw.event, raw.id, raw.ts
            elif type(raw) is fast and raw.ts is not None and raw.id is None:
                # A runner's: the Recorder stamps each event at its call. The time goes
                # to the envelope, as the general path would put it.
                t = raw.ts  # Unix seconds as parse_ts reads them; any other form through it
                ts = (
                    round(t * 1_000_000)
                    if type(t) is float and -_SECONDS < t < _SECONDS
                    else parse_ts(t)
                )
                ev, eid = unstamp(raw, ts=None), None
            else:
                ev, eid, ts = raw, None, None
            if type(ev) is fast and ev.id is None and ev.ts is None:
                # The bulk of every batch: a metrics struct already checked by its maker
                # (the codec, the Recorder, an importer, a sync's read) with no client id
                # or time left inside. Only what the general path would do for it, inline; a
                # sync's copy keeps its id and ts (int microseconds, as stored).
                content = fast_encode(ev)
                if len(content) <= MAX_EVENT_BYTES:
                    if ev.study not in seen or ev.run not in seen:
                        check_names(ev, seen)
                    digest = digest_of(content, digest_size=16).digest()
                    derived = digest.hex()
                    if eid is None or eid == derived:
                        eid, key, id_enc = derived, digest, _HEX32 + derived.encode()
                    else:
                        key, id_enc = id_key(eid), _encode_head(eid)
                    out.append(new_tuple(Prepared, (ev, content, digest, eid, key, id_enc, ts, i)))
                    continue
            item = _prepare_one(raw, i, redact, redacted, seen, where_of)
        except EventError as exc:
            raise exc.located(where_of(i)) from None
        if all_metrics and item.event.TYPE != "metrics_recorded":
            all_metrics = False
        out.append(item)
    # Everything that does not depend on the head is done here, before the write
    # lock: with several writers, one's column encoding overlaps another's commit.
    now = time.time_ns() // 1000
    return Batch(out, redacted, where_of, all_metrics and bool(out), now, _columns(out, now))


def _columns(out: list[Prepared], now: int) -> list[bytes]:
    """Each block's metric columns, for the layout the batch will have when nothing in
    it turns out a duplicate (the careful path re-derives them otherwise)."""
    return [
        block_columns(
            [p.event for p in out[start : start + BLOCK_MAX_EVENTS]],
            [now if p.ts is None else p.ts for p in out[start : start + BLOCK_MAX_EVENTS]],
        )
        for start in range(0, len(out), BLOCK_MAX_EVENTS)
    ]


def _as_event(raw: Any) -> tuple[Any, bool]:
    """The event struct of ``raw`` and whether msgspec already checked it."""
    if type(raw) in _STRICT:
        return raw, True
    if isinstance(raw, dict):
        return event_from_obj(raw), True
    if isinstance(raw, _Base):
        return raw, False
    raise LedgerDecodeError(
        f"expected an event (a dict or an event struct), got {type(raw).__name__}"
    )


def _encode(ev: Any, validated: bool) -> tuple[Any, bytes]:
    """Canonical bytes of ``ev``; a struct built in Python is validated by decoding
    them, and its metric values put in canonical form."""
    try:
        content = encode_canonical(ev)
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        raise LedgerDecodeError(f"cannot encode event: {exc}", event_type=ev.TYPE) from None
    if not validated:
        _validate_content(content, ev.TYPE)
        if ev.TYPE == "metrics_recorded" and canonical_values(ev.values) is not ev.values:
            ev = msgspec.structs.replace(ev, values=canonical_values(ev.values))
            content = encode_canonical(ev)
    if len(content) > MAX_EVENT_BYTES:
        raise EventTooLarge(
            f"event is {len(content)} bytes encoded; the limit is "
            f"{MAX_EVENT_BYTES} bytes (1 MiB): store large data as an artifact",
            event_type=ev.TYPE,
        )
    return ev, content


def _stored_id_ts(env: Envelope) -> tuple[str, int]:
    """The id and ts an envelope of another ledger is copied with. One decoded from a
    ledger holds a str and an int that msgpack stores; one built in Python is checked
    for them."""
    if type(env.id) is not str or type(env.ts) is not int or not I64_MIN <= env.ts <= U64_MAX:
        raise LedgerDecodeError(
            "an envelope to append needs a str `id` and an int `ts` (microseconds, 64-bit), "
            f"got {type(env.id).__name__} and {type(env.ts).__name__}"
        )
    return env.id, env.ts


def _prepare_one(
    raw: Any, i: int, redact: bool, redacted: list[str], seen: set[str], where_of: Any
) -> Prepared:
    """The general path: any event type, a client id or ts, structs built in Python,
    envelopes of another ledger (their id and ts kept; an id or ts inside the event
    dropped)."""
    stored = isinstance(raw, Envelope)
    ev, validated = _as_event(raw.event if stored else raw)
    client_id, client_ts = ev.id, ev.ts
    if stored:
        client_id, micros = _stored_id_ts(raw)
    if ev.id is not None or ev.ts is not None:
        ev = msgspec.structs.replace(ev, id=None, ts=None)
    if ev.TYPE in _NESTED:
        ev = _check_nested(ev, redact, redacted, where_of(i))
    ev, content = _encode(ev, validated)
    check_names(ev, seen)
    if stored:
        ts: int | None = micros
    else:
        ts = None if client_ts is None else parse_ts(client_ts)
    digest = blake2b(content, digest_size=16).digest()
    if client_id is None:
        eid = digest.hex()
        return Prepared(ev, content, digest, eid, digest, _HEX32 + eid.encode(), ts, i)
    return Prepared(
        ev, content, digest, client_id, id_key(client_id), _encode_head(client_id), ts, i
    )


def _check_nested(ev: Any, redact: bool, redacted: list[str], where: str) -> Any:
    tag = ev.TYPE
    for name in _NESTED[tag]:
        value = getattr(ev, name)
        if value is None:
            continue
        if not _depth_ok(value, MAX_NESTING - 1):
            raise EventTooLarge(
                f"`{name}` nests deeper than {MAX_NESTING} levels",
                event_type=tag,
                field=name,
            )
        bad = non_json_value(value)
        if bad is not None:
            raise LedgerDecodeError(
                f"`{name}` holds a {bad}, which has no JSON form; use strings, "
                "numbers, booleans, null, lists and objects",
                event_type=tag,
                field=name,
            )
    # Refuse an oversized event before the redaction scan walks all of it.
    size = len(encode_canonical(ev))
    if size > 2 * MAX_EVENT_BYTES:
        raise EventTooLarge(
            f"event is {size} bytes encoded; the limit is {MAX_EVENT_BYTES} bytes "
            "(1 MiB): store large data as an artifact",
            event_type=tag,
        )
    if redact and tag in _REDACTABLE:
        changed, found = redact_fields((f, getattr(ev, f)) for f in _REDACTABLE[tag])
        if changed:
            ev = msgspec.structs.replace(ev, **changed)
            redacted.extend(f"{where}: {p}" for p in found)
    return ev
