"""Committing a prepared batch inside the write transaction, on any backend.

The batch is checked against what the log holds (duplicates, the rules), given gapless
seqs after the head, chained, and stored as blocks with their metric columns; the id
index and the rules' reference state move with it, then the head. Any refusal raises,
and the backend then leaves nothing of the transaction behind: a batch is all or
nothing.

Two paths. The optimistic one (``_commit_bulk``) assumes no event is a duplicate and
every rule holds, so each event's seq is known up front and numbering, chaining and
storing are list comprehensions over the batch; any doubt raises ``Careful``. The
careful one then redoes the batch in a new transaction, event by event, so a duplicate
is skipped and a refusal names its event.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .blocks import block_parts, encode_block
from .chain import chain_hashes
from .errors import EventError, HeadMoved, IdempotencyConflict
from .outcomes import AppendResult
from .prepare import BLOCK_MAX_EVENTS, Batch, Prepared, block_columns, stored_digest
from .rules import DUPLICATE, RefState, check_event, h16, ref_keys
from .store.base import BlockParts, WriteView

__all__ = ["FORMAT_VERSION", "Careful", "commit_batch"]

FORMAT_VERSION = 3
"""3: every block carries checksums of its header, events and columns, checked by every
read (``ledger.blocks``); 2: blocks carry their metrics events as columns too
(``ledger.columns``). Older ledgers are read as they are and take the current format
with their next append (their old blocks stay as they were written)."""

_encode_head = msgspec.msgpack.Encoder().encode
_ENVELOPE4 = b"\x94\xcf"  # msgpack: an array of 4, then a uint64 (the seq)


class Careful(Exception):
    """Internal: redo the batch event by event (it holds duplicates or a refusal)."""


def _others(events: list[Any]) -> list[int]:
    """Positions of the events that are not metrics events (the frames checksum covers
    their bytes with the columns: ``ledger.blocks``)."""
    return [i for i, e in enumerate(events) if e.TYPE != "metrics_recorded"]


def _only_metrics(events: list[Any]) -> bool:
    return all(e.TYPE == "metrics_recorded" for e in events)


def _first(item: tuple[bytes, bytes]) -> bytes:
    return item[0]


def _stored(seq8: bytes, item: Prepared, now_enc: bytes) -> bytes:
    """The stored envelope ``[seq, id, ts, content]`` that the chain hashes."""
    ts_enc = now_enc if item.ts is None else _encode_head(item.ts)
    return b"".join((_ENVELOPE4, seq8, item.id_enc, ts_enc, item.content))


def _index_entry(item: Prepared, seq8: bytes) -> bytes:
    """An id index entry: the seq, plus the digest when the id is a client's (a derived
    id's key is its digest already)."""
    return seq8 if item.key == item.digest else seq8 + item.digest


def _load_refs(view: WriteView, batch: Batch) -> RefState:
    """The rules' reference state, with every key the batch can touch fetched in one
    call (one round trip to a database server instead of one per lookup)."""
    state = RefState(view.ref)
    keys = ref_keys([item.event for item in batch.items])
    found = view.refs_get(sorted(keys))
    for key in keys:
        raw = found.get(key)
        state.cache[key] = None if raw is None else msgspec.msgpack.decode(raw)
    return state


def _finish(view: WriteView, state: RefState, seq: int, h: bytes, format_version: int) -> None:
    view.refs_put(state.writes())
    view.set_head(seq, h)
    if format_version < FORMAT_VERSION:
        # An older ledger takes the current format with its first new block, so an older
        # release refuses it by its version instead of misreading the new layout.
        view.meta_put("format_version", str(FORMAT_VERSION).encode())


def commit_batch(
    view: WriteView,
    batch: Batch,
    expected_head: int | None,
    careful: bool,
    format_version: int,
) -> AppendResult:
    """Check, number, chain and store ``batch``. Raises ``HeadMoved``, ``EventError``
    subclasses (located), or ``Careful`` from the optimistic path."""
    head_seq, head_hash = view.head()
    if expected_head is not None and expected_head != head_seq:
        raise HeadMoved(expected_head, head_seq)
    if not careful and len({p.key for p in batch.items}) != len(batch.items):
        raise Careful
    state = _load_refs(view, batch)
    if not careful:
        return _commit_bulk(view, batch, head_seq, head_hash, state, format_version)
    return _commit_careful(view, batch, head_seq, head_hash, state, format_version)


def _bulk_rules_hold(batch: Batch, head_seq: int, state: RefState) -> bool:
    """One pass of the rules assuming no duplicate; False at the first doubt."""
    if batch.all_metrics:
        for study, run in {(p.event.study, p.event.run) for p in batch.items}:
            info = state.run(study, run)
            if info is None or info[1]:
                return False
        return True
    runs = state.runs
    seq = head_seq
    for item in batch.items:
        seq += 1
        ev = item.event
        if ev.TYPE == "metrics_recorded":
            info = runs.get((ev.study, ev.run))
            if info is not None and not info[1]:
                continue
        try:
            verdict = check_event(ev, seq, item.digest, state)
        except EventError:
            return False
        if verdict is DUPLICATE:
            return False
    return True


