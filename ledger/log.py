"""The ``Ledger``: atomic batch append with every rule, streamed reads, verify.

A ``Ledger`` is a facade over one storage backend (``ledger.store``): a folder holding
an LMDB environment, or a ``postgresql://`` URL naming a shared ledger. An append is two
phases: ``ledger.prepare`` does the CPU work that does not need the log, outside the
write lock; ``ledger.commit`` checks, numbers, chains and stores the batch inside one
write transaction, so a batch is all or nothing. Reads are ``ledger.reading``'s and the
chain check ``ledger.verifying``'s; none of them knows which backend it talks to.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from . import reading
from .chain import GENESIS
from .codec import decode_json_lines
from .commit import FORMAT_VERSION, Careful, commit_batch
from .errors import LedgerError, StorageError
from .outcomes import AppendResult, Head, VerifyReport
from .prepare import BLOCK_MAX_EVENTS, block_columns, id_key, prepare
from .rules import h16
from .store import AUX_TABLES, open_store
from .store.base import unknown_table

if TYPE_CHECKING:
    from .events import Envelope
    from .frames import Frame

__all__ = [
    "AUX_TABLES",
    "BLOCK_MAX_EVENTS",
    "FORMAT_VERSION",
    "AppendResult",
    "Head",
    "Ledger",
    "VerifyReport",
    "block_columns",
    "id_key",
    "quiet_gc",
]


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


class Ledger:
    """An append-only, hash-chained event log.

    ``Ledger(location)`` opens (and by default creates) the ledger at ``location``: a
    folder (LMDB; a path already open in this process shares its environment) or a
    ``postgresql://`` URL (``?schema=NAME``, default ``ledger``). Use it as a context
    manager or call ``close()``.

    Raises ``LedgerNotFound`` when ``create=False`` and nothing is there,
    ``UnsafeLocation`` on a network file system, ``StoreUnavailable`` when a server
    cannot be reached (``AuthenticationFailed`` when it refuses the credentials), and
    ``StorageError`` when what is there is not a ledger. ``ledger_id`` names a ledger
    this call creates (32 hex digits; ``ledger merge`` derives its output's id from its
    sources, so two merges of the same sources export the same manifest); an existing
    ledger keeps its own.
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
        ledger_id: str | None = None,
    ) -> None:
        self.readonly = readonly
        self._new_id = ledger_id
        self.max_size = max_size
        self._closed = True
        self._store = open_store(
            path,
            create=create,
            readonly=readonly,
            max_size=max_size,
            map_size=map_size,
            allow_network_fs=allow_network_fs,
        )
        self._closed = False
        self.path: str = self._store.location
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
            self._store.close()

    def __repr__(self) -> str:
        return f"Ledger({self.path!r})"

    @property
    def backend(self) -> str:
        """``"lmdb"``, ``"postgresql"`` or ``"memory"``."""
        return str(self._store.kind)

    # -- meta ---------------------------------------------------------------------

    def _load_meta(self) -> dict[str, Any]:
        with self._store.read() as view:
            version = view.meta("format_version")
            ledger_id = view.meta("ledger_id")
        if version is None:
            if self.readonly or self._store.readonly:
                raise StorageError(f"{self.path} holds a store but no ledger meta")
            new_id = self._new_id or os.urandom(16).hex()
            if len(new_id) != 32 or any(c not in "0123456789abcdef" for c in new_id):
                raise LedgerError(f"a ledger id is 32 lowercase hex digits, not {new_id!r}")
            self._store.write(lambda view: _init_meta(view, new_id))
            return self._load_meta()
        fv = int(version)
        if fv > FORMAT_VERSION:
            raise StorageError(
                f"{self.path} was written by a newer version of results-ledger (format "
                f"{fv}, this one reads up to {FORMAT_VERSION}); upgrade to read it"
            )
        return {"format_version": fv, "ledger_id": (ledger_id or b"").decode()}

    @property
    def ledger_id(self) -> str:
        return str(self._meta["ledger_id"])

    @property
    def format_version(self) -> int:
        return int(self._meta["format_version"])

    @property
    def head(self) -> Head:
        with self._store.read() as view:
            seq, h = view.head()
        return Head(seq, h.hex())

    def clock(self) -> float:
        """Seconds since the epoch by the clock that judges run leases: the database
        server's for a shared ledger (the hosts' clocks differ), this host's otherwise."""
        return self._store.clock()

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

        An ``Envelope`` read from another ledger is appended with its id and ts (its seq
        and hash are the source's, and ignored): how ``sync`` and ``merge`` copy. An
        event whose id is already in the log with the same content is a no-op counted
        in ``duplicates``. ``expected_head`` makes the append conditional on the head seq
        (optimistic concurrency). ``aux`` writes ``(table, key, value)`` to the tables
        outside the log (``value`` None deletes) in the same transaction: the Recorder's
        run leases and sync's cursor ride along with their events. Raises
        ``EventError`` subclasses naming the event (by ``wheres[i]``, else ``source`` and
        its position), ``HeadMoved``, ``LedgerFull``, ``LedgerWriteFailed``,
        ``StoreUnavailable``; on any error nothing of the batch is appended.
        """
        self._writable()
        for table, _, _ in aux:
            if table not in AUX_TABLES:
                raise LedgerError(unknown_table(table))
        with quiet_gc():
            batch = prepare(events, source=source, redact=redact, wheres=wheres)
            version = self.format_version

            def attempt(careful: bool) -> AppendResult:
                def body(view: Any) -> AppendResult:
                    result = commit_batch(view, batch, expected_head, careful, version)
                    for table, key, value in aux:
                        if value is None:
                            view.aux_delete(table, key)
                        else:
                            view.aux_put(table, key, value)
                    return result

                return self._store.write(body)

            try:
                result = attempt(False)
            except Careful:
                result = attempt(True)
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

    # -- read ---------------------------------------------------------------------

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
        as_input: bool = False,
    ) -> Iterator[list[Envelope]]:
        """Envelopes with ``since < seq <= until`` in seq order, a list per chunk.

        A chunk ends after ``chunk_events`` events (or ``chunk_blocks`` blocks), so memory
        stays flat whatever the stored block size. Each chunk is read in its own short
        read transaction, so a slow consumer never pins the store; the upper bound is
        fixed at the head when the read starts.

        ``as_input``: to be appended to another ledger (``sync``). Each stored block's
        events are checked against every input rule as they are decoded, and come as
        the strict input classes (in ``InputEnvelope``s) that ``append`` trusts; a block
        holding an event that fails one comes as usual, for the append to check.
        """
        return reading.read_batches(
            self._store,
            since,
            until,
            study=study,
            types=types,
            with_hashes=with_hashes,
            chunk_blocks=chunk_blocks,
            chunk_events=chunk_events,
            as_input=as_input,
        )

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
        return reading.read_frames(
            self._store, since, until, study=study, chunk_events=chunk_events
        )

    def read(
        self,
        since: int = 0,
        until: int | None = None,
        *,
        study: str | None = None,
        types: Iterable[str] | None = None,
        with_hashes: bool = False,
    ) -> Iterator[Envelope]:
        """Stream envelopes with ``since < seq <= until`` in seq order."""
        for batch in self.read_batches(
            since, until, study=study, types=types, with_hashes=with_hashes
        ):
            yield from batch

    def hash_at(self, seq: int) -> str:
        """The chain hash after event ``seq`` (``GENESIS`` for 0)."""
        return reading.hash_at(self._store, seq)

    def studies(self) -> list[str]:
        """Every study name, in code-point order."""
        with self._store.read() as view:
            return sorted(bytes(value).decode() for _, value in view.refs_with_prefix(b"N"))

    def has_study(self, study: str) -> bool:
        with self._store.read() as view:
            return view.ref(b"S" + h16(study)) is not None

    # -- integrity ------------------------------------------------------------------

    def verify(self) -> VerifyReport:
        """Recompute the whole chain; name the first bad seq. Never raises on corruption."""
        from .verifying import verify

        return verify(self._store)

    # -- tables outside the event log ----------------------------------------------

    def _writable(self) -> None:
        if self.readonly:
            raise StorageError(f"{self.path} is open read-only; read-only commands never write")

    def aux_put(self, table: str, key: bytes, value: bytes) -> None:
        """Write to a table outside the event log (checkpoints, export journal, leases,
        sync cursors)."""
        self._writable()
        self._store.write(lambda view: view.aux_put(table, key, value))

    def aux_delete(self, table: str, key: bytes) -> None:
        self._writable()
        self._store.write(lambda view: view.aux_delete(table, key))

    def aux_get(self, table: str, key: bytes) -> bytes | None:
        with self._store.read() as view:
            return view.aux_get(table, key)

    def aux_items(self, table: str, prefix: bytes = b"") -> list[tuple[bytes, bytes]]:
        with self._store.read() as view:
            return view.aux_items(table, prefix)

    def storage_info(self) -> dict[str, Any]:
        return dict(self._store.info())


def _init_meta(view: Any, ledger_id: str) -> None:
    """A new ledger's meta: format, its id, the empty head. The head is read first: on a
    database it is the write lock, so of several processes creating one ledger at once
    exactly one writes the meta and the others find it (each would otherwise keep an id
    of its own)."""
    view.head()
    if view.meta("format_version") is None:
        view.meta_put("format_version", str(FORMAT_VERSION).encode())
        view.meta_put("ledger_id", ledger_id.encode())
        view.set_head(0, GENESIS)
