"""Reading the log back, on any backend: envelopes, frames, hashes at a seq.

Reads are chunked: each chunk is read in its own short read transaction (LMDB) or
query (PostgreSQL), so a slow consumer never pins the store, and memory stays flat
whatever the stored block size. The upper bound of a read is fixed at the head when
the read starts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from .blocks import BlockView
from .chain import GENESIS
from .errors import CorruptionError, LedgerError
from .rules import h16
from .store.base import COLUMNS, EVENTS, WHOLE, ReadView, Store

if TYPE_CHECKING:
    from .events import Envelope
    from .frames import Frame

__all__ = ["hash_at", "prev_hash", "read_batches", "read_frames", "stored_blocks"]


def stored_blocks(
    view: ReadView, after: int, study: str | None, part: str = WHOLE
) -> Iterator[BlockView]:
    """Blocks holding events with seq > ``after`` (of ``study`` when given), in order;
    ``part`` says what the reader needs of them (``ledger.store.base``)."""
    study_key = None if study is None else h16(study)
    for first, data, compact in view.blocks(after, study_key, part):
        block = BlockView(first, data, compact)
        if block.last_seq > after:
            yield block


def prev_hash(view: ReadView, first_seq: int) -> bytes:
    """The chain hash before the block starting at ``first_seq``."""
    if first_seq <= 1:
        return GENESIS
    found = view.block_at_or_before(first_seq - 1)
    if found is None:
        raise CorruptionError(f"no block before seq {first_seq}", seq=first_seq)
    return BlockView(*found).last_hash


def _head_seq(store: Store) -> int:
    with store.read() as view:
        return view.head()[0]


def read_batches(
    store: Store,
    since: int = 0,
    until: int | None = None,
    *,
    study: str | None = None,
    types: Iterable[str] | None = None,
    with_hashes: bool = False,
    chunk_blocks: int = 64,
    chunk_events: int = 8192,
    as_input: bool = False,
) -> Iterator[list[Envelope]]:
    """Envelopes with ``since < seq <= until`` in seq order, a list per chunk (a chunk
    ends after ``chunk_events`` events or ``chunk_blocks`` blocks); ``as_input``: read
    as ``BlockView.decode_as_input`` reads them."""
    store.check_pid()
    type_set = frozenset(types) if types is not None else None
    head = _head_seq(store)
    limit = head if until is None else min(until, head)
    pos = max(since, 0)
    prev: list[bytes | None] = [None]
    while pos < limit:
        with store.read() as view:
            out, pos = _chunk(
                view,
                pos,
                limit,
                study,
                type_set,
                with_hashes,
                prev,
                chunk_blocks,
                chunk_events,
                as_input,
            )
        if out:
            yield out


def _chunk(
    view: ReadView,
    pos: int,
    limit: int,
    study: str | None,
    type_set: frozenset[str] | None,
    with_hashes: bool,
    prev: list[bytes | None],
    chunk_blocks: int,
    chunk_events: int,
    as_input: bool = False,
) -> tuple[list[Any], int]:
    """One chunk of ``read_batches`` from one view: the envelopes and the new position.
    ``prev`` carries the last block's hash from chunk to chunk."""
    out: list[Any] = []
    taken = 0
    for block in stored_blocks(view, pos, study, EVENTS):
        if block.first_seq > limit:
            return out, limit
        envs = block.decode_as_input() if as_input else block.decode()
        if with_hashes:
            before = prev[0]
            if before is None or study is not None:
                before = prev_hash(view, block.first_seq)
            for env, hh in zip(envs, block.hashes(before)):
                env.hash = hh
            prev[0] = block.last_hash
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
            return out, pos
    return out, limit


def read_frames(
    store: Store,
    since: int = 0,
    until: int | None = None,
    *,
    study: str | None = None,
    chunk_events: int = 8192,
) -> Iterator[Frame]:
    """The events ``since < seq <= until`` as frames (``ledger.frames``): metrics
    events as numpy columns, the others as envelopes; about ``chunk_events`` events a
    frame, each read in its own short read transaction."""
    from .frames import FrameBuilder

    store.check_pid()
    head = _head_seq(store)
    limit = head if until is None else min(until, head)
    pos = max(since, 0)
    while pos < limit:
        builder = FrameBuilder()
        start = pos
        with store.read() as view:
            pos = _fill_frame(view, builder, pos, limit, study, chunk_events)
        yield builder.build(start, pos)


def _fill_frame(
    view: ReadView, builder: Any, pos: int, limit: int, study: str | None, chunk_events: int
) -> int:
    """Add blocks after ``pos`` to ``builder`` until about ``chunk_events`` events; the
    new position."""
    taken = 0
    for block in stored_blocks(view, pos, study, COLUMNS):
        if block.first_seq > limit:
            return limit
        lo = max(0, pos + 1 - block.first_seq)
        hi = min(block.count, limit - block.first_seq + 1)
        if block.columns:
            _add_columns(builder, block, lo, hi, study)
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
            return pos
    return limit


def _add_columns(builder: Any, block: BlockView, lo: int, hi: int, study: str | None) -> None:
    """A block's stored metric columns, and its other events decoded one by one."""
    cols, others = block.frame_parts()
    builder.add_columns(cols, block.first_seq, lo, hi, study)
    for i in others:
        if lo <= i < hi:
            env = block.decode_at(i)
            if study is None or env.event.study == study:
                builder.other.append(env)


def hash_at(store: Store, seq: int) -> str:
    """The chain hash after event ``seq`` (``GENESIS`` for 0)."""
    if seq <= 0:
        return GENESIS.hex()
    with store.read() as view:
        head_seq, _ = view.head()
        if seq > head_seq:
            raise LedgerError(f"seq {seq} is past the head ({head_seq})")
        found = view.block_at_or_before(seq)
        if found is None:
            raise CorruptionError(f"no block holds seq {seq}", seq=seq)
        block = BlockView(*found)
        if seq == block.last_seq:
            return block.last_hash.hex()
        hashes = block.hashes(prev_hash(view, block.first_seq), upto=seq)
        return hashes[seq - block.first_seq].hex()
