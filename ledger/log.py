"""The ``Ledger``: atomic batch append with every rule, streamed reads, verify.

An append is two phases. Outside the write lock, each event is decoded or validated,
redacted, encoded to canonical msgpack and given its content digest and id — the CPU
work that does not need the log. Inside one LMDB write transaction, the batch is checked
against what the log holds (duplicates, rules), given gapless seqs, chained and stored
as blocks; any refusal aborts the transaction, so a batch is all or nothing.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NamedTuple

try:  # the same type hashlib exports, without loading OpenSSL at start-up
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - an interpreter without CPython's _blake2
    from hashlib import blake2b

import msgspec

from . import _lmdb
from .blocks import GENESIS, BlockView, encode_block, seq_key
from .codec import (
    MAX_EVENT_BYTES,
    MAX_NESTING,
    _canonical,
    _depth_ok,
    _msg,
    _path,
    canonical_values,
    decode_json_lines,
    encode_canonical,
    event_from_obj,
    events_from_objs,
    non_json_value,
    parse_ts,
)
from .columns import encode_columns
from .errors import (
    CorruptionError,
    EventError,
    EventTooLarge,
    HeadMoved,
    IdempotencyConflict,
    LedgerDecodeError,
    LedgerError,
    StorageError,
)
from .events import InputEvent, _Base, strict_class
from .redact import redact_fields
from .rules import DUPLICATE, RefState, check_event, check_names, h16

if TYPE_CHECKING:
    from .frames import Frame

__all__ = ["FORMAT_VERSION", "AppendResult", "Head", "Ledger", "VerifyReport", "quiet_gc"]

FORMAT_VERSION = 2
"""2: blocks carry their metrics events as columns too (``ledger.columns``). Format 1
ledgers are read as they are and become format 2 with their next append."""
BLOCK_MAX_EVENTS = 4096
AUX_TABLES = ("checkpoints", "exports", "leases", "cursors")

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
}
_NESTED = {
    "study_created": ("config",),
    "case_created": ("params",),
    "eco_applied": ("params",),
    "run_started": ("config", "provenance"),
    "run_finished": ("resources",),
    "selection_recorded": ("policy",),
}


class Head(NamedTuple):
    seq: int
    hash: str


class AppendResult(msgspec.Struct, kw_only=True):
    appended: int
    duplicates: int
    head_seq: int
    head_hash: str
    first_seq: int | None = None
    redacted: list[str] = msgspec.field(default_factory=list)


class VerifyReport(msgspec.Struct, kw_only=True):
    ok: bool
    events: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    error: str | None = None


class _Prepared(NamedTuple):
    event: Any
    content: bytes
    digest: bytes
    id: str
    key: bytes
    id_enc: bytes
    ts: int | None
    pos: int


class _Batch(NamedTuple):
    items: list[_Prepared]
    redacted: list[str]
    where_of: Any
    all_metrics: bool
    now: int  # the append time, for events without a client ts
    columns: list[bytes]  # each block's metric columns, if nothing turns out a duplicate


@contextmanager
def quiet_gc() -> Iterator[None]:
    """The cyclic collector paused around work that allocates and frees millions of
    short-lived containers: an append (a tuple and a value dict per event) and a fold.
    Triggered by those allocations, the collector would walk every object the caller
    holds — its whole batch of events — again and again (it cost an append 8% at 100k
    events held, and doubled a fold). Refcounting frees what they make; the collector
    resumes when re-enabled (a caller that disabled it keeps it disabled)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _first(item: tuple[bytes, bytes]) -> bytes:
    return item[0]


class _Careful(Exception):
    """Internal: redo the batch event by event (it holds duplicates or a refusal)."""


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


def _stored_digest(key: bytes, value: Any) -> bytes:
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


