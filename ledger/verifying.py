"""``verify``: recompute the whole chain over one snapshot and name the first bad seq.

Every block's events are re-hashed from the previous block's last hash and compared
with the block's stored per-event hash prefixes and last hash; every block's metric
columns are re-derived from its events and compared byte for byte; the count of events
must equal the head's seq, the last hash the head's hash, and the id index must hold
one entry per event. Never raises on corruption: the report says what broke.
"""

from __future__ import annotations

from .blocks import BlockView
from .chain import GENESIS, chain_hash
from .errors import CorruptionError, LedgerError
from .outcomes import VerifyReport
from .prepare import block_columns
from .store.base import ReadView, Store

__all__ = ["verify"]


class _Bad(Exception):
    """Internal: the first thing found wrong, at ``seq``."""

    def __init__(self, seq: int, why: str) -> None:
        super().__init__(why)
        self.seq = seq
        self.why = why


def _check_block(block: BlockView, h: bytes, progress: list[int]) -> bytes:
    """Re-hash one block from ``h``, counting events in ``progress[0]``; the hash after
    it. Raises ``_Bad``."""
    block.defer_checks()  # the chain first: it names the exact seq
    envs = block.decode()
    for i in range(block.count):
        seq = block.first_seq + i
        h = chain_hash(h, seq, block.event_bytes(i))
        if h[:8] != block.prefix(i) or envs[i].seq != seq:
            raise _Bad(seq, "hash mismatch")
        progress[0] += 1
    if h != block.last_hash:
        raise _Bad(block.last_seq, "block hash mismatch")
    stored = block.columns
    if stored and bytes(stored) != block_columns([e.event for e in envs], [e.ts for e in envs]):
        raise _Bad(block.first_seq, "the block's metric columns disagree with its events")
    try:
        block.check_sums()
    except CorruptionError as exc:
        raise _Bad(block.first_seq, str(exc)) from None
    return h


def _scan(view: ReadView, progress: list[int]) -> tuple[int, bytes, int, bytes]:
    """Walk every block; ``progress`` is ``[events checked, next expected seq]``.
    Returns (events, last hash, head seq, head hash). Raises ``_Bad``."""
    head_seq, head_hash = view.head()
    h = GENESIS
    for first, data, _ in view.blocks(0):
        if first != progress[1]:
            raise _Bad(progress[1], "missing events")
        block = BlockView(first, data)
        h = _check_block(block, h, progress)
        progress[1] = block.last_seq + 1
    return progress[0], h, head_seq, head_hash


def verify(store: Store) -> VerifyReport:
    """The chain, the columns, the head and the id index of ``store``, checked."""
    progress = [0, 1]
    try:
        with store.read(snapshot=True) as view:
            try:
                events, h, head_seq, head_hash = _scan(view, progress)
            except _Bad as bad:
                head_seq, head_hash = view.head()
                return _bad(progress[0], head_seq, head_hash, bad.seq, bad.why)
            if events != head_seq:
                why = f"the log holds {events} events but the head says {head_seq}"
                return _bad(events, head_seq, head_hash, min(events, head_seq) + 1, why)
            if h != head_hash:
                return _bad(events, head_seq, head_hash, head_seq, "head hash mismatch")
            ids = view.counts()["ids"]
    except CorruptionError as exc:
        seq = exc.seq if exc.seq is not None else progress[1]
        return _failed(progress[0], seq, f"corrupt at seq {seq}: {exc}")
    except LedgerError as exc:
        return _failed(progress[0], progress[1], f"storage error: {exc}")
    if ids != events:
        return VerifyReport(
            ok=False,
            events=events,
            head_seq=head_seq,
            head_hash=head_hash.hex(),
            error=f"storage error: the id index holds {ids} entries for {events} events (it "
            "is damaged: re-sent events could be misjudged); restore a backup or rebuild "
            "with `ledger log --json | ledger append`",
        )
    return VerifyReport(ok=True, events=events, head_seq=head_seq, head_hash=head_hash.hex())


def _bad(events: int, head_seq: int, head_hash: bytes, seq: int, why: str) -> VerifyReport:
    return VerifyReport(
        ok=False,
        events=events,
        head_seq=head_seq,
        head_hash=head_hash.hex(),
        first_bad_seq=seq,
        error=f"corrupt at seq {seq}: {why}",
    )


def _failed(events: int, seq: int, error: str) -> VerifyReport:
    return VerifyReport(
        ok=False, events=events, head_seq=-1, head_hash="", first_bad_seq=seq, error=error
    )