def _commit_bulk(
    view: WriteView,
    batch: Batch,
    head_seq: int,
    head_hash: bytes,
    state: RefState,
    format_version: int,
) -> AppendResult:
    prepared = batch.items
    if not _bulk_rules_hold(batch, head_seq, state):
        raise Careful
    n = len(prepared)
    if n == 0:
        return AppendResult(appended=0, duplicates=0, head_seq=head_seq, head_hash=head_hash.hex())
    seq8s = [s.to_bytes(8, "big") for s in range(head_seq + 1, head_seq + n + 1)]
    now_enc = _encode_head(batch.now)
    join, head4, enc = b"".join, _ENVELOPE4, _encode_head  # _stored, inlined: per event
    stored = [
        join((head4, s8, p.id_enc, now_enc if p.ts is None else enc(p.ts), p.content))
        for s8, p in zip(seq8s, prepared)
    ]
    hashes = chain_hashes(head_hash, seq8s, stored)
    id_items = [(p.key, _index_entry(p, s8)) for p, s8 in zip(prepared, seq8s)]
    id_items.sort(key=_first)
    if not view.ids_insert(id_items):
        raise Careful
    for start in range(0, n, BLOCK_MAX_EVENTS):
        end = min(n, start + BLOCK_MAX_EVENTS)
        columns = batch.columns[start // BLOCK_MAX_EVENTS]
        events = [p.event for p in prepared[start:end]]
        block = encode_block(
            stored[start:end],
            hashes[start:end],
            columns,
            first_seq=head_seq + 1 + start,
            others=() if batch.all_metrics else _others(events),
        )
        view.block_put(
            head_seq + 1 + start,
            head_seq + end,
            block,
            sorted({h16(e.study) for e in events}),
            BlockParts(*block_parts(block, columns, batch.all_metrics or _only_metrics(events))),
        )
    _finish(view, state, head_seq + n, hashes[-1], format_version)
    return AppendResult(
        appended=n,
        duplicates=0,
        head_seq=head_seq + n,
        head_hash=hashes[-1].hex(),
        first_seq=head_seq + 1,
    )


class _Blocks:
    """The careful path's pending block, stored every ``BLOCK_MAX_EVENTS`` events."""

    def __init__(self, view: WriteView) -> None:
        self.view = view
        self.events: list[bytes] = []
        self.hashes: list[bytes] = []
        self.structs: list[Any] = []
        self.times: list[int] = []

    def add(self, seq: int, stored: bytes, h: bytes, event: Any, ts: int) -> None:
        self.events.append(stored)
        self.hashes.append(h)
        self.structs.append(event)
        self.times.append(ts)
        if len(self.events) >= BLOCK_MAX_EVENTS:
            self.flush(seq)

    def flush(self, last_seq: int) -> None:
        if not self.events:
            return
        first = last_seq - len(self.events) + 1
        columns = block_columns(self.structs, self.times)
        studies = sorted({h16(e.study) for e in self.structs})
        block = encode_block(
            self.events, self.hashes, columns, first_seq=first, others=_others(self.structs)
        )
        parts = BlockParts(*block_parts(block, columns, _only_metrics(self.structs)))
        self.view.block_put(first, last_seq, block, studies, parts)
        for pending in (self.events, self.hashes, self.structs, self.times):
            pending.clear()


def _seen_before(
    item: Prepared, existing: dict[bytes, bytes], taken: dict[bytes, bytes], where: str
) -> bool:
    """Whether ``item``'s id is already in the log (or earlier in the batch) with the
    same content: a duplicate. The same id with other content is refused."""
    entry = taken.get(item.key) or existing.get(item.key)
    if entry is None:
        return False
    if stored_digest(item.key, entry) == item.digest:
        return True
    raise IdempotencyConflict(
        f"id {item.id!r} is already in the log (seq {int.from_bytes(entry[:8], 'big')}) "
        "with other content; a correction is a new event: give it another id, or none",
        where=where,
        event_type=item.event.TYPE,
        field="id",
    )


def _commit_careful(
    view: WriteView,
    batch: Batch,
    head_seq: int,
    head_hash: bytes,
    state: RefState,
    format_version: int,
) -> AppendResult:
    where_of = batch.where_of
    existing = view.ids_get(sorted({p.key for p in batch.items}))
    taken: dict[bytes, bytes] = {}  # this batch's new id entries
    seq, h = head_seq, head_hash
    duplicates = 0
    blocks = _Blocks(view)
    now_enc = _encode_head(batch.now)
    runs = state.runs
    for item in batch.items:
        if _seen_before(item, existing, taken, where_of(item.pos)):
            duplicates += 1
            continue
        nxt = seq + 1
        ev = item.event
        info = runs.get((ev.study, ev.run)) if ev.TYPE == "metrics_recorded" else None
        if info is None or info[1]:
            try:
                verdict = check_event(ev, nxt, item.digest, state)
            except EventError as exc:
                raise exc.located(where_of(item.pos)) from None
            if verdict is DUPLICATE:
                duplicates += 1
                continue
        seq8 = nxt.to_bytes(8, "big")
        taken[item.key] = _index_entry(item, seq8)
        stored = _stored(seq8, item, now_enc)
        (h,) = chain_hashes(h, (seq8,), (stored,))
        seq = nxt
        blocks.add(seq, stored, h, ev, batch.now if item.ts is None else item.ts)
    blocks.flush(seq)
    if not view.ids_insert(sorted(taken.items(), key=_first)):
        raise AssertionError("an id the careful path found new was taken")  # pragma: no cover
    if seq != head_seq:
        _finish(view, state, seq, h, format_version)
    else:
        view.refs_put(state.writes())
    return AppendResult(
        appended=seq - head_seq,
        duplicates=duplicates,
        head_seq=seq,
        head_hash=h.hex(),
        first_seq=head_seq + 1 if seq != head_seq else None,
    )