class Ledger:
    """An append-only event log on LMDB.

    ``Ledger(path)`` opens (and by default creates) the ledger at ``path``; a path already
    open in this process shares its environment. Use it as a context manager or call
    ``close()``.

    Raises ``LedgerNotFound`` when ``create=False`` and nothing is there, ``UnsafeLocation``
    on a network file system, ``StorageError`` when the files are not a ledger.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = "results.ledger",
        *,
        create: bool = True,
        readonly: bool = False,
        max_size: int | None = None,
        map_size: int | None = None,
        allow_network_fs: bool = False,
    ) -> None:
        self.path = os.fspath(path)
        self.readonly = readonly
        self.max_size = max_size
        self._env = _lmdb.acquire(
            self.path,
            create=create and not readonly,
            readonly=readonly,
            map_size=map_size,
            allow_network_fs=allow_network_fs,
        )
        self._dbs = self._env.dbs
        self._closed = False
        try:
            self._meta = self._load_meta()
        except BaseException:
            self.close()
            raise

    @classmethod
    def open(cls, path: str | os.PathLike[str] = "results.ledger", **kwargs: Any) -> Ledger:
        return cls(path, **kwargs)

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            _lmdb.release(self._env)

    def __repr__(self) -> str:
        return f"Ledger({self.path!r})"

    # -- meta ---------------------------------------------------------------------

    def _load_meta(self) -> dict[str, Any]:
        with self._env.read() as txn:
            version = txn.get(b"format_version", db=self._dbs["meta"])
            ledger_id = txn.get(b"ledger_id", db=self._dbs["meta"])
        if version is None:
            if self.readonly or self._env.readonly:
                raise StorageError(f"{self.path} holds an LMDB file but no ledger meta")

            def init(txn: Any) -> None:
                db = self._dbs["meta"]
                if txn.get(b"format_version", db=db) is None:
                    _lmdb.put_checked(txn, b"format_version", str(FORMAT_VERSION).encode(), db=db)
                    _lmdb.put_checked(txn, b"ledger_id", os.urandom(16).hex().encode(), db=db)
                    _lmdb.put_checked(txn, b"head_seq", seq_key(0), db=db)
                    _lmdb.put_checked(txn, b"head_hash", GENESIS, db=db)

            self._env.write(init, max_size=self.max_size)
            return self._load_meta()
        fv = int(bytes(version))
        if fv > FORMAT_VERSION:
            raise StorageError(
                f"{self.path} was written by a newer version of results-ledger (format "
                f"{fv}, this one reads up to {FORMAT_VERSION}); upgrade to read it"
            )
        return {"format_version": fv, "ledger_id": bytes(ledger_id).decode()}

    @property
    def ledger_id(self) -> str:
        return self._meta["ledger_id"]

    @property
    def format_version(self) -> int:
        return self._meta["format_version"]

    def _head_in(self, txn: Any) -> tuple[int, bytes]:
        db = self._dbs["meta"]
        return int.from_bytes(bytes(txn.get(b"head_seq", db=db)), "big"), bytes(
            txn.get(b"head_hash", db=db)
        )

    @property
    def head(self) -> Head:
        with self._env.read() as txn:
            seq, h = self._head_in(txn)
        return Head(seq, h.hex())

    # -- append -------------------------------------------------------------------

    def append(
        self,
        events: Iterable[Any],
        *,
        source: str | None = None,
        redact: bool = True,
        expected_head: int | None = None,
        wheres: Sequence[str] | None = None,
        aux: Sequence[tuple[str, bytes, bytes | None]] = (),
    ) -> AppendResult:
        """Append ``events`` (wire-form dicts or event structs) as one atomic batch.

        An event whose id is already in the log with the same content is a no-op counted
        in ``duplicates``. ``expected_head`` makes the append conditional on the head seq
        (optimistic concurrency). ``aux`` writes ``(table, key, value)`` to the tables
        outside the log (``value`` None deletes) in the same transaction: the Recorder's
        run leases ride along with its events instead of costing a commit each. Raises
        ``EventError`` subclasses naming the event (by ``wheres[i]``, else ``source`` and
        its position), ``HeadMoved``, ``LedgerFull``, ``LedgerWriteFailed``; on any error
        nothing of the batch is appended.
        """
        if self.readonly:
            raise StorageError(f"{self.path} is open read-only")
        with quiet_gc():
            return self._append(events, source, redact, expected_head, wheres, aux)

    def _append(
        self,
        events: Iterable[Any],
        source: str | None,
        redact: bool,
        expected_head: int | None,
        wheres: Sequence[str] | None,
        aux: Sequence[tuple[str, bytes, bytes | None]],
    ) -> AppendResult:
        batch = self._prepare(events, source=source, redact=redact, wheres=wheres)
        tables = [(self._aux(table), key, value) for table, key, value in aux]

        def commit(careful: bool) -> AppendResult:
            def body(txn: Any) -> AppendResult:
                result = self._commit(txn, batch, expected_head, careful)
                for db, key, value in tables:
                    if value is None:
                        txn.delete(key, db=db)
                    else:
                        _lmdb.put_checked(txn, key, value, db=db)
                return result

            return self._env.write(body, max_size=self.max_size)

        try:
            result = commit(False)
        except _Careful:
            result = commit(True)
        result.redacted = batch.redacted
        if result.appended:
            self._meta["format_version"] = FORMAT_VERSION
        return result

    def append_jsonl(
        self,
        lines: Iterable[bytes | str],
        *,
        source: str = "<stdin>",
        redact: bool = True,
        expected_head: int | None = None,
    ) -> AppendResult:
        """Decode JSON Lines and append them as one batch; errors say ``source:line``."""
        wheres: list[str] = []
        events: list[Any] = []
        for lineno, ev in decode_json_lines(lines, source=source):
            wheres.append(f"{source}:{lineno}")
            events.append(ev)
        return self.append(events, redact=redact, expected_head=expected_head, wheres=wheres)

    def _prepare(
        self,
        events: Iterable[Any],
        *,
        source: str | None,
        redact: bool,
        wheres: Sequence[str] | None,
    ) -> _Batch:
        if type(events) is not list:
            events = list(events)
        if events and all(type(e) is dict for e in events):
            events = events_from_objs(events) or events
        out: list[_Prepared] = []
        redacted: list[str] = []
        seen: set[str] = set()
        all_metrics = True
        replace = msgspec.structs.replace
        encode = encode_canonical
        strict = _STRICT

        def where_of(i: int) -> str:
            if wheres is not None:
                return wheres[i]
            return f"{source}[{i}]" if source else f"event {i + 1} of the batch"

        fast = _STRICT_METRICS
        digest_of = blake2b
        fast_encode = _canonical.encode
        new_tuple = tuple.__new__  # a named tuple's own __new__ is a Python function
        for i, raw in enumerate(events):
            if type(raw) is dict:
                try:
                    raw = event_from_obj(raw)  # a strict struct: checked as it was made
                except EventError as exc:
                    raise exc.located(where_of(i)) from None
            if type(raw) is fast and raw.id is None and raw.ts is None:
                # The bulk of every batch: a metrics struct already checked by its maker
                # (the codec, the Recorder, an importer) with no client id or time. Only
                # what the general path below would do for it, inline.
                content = fast_encode(raw)
                if len(content) <= MAX_EVENT_BYTES:
                    if raw.study not in seen or raw.run not in seen:
                        try:
                            check_names(raw, seen)
                        except EventError as exc:
                            raise exc.located(where_of(i)) from None
                    digest = digest_of(content, digest_size=16).digest()
                    eid = digest.hex()
                    out.append(
                        new_tuple(
                            _Prepared,
                            (raw, content, digest, eid, digest, _HEX32 + eid.encode(), None, i),
                        )
                    )
                    continue
            try:
                if type(raw) in strict:
                    ev, validated = raw, True
                elif isinstance(raw, dict):
                    ev, validated = event_from_obj(raw), True
                elif isinstance(raw, _Base):
                    ev, validated = raw, False
                else:
                    raise LedgerDecodeError(
                        f"expected an event (a dict or an event struct), got {type(raw).__name__}"
                    )
                client_id, client_ts = ev.id, ev.ts
                if client_id is not None or client_ts is not None:
                    ev = replace(ev, id=None, ts=None)
                if ev.TYPE in _NESTED:
                    ev = self._check_nested(ev, redact, redacted, where_of(i))
                if all_metrics and ev.TYPE != "metrics_recorded":
                    all_metrics = False
                try:
                    content = encode(ev)
                except (TypeError, ValueError, OverflowError, RecursionError) as exc:
                    raise LedgerDecodeError(
                        f"cannot encode event: {exc}", event_type=ev.TYPE
                    ) from None
                if not validated:
                    _validate_content(content, ev.TYPE)
                    if (
                        ev.TYPE == "metrics_recorded"
                        and canonical_values(ev.values) is not ev.values
                    ):
                        ev = replace(ev, values=canonical_values(ev.values))
                        content = encode(ev)
                if len(content) > MAX_EVENT_BYTES:
                    raise EventTooLarge(
                        f"event is {len(content)} bytes encoded; the limit is "
                        f"{MAX_EVENT_BYTES} bytes (1 MiB): store large data as an artifact",
                        event_type=ev.TYPE,
                    )
                check_names(ev, seen)
                ts = None if client_ts is None else parse_ts(client_ts)
                digest = blake2b(content, digest_size=16).digest()
                if client_id is None:
                    eid = digest.hex()
                    out.append(
                        _Prepared(ev, content, digest, eid, digest, _HEX32 + eid.encode(), ts, i)
                    )
                else:
                    out.append(
                        _Prepared(
                            ev,
                            content,
                            digest,
                            client_id,
                            id_key(client_id),
                            _encode_head(client_id),
                            ts,
                            i,
                        )
                    )
            except EventError as exc:
                raise exc.located(where_of(i)) from None
        # Everything that does not depend on the head is done here, before the write
        # lock: with several writers, one's column encoding overlaps another's commit.
        now = time.time_ns() // 1000
        all_metrics = all_metrics and bool(out)
        columns = [
            block_columns(
                [p.event for p in out[start : start + BLOCK_MAX_EVENTS]],
                [now if p.ts is None else p.ts for p in out[start : start + BLOCK_MAX_EVENTS]],
            )
            for start in range(0, len(out), BLOCK_MAX_EVENTS)
        ]
        return _Batch(out, redacted, where_of, all_metrics, now, columns)

    @staticmethod
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

    def _commit(
        self,
        txn: Any,
        batch: _Batch,
        expected_head: int | None,
        careful: bool,
    ) -> AppendResult:
        """Check, number, chain and store one batch inside the write transaction.

        The optimistic path (``careful=False``, ``_commit_bulk``) assumes no event is a
        duplicate and raises ``_Careful`` when that (or a rule) says otherwise; the
        careful path then redoes the batch here, event by event, so a duplicate is
        skipped and a refusal names its event.
        """
        dbs = self._dbs
        ids_db, refs_db, events_db = dbs["ids"], dbs["refs"], dbs["events"]
        prepared, where_of = batch.items, batch.where_of
        head_seq, head_hash = self._head_in(txn)
        if expected_head is not None and expected_head != head_seq:
            raise HeadMoved(expected_head, head_seq)
        if not careful and len({p.key for p in prepared}) != len(prepared):
            raise _Careful
        state = RefState(lambda k: txn.get(k, db=refs_db))
        runs = state.runs
        now = batch.now
        now_enc = _encode_head(now)
        if not careful:
            return self._commit_bulk(txn, batch, head_seq, head_hash, state, now)
        seq, h = head_seq, head_hash
        duplicates = 0
        block_events: list[bytes] = []
        block_hashes: list[bytes] = []
        block_studies: set[str] = set()
        block_structs: list[Any] = []
        block_times: list[int] = []
        first_seq: int | None = None
        put, get = txn.put, txn.get
        join = b"".join

        def flush() -> None:
            start = seq - len(block_events) + 1
            columns = block_columns(block_structs, block_times)
            _lmdb.put_checked(
                txn,
                seq_key(start),
                encode_block(block_events, block_hashes, columns),
                db=events_db,
                append=True,
            )
            for study in block_studies:
                _lmdb.put_checked(txn, h16(study) + seq_key(start), b"", db=dbs["study_blocks"])
            for pending in (block_events, block_hashes, block_studies, block_structs, block_times):
                pending.clear()

        for item in prepared:
            nxt = seq + 1
            seq8 = nxt.to_bytes(8, "big")
            ev = item.event
            value = seq8 if item.key == item.digest else seq8 + item.digest
            if not put(item.key, value, db=ids_db, overwrite=False):
                existing = get(item.key, db=ids_db)
                if existing is not None and _stored_digest(item.key, existing) == item.digest:
                    duplicates += 1
                    continue
                other = int.from_bytes(bytes(existing[:8]), "big") if existing else "?"
                raise IdempotencyConflict(
                    f"id {item.id!r} is already in the log (seq {other}) with other "
                    "content; a correction is a new event: give it another id, or none",
                    where=where_of(item.pos),
                    event_type=ev.TYPE,
                    field="id",
                )
            info = runs.get((ev.study, ev.run)) if ev.TYPE == "metrics_recorded" else None
            if info is None or info[1]:
                try:
                    verdict = check_event(ev, nxt, item.digest, state)
                except EventError as exc:
                    raise exc.located(where_of(item.pos)) from None
                if verdict is DUPLICATE:
                    txn.delete(item.key, db=ids_db)
                    duplicates += 1
                    continue
            stored = join(
                (
                    b"\x94\xcf",
                    seq8,
                    item.id_enc,
                    now_enc if item.ts is None else _encode_head(item.ts),
                    item.content,
                )
            )
            h = blake2b(h + seq8 + stored, digest_size=32).digest()
            seq = nxt
            if first_seq is None:
                first_seq = nxt
            block_structs.append(ev)
            block_times.append(now if item.ts is None else item.ts)
            block_events.append(stored)
            block_hashes.append(h)
            block_studies.add(ev.study)
            if len(block_events) >= BLOCK_MAX_EVENTS:
                flush()
        if block_events:
            flush()
        for key, value in state.writes():
            _lmdb.put_checked(txn, key, value, db=refs_db)
        if seq != head_seq:
            self._set_head(txn, seq, h)
        return AppendResult(
            appended=seq - head_seq,
            duplicates=duplicates,
            head_seq=seq,
            head_hash=h.hex(),
            first_seq=first_seq,
        )

    def _commit_bulk(
        self,
        txn: Any,
        batch: _Batch,
        head_seq: int,
        head_hash: bytes,
        state: RefState,
        now: int,
    ) -> AppendResult:
        """The optimistic path: no event is a duplicate and every rule holds, so each
        event's seq is known up front and the rules are one pass (for a metrics event,
        a cached "its run is open"); numbering, chaining and storing are then list
        comprehensions over the batch. Any doubt raises ``_Careful``, and the careful
        path redoes the batch event by event, naming the event and the rule."""
        dbs = self._dbs
        prepared = batch.items
        if batch.all_metrics:
            for study, run in {(p.event.study, p.event.run) for p in prepared}:
                info = state.run(study, run)
                if info is None or info[1]:
                    raise _Careful
        else:
            runs = state.runs
            seq = head_seq
            for item in prepared:
                seq += 1
                ev = item.event
                if ev.TYPE == "metrics_recorded":
                    info = runs.get((ev.study, ev.run))
                    if info is not None and not info[1]:
                        continue
                try:
                    verdict = check_event(ev, seq, item.digest, state)
                except EventError:
                    raise _Careful from None
                if verdict is DUPLICATE:
                    raise _Careful
        n = len(prepared)
        seq8s = [s.to_bytes(8, "big") for s in range(head_seq + 1, head_seq + n + 1)]
        now_enc = _encode_head(now)
        join = b"".join
        stored = [
            join(
                (
                    b"\x94\xcf",
                    s8,
                    p.id_enc,
                    now_enc if p.ts is None else _encode_head(p.ts),
                    p.content,
                )
            )
            for s8, p in zip(seq8s, prepared)
        ]
        hashes = []
        h = head_hash
        append = hashes.append
        for s8, data in zip(seq8s, stored):
            h = blake2b(h + s8 + data, digest_size=32).digest()
            append(h)
        id_items = [
            (p.key, s8 if p.key == p.digest else s8 + p.digest) for p, s8 in zip(prepared, seq8s)
        ]
        id_items.sort(key=_first)
        consumed, added = txn.cursor(dbs["ids"]).putmulti(id_items, overwrite=False)
        if added != consumed:
            raise _Careful
        for start in range(0, n, BLOCK_MAX_EVENTS):
            end = min(n, start + BLOCK_MAX_EVENTS)
            first = seq_key(head_seq + 1 + start)
            events = [p.event for p in prepared[start:end]]
            columns = batch.columns[start // BLOCK_MAX_EVENTS]
            _lmdb.put_checked(
                txn,
                first,
                encode_block(stored[start:end], hashes[start:end], columns),
                db=dbs["events"],
                append=True,
            )
            for study in {e.study for e in events}:
                _lmdb.put_checked(txn, h16(study) + first, b"", db=dbs["study_blocks"])
        for key, value in state.writes():
            _lmdb.put_checked(txn, key, value, db=dbs["refs"])
        self._set_head(txn, head_seq + n, h)
        return AppendResult(
            appended=n,
            duplicates=0,
            head_seq=head_seq + n,
            head_hash=h.hex(),
            first_seq=head_seq + 1,
        )

    def _set_head(self, txn: Any, seq: int, h: bytes) -> None:
        """The new head; a format 1 ledger becomes format 2 with the first block that
        carries columns, so an older release refuses it by its version instead of
        failing on a block layout it does not know."""
        meta = self._dbs["meta"]
        _lmdb.put_checked(txn, b"head_seq", seq_key(seq), db=meta)
        _lmdb.put_checked(txn, b"head_hash", h, db=meta)
        if self._meta["format_version"] < FORMAT_VERSION:
            _lmdb.put_checked(txn, b"format_version", str(FORMAT_VERSION).encode(), db=meta)

    # -- read ---------------------------------------------------------------------

    def _blocks(self, txn: Any, after: int, study: str | None) -> Iterator[BlockView]:
        """Blocks holding events with seq > ``after`` (of ``study`` when given), in order."""
        events_db = self._dbs["events"]
        if study is None:
            found = _lmdb.block_at_or_before(txn, events_db, seq_key(after + 1))
            start = found[0] if found else seq_key(0)
            for key, value in _lmdb.cursor_iter_from(txn, events_db, start):
                block = BlockView(int.from_bytes(key, "big"), value)
                if block.last_seq > after:
                    yield block
            return
        prefix = h16(study)
        index = self._dbs["study_blocks"]
        found = _lmdb.block_at_or_before(txn, index, prefix + seq_key(after + 1))
        start = (
            found[0] if found and bytes(found[0][:16]) == prefix else prefix + seq_key(after + 1)
        )
        for key, _ in _lmdb.cursor_iter_from(txn, index, start):
            key = bytes(key)
            if key[:16] != prefix:
                return
            first = key[16:]
            value = txn.get(first, db=events_db)
            if value is None:
                raise CorruptionError(
                    f"study index points at a missing block (seq {int.from_bytes(first, 'big')})"
                )
            block = BlockView(int.from_bytes(first, "big"), value)
            if block.last_seq > after:
                yield block

    def _prev_hash(self, txn: Any, first_seq: int) -> bytes:
        if first_seq <= 1:
            return GENESIS
        found = _lmdb.block_at_or_before(txn, self._dbs["events"], seq_key(first_seq - 1))
        if found is None:
            raise CorruptionError(f"no block before seq {first_seq}", seq=first_seq)
        return BlockView(int.from_bytes(found[0], "big"), found[1]).last_hash

    def read_batches(
        self,
        since: int = 0,
        until: int | None = None,
        *,
        study: str | None = None,
        types: Iterable[str] | None = None,
        with_hashes: bool = False,
        chunk_blocks: int = 64,
        chunk_events: int = 8192,
    ) -> Iterator[list[Any]]:
        """Envelopes with ``since < seq <= until`` in seq order, a list per chunk.

        A chunk ends after ``chunk_events`` events (or ``chunk_blocks`` blocks), so memory
        stays flat whatever the stored block size. Each chunk is read in its own short
        read transaction, so a slow consumer never pins the store; the upper bound is
        fixed at the head when the read starts.
        """
        self._env.check_pid()
        type_set = frozenset(types) if types is not None else None
        limit = self.head.seq if until is None else min(until, self.head.seq)
        pos = max(since, 0)
        prev: bytes | None = None
        while pos < limit:
            out: list[Any] = []
            with self._env.read() as txn:
                taken = 0
                for block in self._blocks(txn, pos, study):
                    if block.first_seq > limit:
                        pos = limit
                        break
                    envs = block.decode()
                    if with_hashes:
                        if prev is None or study is not None:
                            prev = self._prev_hash(txn, block.first_seq)
                        for env, hh in zip(envs, block.hashes(prev)):
                            env.hash = hh
                        prev = block.last_hash
                    lo = max(0, pos + 1 - block.first_seq)
                    hi = min(block.count, limit - block.first_seq + 1)
                    if lo or hi < block.count:
                        envs = envs[lo:hi]
                    if study is not None:
                        envs = [e for e in envs if e.event.study == study]
                    if type_set is not None:
                        envs = [e for e in envs if e.event.TYPE in type_set]
                    out.extend(envs)
                    pos = min(block.last_seq, limit)
                    taken += 1
                    if taken >= chunk_blocks or len(out) >= chunk_events:
                        break
                else:
                    pos = limit
            if out:
                yield out

    def read_frames(
        self,
        since: int = 0,
        until: int | None = None,
        *,
        study: str | None = None,
        chunk_events: int = 8192,
    ) -> Iterator[Frame]:
        """The events ``since < seq <= until`` as frames (``ledger.frames``): metrics
        events as numpy columns, the others as envelopes; about ``chunk_events`` events
        a frame, each read in its own short read transaction."""
        import numpy as np

        from .columns import parse_columns
        from .frames import FrameBuilder

        self._env.check_pid()
        limit = self.head.seq if until is None else min(until, self.head.seq)
        pos = max(since, 0)
        while pos < limit:
            builder = FrameBuilder()
            start, taken = pos, 0
            with self._env.read() as txn:
                for block in self._blocks(txn, pos, study):
                    if block.first_seq > limit:
                        pos = limit
                        break
                    lo = max(0, pos + 1 - block.first_seq)
                    hi = min(block.count, limit - block.first_seq + 1)
                    raw = block.columns
                    if raw:
                        cols = parse_columns(raw, block.first_seq, block.count)
                        builder.add_columns(cols, block.first_seq, lo, hi, study)
                        if len(cols.pos) < block.count:
                            is_metric = np.zeros(block.count, bool)
                            is_metric[cols.pos] = True
                            for i in np.flatnonzero(~is_metric[lo:hi]).tolist():
                                env = block.decode_at(lo + i)
                                if study is None or env.event.study == study:
                                    builder.other.append(env)
                    else:
                        envs = block.decode()
                        if lo or hi < block.count:
                            envs = envs[lo:hi]
                        if study is not None:
                            envs = [e for e in envs if e.event.study == study]
                        builder.add_envelopes(envs)
                    taken += hi - lo
                    pos = min(block.last_seq, limit)
                    if taken >= chunk_events:
                        break
                else:
                    pos = limit
            yield builder.build(start, pos)

    def read(
        self,
        since: int = 0,
        until: int | None = None,
        *,
        study: str | None = None,
        types: Iterable[str] | None = None,
        with_hashes: bool = False,
    ) -> Iterator[Any]:
        """Stream envelopes with ``since < seq <= until`` in seq order."""
        for batch in self.read_batches(
            since, until, study=study, types=types, with_hashes=with_hashes
        ):
            yield from batch

    def hash_at(self, seq: int) -> str:
        """The chain hash after event ``seq`` (``GENESIS`` for 0)."""
        if seq <= 0:
            return GENESIS.hex()
        with self._env.read() as txn:
            head_seq, _ = self._head_in(txn)
            if seq > head_seq:
                raise LedgerError(f"seq {seq} is past the head ({head_seq})")
            found = _lmdb.block_at_or_before(txn, self._dbs["events"], seq_key(seq))
            if found is None:
                raise CorruptionError(f"no block holds seq {seq}", seq=seq)
            block = BlockView(int.from_bytes(found[0], "big"), found[1])
            if seq == block.last_seq:
                return block.last_hash.hex()
            return block.hashes(self._prev_hash(txn, block.first_seq))[seq - block.first_seq].hex()

    def studies(self) -> list[str]:
        """Every study name, in code-point order."""
        names = []
        with self._env.read() as txn:
            for key, value in _lmdb.cursor_iter_from(txn, self._dbs["refs"], b"N"):
                if bytes(key[:1]) != b"N":
                    break
                names.append(bytes(value).decode())
        return sorted(names)

    def has_study(self, study: str) -> bool:
        with self._env.read() as txn:
            return txn.get(b"S" + h16(study), db=self._dbs["refs"]) is not None

    # -- integrity ------------------------------------------------------------------

    def verify(self) -> VerifyReport:
        """Recompute the whole chain; name the first bad seq. Never raises on corruption."""
        events = 0
        h = GENESIS
        expected = 1
        try:
            with self._env.read() as txn:
                head_seq, head_hash = self._head_in(txn)
                for key, value in _lmdb.cursor_iter_from(txn, self._dbs["events"], seq_key(0)):
                    first = int.from_bytes(bytes(key), "big")
                    if first != expected:
                        return self._bad(events, head_seq, head_hash, expected, "missing events")
                    block = BlockView(first, value)
                    envs = block.decode()
                    for i in range(block.count):
                        seq = first + i
                        h = blake2b(
                            h + seq.to_bytes(8, "big") + bytes(block.event_bytes(i)),
                            digest_size=32,
                        ).digest()
                        if h[:8] != block.prefix(i) or envs[i].seq != seq:
                            return self._bad(events, head_seq, head_hash, seq, "hash mismatch")
                        events += 1
                    if h != block.last_hash:
                        return self._bad(
                            events, head_seq, head_hash, block.last_seq, "block hash mismatch"
                        )
                    stored_columns = block.columns
                    if stored_columns and bytes(stored_columns) != block_columns(
                        [e.event for e in envs], [e.ts for e in envs]
                    ):
                        return self._bad(
                            events,
                            head_seq,
                            head_hash,
                            first,
                            "the block's metric columns disagree with its events",
                        )
                    expected = block.last_seq + 1
                if events != head_seq:
                    return self._bad(
                        events,
                        head_seq,
                        head_hash,
                        min(events, head_seq) + 1,
                        f"the log holds {events} events but the head says {head_seq}",
                    )
                if h != head_hash:
                    return self._bad(events, head_seq, head_hash, head_seq, "head hash mismatch")
                ids = txn.stat(self._dbs["ids"])["entries"]
                if ids != events:
                    return VerifyReport(
                        ok=False,
                        events=events,
                        head_seq=head_seq,
                        head_hash=head_hash.hex(),
                        error=f"storage error: the id index holds {ids} entries for {events} "
                        "events (it is damaged: re-sent events could be misjudged); restore a "
                        "backup or rebuild with `ledger log --json | ledger append`",
                    )
        except CorruptionError as exc:
            seq = exc.seq if exc.seq is not None else expected
            return VerifyReport(
                ok=False,
                events=events,
                head_seq=-1,
                head_hash="",
                first_bad_seq=seq,
                error=f"corrupt at seq {seq}: {exc}",
            )
        except LedgerError as exc:
            return VerifyReport(
                ok=False,
                events=events,
                head_seq=-1,
                head_hash="",
                first_bad_seq=expected,
                error=f"storage error: {exc}",
            )
        return VerifyReport(ok=True, events=events, head_seq=head_seq, head_hash=head_hash.hex())

    @staticmethod
    def _bad(events: int, head_seq: int, head_hash: bytes, seq: int, why: str) -> VerifyReport:
        return VerifyReport(
            ok=False,
            events=events,
            head_seq=head_seq,
            head_hash=head_hash.hex(),
            first_bad_seq=seq,
            error=f"corrupt at seq {seq}: {why}",
        )

    # -- tables outside the event log ----------------------------------------------

    def _aux(self, table: str) -> Any:
        if table not in AUX_TABLES:
            raise LedgerError(f"unknown table {table!r} (known: {', '.join(AUX_TABLES)})")
        return self._dbs[table]

    def _writable(self) -> None:
        if self.readonly:
            raise StorageError(f"{self.path} is open read-only; read-only commands never write")

    def aux_put(self, table: str, key: bytes, value: bytes) -> None:
        """Write to a table outside the event log (checkpoints, export journal, leases)."""
        self._writable()
        db = self._aux(table)
        self._env.write(
            lambda txn: _lmdb.put_checked(txn, key, value, db=db), max_size=self.max_size
        )

    def aux_delete(self, table: str, key: bytes) -> None:
        self._writable()
        db = self._aux(table)
        self._env.write(lambda txn: txn.delete(key, db=db), max_size=self.max_size)

    def aux_get(self, table: str, key: bytes) -> bytes | None:
        db = self._aux(table)
        if db is None:  # an optional table an older, read-only ledger does not have
            return None
        with self._env.read() as txn:
            value = txn.get(key, db=db)
            return None if value is None else bytes(value)

    def aux_items(self, table: str, prefix: bytes = b"") -> list[tuple[bytes, bytes]]:
        db = self._aux(table)
        out: list[tuple[bytes, bytes]] = []
        if db is None:  # an optional table an older, read-only ledger does not have
            return out
        with self._env.read() as txn:
            for key, value in _lmdb.cursor_iter_from(txn, db, prefix):
                key = bytes(key)
                if not key.startswith(prefix):
                    break
                out.append((key, bytes(value)))
        return out

    def storage_info(self) -> dict[str, Any]:
        info = self._env.info()
        with self._env.read() as txn:
            info["ids"] = txn.stat(self._dbs["ids"])["entries"]
            info["blocks"] = txn.stat(self._dbs["events"])["entries"]
        return info
