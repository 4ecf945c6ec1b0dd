"""The storage seam: what the ledger needs from a backend, and nothing more.

Rules, ids, the hash chain, block layout, metric columns, projections and exports sit
above this interface and never know which backend holds the bytes. A backend stores
opaque values under a handful of logical tables:

    head          the last seq and the chain hash after it (one row; the write lock)
    meta          ``format_version``, ``ledger_id``
    blocks        encoded blocks of events (``ledger.blocks``), by their first seq
    block_studies which blocks hold events of a study (by the study's 16-byte key)
    ids           event id key -> seq (+ content digest): the idempotency index
    refs          the rules' reference state (studies, cases, runs), by key
    aux tables    outside the event log: checkpoints, exports (the export journal),
                  leases, cursors (sync)

The log's own tables (blocks, block_studies, ids) only ever grow: nothing above this
seam updates or deletes a row of them, and the PostgreSQL backend refuses it by trigger.

A backend gives two kinds of views. ``Store.read()`` is a context manager yielding a
``ReadView``; with ``snapshot=True`` every read through it sees one consistent state
(``verify`` compares the head, the blocks and the index), without it each read sees the
committed state of its own moment — all that a reader bounded by a head it read first
needs, since stored blocks never change (a database backend then spares the round trips
of a transaction per chunk); ``Store.write(body)`` runs ``body`` with a
``WriteView`` inside one transaction that holds the ledger's single write lock (LMDB's
writer lock, PostgreSQL's ``SELECT ... FOR UPDATE`` of the head row) and commits it, or
leaves nothing behind when ``body`` raises. ``body`` may be run again (after LMDB grows
its map), so it must not have side effects outside the view.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, NamedTuple, Protocol, TypeVar

__all__ = [
    "AUX_TABLES",
    "BlockParts",
    "Buffer",
    "ReadView",
    "Store",
    "WriteView",
    "unknown_table",
]

T = TypeVar("T")

Buffer = bytes | memoryview
"""Stored bytes: a zero-copy view valid inside its transaction (LMDB) or plain bytes."""

AUX_TABLES = ("checkpoints", "exports", "leases", "cursors")

WHOLE, EVENTS, COLUMNS = "whole", "events", "columns"
"""What a reader of blocks needs: all of each block, its events (a decode), or its
metric columns (a rebuild: the header and the columns suffice for a block whose events
are all metrics events)."""


class BlockParts(NamedTuple):
    """Where a stored block's parts are, for a backend that can send a reader only the
    part it needs (bytes over a network): the metric columns run from ``columns_at`` to
    the end; a block whose events are all metrics events can be read as its first
    ``head_len`` bytes followed by its columns (``head_len`` 0: it cannot)."""

    columns_at: int
    head_len: int


"""Tables outside the event log. They may be overwritten and deleted from."""


def unknown_table(table: str) -> str:
    return f"unknown table {table!r} (known: {', '.join(AUX_TABLES)})"


class ReadView(Protocol):
    """One consistent snapshot of the store."""

    def head(self) -> tuple[int, bytes]:
        """``(seq, hash)`` of the last event; ``(0, GENESIS)`` for an empty log."""

    def meta(self, key: str) -> bytes | None: ...

    def blocks(
        self, after: int, study_key: bytes | None = None, part: str = WHOLE
    ) -> Iterator[tuple[int, Buffer, bool]]:
        """``(first_seq, block, compact)`` of every block holding an event with seq >
        ``after`` (only blocks holding events of the study with ``study_key``, when
        given), in seq order; the consumer may stop early. With ``part=EVENTS`` a block
        may come without its columns; with ``part=COLUMNS`` a block of metrics events
        only may come ``compact``: its header followed by its columns (``BlockParts``).
        A backend may always give the whole block (``compact`` False)."""

    def block_at_or_before(self, seq: int) -> tuple[int, Buffer] | None:
        """The block whose first seq is the greatest one <= ``seq``."""

    def ref(self, key: bytes) -> bytes | None: ...

    def refs_with_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, Buffer]]: ...

    def aux_get(self, table: str, key: bytes) -> bytes | None: ...

    def aux_items(self, table: str, prefix: bytes = b"") -> list[tuple[bytes, bytes]]: ...

    def counts(self) -> dict[str, int]:
        """Rows of the log's tables: ``{"blocks": n, "ids": n}`` (for ``verify``)."""


class WriteView(ReadView, Protocol):
    """A write transaction holding the ledger's write lock; ``head()`` is locked."""

    def ids_get(self, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        """The stored entries of those of ``keys`` that are in the id index."""

    def ids_insert(self, items: Sequence[tuple[bytes, bytes]]) -> bool:
        """Insert id entries sorted by key. False when any key was already there (the
        caller then abandons the transaction); nothing is overwritten."""

    def refs_get(self, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        """Stored reference state for those of ``keys`` that exist (one round trip)."""

    def refs_put(self, items: Sequence[tuple[bytes, bytes]]) -> None: ...

    def block_put(
        self,
        first_seq: int,
        last_seq: int,
        data: bytes,
        studies: Sequence[bytes],
        parts: BlockParts | None = None,
    ) -> None:
        """Store a block after the last one, indexed under each study key (``parts``:
        where its parts are, for ``blocks(part=...)``)."""

    def set_head(self, seq: int, hash_: bytes) -> None: ...

    def meta_put(self, key: str, value: bytes) -> None: ...

    def aux_put(self, table: str, key: bytes, value: bytes) -> None: ...

    def aux_delete(self, table: str, key: bytes) -> None: ...


class Store(Protocol):
    """A backend. ``location`` is safe to print (a URL's password masked)."""

    kind: str  # "lmdb", "postgresql", "memory"
    location: str
    readonly: bool

    def read(self, snapshot: bool = False) -> AbstractContextManager[ReadView]: ...

    def write(self, body: Callable[[WriteView], T]) -> T: ...

    def clock(self) -> float:
        """Seconds since the epoch by the clock that judges leases: the database
        server's for a shared ledger (hosts' clocks differ), this host's otherwise."""

    def check_pid(self) -> None:
        """Refuse use from a process forked after the store was opened."""

    def info(self) -> dict[str, Any]: ...

    def close(self) -> None: ...
