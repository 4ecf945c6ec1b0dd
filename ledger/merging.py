"""``merge``: the union of several ledgers as a new ledger, in one deterministic order.

docs/architecture.md, Past one host: repeatedly take, among the sources' next events whose references are already
merged, the one with the smallest (ts, id); each source's own order is kept; an event
present in several sources appears once; conflicts stop the merge as in sync.

How that is made a function of the *set* of sources, whatever order they are given in:

- Each source is a ledger whose rules held at every append, so everything an event
  refers to (its study, case, parents, run) comes before it in its own source. Keeping
  each source's order therefore takes an event only after its references, and the
  merge only ever chooses among the sources' next events: a k-way merge on (ts, id).
- An event already taken is consumed at once wherever it is a source's next event
  (same id: the same event, whose first (ts, id) won), so a duplicate never holds its
  source back; which of several tied sources an event was taken from changes nothing.
- Duplicates and conflicts are the output ledger's own judgement: every copy is sent
  to it, and it skips the same content and refuses other content under the same id
  (or a rule), which stops the merge with the sync's one-line error.

The new ledger is written into a temporary folder beside ``out`` and renamed into place
only when complete, so a refused or interrupted merge leaves no ledger at ``out``. A
``postgresql://`` ``out`` is merged into a temporary LMDB ledger first and then synced
into the (new, empty) shared ledger: same events, same ts, same order, so the same
seqs and head hash.
"""

from __future__ import annotations

import heapq
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any

import msgspec

try:  # the same type hashlib exports, without loading OpenSSL at start-up
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - an interpreter without CPython's _blake2
    from hashlib import blake2b

from .errors import EventError, LedgerError, LedgerNotFound
from .fsync import fsync_dir
from .log import Ledger
from .replication import (
    BATCH_EVENTS,
    CURSORS,
    Location,
    Notify,
    Progress,
    Wheres,
    cursor_key,
    is_url,
    mask_location,
    open_location,
    refusal,
)

__all__ = ["MergeResult", "merge"]


class MergeResult(msgspec.Struct, kw_only=True):
    """What a merge wrote: ``sources`` lists each source (as given, passwords masked)
    with the number of events read from it; ``duplicates`` counts the copies that were
    already merged from another source; ``ledger_id`` is the new ledger's (derived from
    the sources: ``merged_id``)."""

    out: str
    sources: list[dict[str, Any]]
    ledger_id: str = ""
    appended: int = 0
    duplicates: int = 0
    head_seq: int = 0
    head_hash: str = ""

    def to_dict(self) -> dict[str, Any]:
        return msgspec.structs.asdict(self)


class _Source:
    __slots__ = ("label", "ledger", "head", "events", "next", "gen", "read")

    def __init__(self, label: str, ledger: Ledger) -> None:
        self.label = label
        self.ledger = ledger
        self.head = ledger.head  # merged up to here (a source that grows meanwhile)
        self.events: Iterator[Any] = ledger.read(0, self.head.seq)
        self.next: Any = None  # its next event not merged yet
        self.gen = 0  # bumped whenever ``next`` changes: older heap entries are stale
        self.read = 0


class _Merger:
    """The k-way merge into ``dst``, flushing every ``batch`` events."""

    def __init__(self, sources: list[_Source], dst: Ledger, out: str, batch: int) -> None:
        self.sources = sources
        self.dst = dst
        self.out = out
        self.batch = batch
        self.heap: list[tuple[int, str, int, int]] = []
        self.holders: dict[str, list[int]] = {}  # id -> sources whose next event it is
        self.merged: set[str] = set()
        self.pending: list[Any] = []
        self.pending_from: list[str] = []
        self.appended = 0
        self.duplicates = 0

    def advance(self, i: int) -> None:
        """Move source ``i`` to its next event not merged yet; the copies of merged
        events it passes go to the output, which checks they are the same events."""
        src = self.sources[i]
        src.gen += 1
        for env in src.events:
            src.read += 1
            if env.id in self.merged:
                self.send(env, src.label)
                continue
            src.next = env
            heapq.heappush(self.heap, (env.ts, env.id, src.gen, i))
            self.holders.setdefault(env.id, []).append(i)
            return
        src.next = None

    def send(self, env: Any, label: str) -> None:
        self.pending.append(env)
        self.pending_from.append(label)

    def run(self, progress: Progress, total: int) -> None:
        for i in range(len(self.sources)):
            self.advance(i)
        heap, sources = self.heap, self.sources
        while heap:
            _, eid, gen, i = heapq.heappop(heap)
            if sources[i].gen != gen:
                continue  # that source's event was consumed as a copy meanwhile
            self.merged.add(eid)
            holding = self.holders.pop(eid)
            self.send(sources[i].next, sources[i].label)
            for j in holding:
                if j != i:
                    self.send(sources[j].next, sources[j].label)
            for j in holding:
                self.advance(j)
            if len(self.pending) >= self.batch:
                self.flush()
                if progress.due() is not None:
                    progress.say(
                        f"{self.appended:,} events written, {self._read():,} of {total:,} read"
                    )
        self.flush()

    def _read(self) -> int:
        return sum(s.read for s in self.sources)

    def flush(self) -> None:
        if not self.pending:
            return
        envs, labels = self.pending, self.pending_from
        self.pending, self.pending_from = [], []
        wheres = Wheres(labels, envs)
        try:
            res = self.dst.append(envs, redact=False, wheres=wheres)
        except EventError as exc:
            i = wheres.index_of(exc)
            if i is None:
                raise
            raise refusal(
                exc, labels[i], envs[i], self.out, f"nothing was written to {self.out}"
            ) from None
        self.appended += res.appended
        self.duplicates += res.duplicates


def _check_new(path: str) -> None:
    if os.path.lexists(path) and not (os.path.isdir(path) and not os.listdir(path)):
        raise LedgerError(
            f"{path} already exists; merge writes a new ledger: remove it or choose another --out"
        )
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise LedgerError(f"cannot write {path}: the folder {parent} does not exist")


def merged_id(sources: Sequence[_Source]) -> str:
    """The new ledger's id, from what was merged (each source's id and head), never
    from the order the sources were named in: two merges of the same sources are the
    same ledger, down to the manifest of an export."""
    parts = sorted({f"{s.ledger.ledger_id}:{s.head.seq}:{s.head.hash}" for s in sources})
    return blake2b("\n".join(parts).encode(), digest_size=16).hexdigest()


def _merge_to_path(
    sources: Sequence[Location],
    path: str,
    result: MergeResult,
    batch: int,
    notify: Notify | None,
    allow_network_fs: bool = False,
    derive_id: bool = True,
) -> None:
    _check_new(path)
    parent = os.path.dirname(os.path.abspath(path))
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.merging-", dir=parent)
    opened: list[tuple[Ledger, bool]] = []
    try:
        for location in sources:
            opened.append(open_location(location, source=True, allow_network_fs=allow_network_fs))
        srcs = [_Source(mask_location(loc), led) for loc, (led, _) in zip(sources, opened)]
        total = sum(s.head.seq for s in srcs)
        result.ledger_id = merged_id(srcs)
        new_id = result.ledger_id if derive_id else None
        with Ledger(tmp, allow_network_fs=allow_network_fs, ledger_id=new_id) as dst:
            merger = _Merger(srcs, dst, result.out, batch)
            merger.run(Progress(notify, "merge"), total)
            head = dst.head
        result.appended, result.duplicates = merger.appended, merger.duplicates
        result.head_seq, result.head_hash = head.seq, head.hash
        result.sources = [{"source": s.label, "events": s.read} for s in srcs]
        try:
            os.rename(tmp, path)
        except OSError as exc:
            raise LedgerError(f"cannot put the merged ledger at {path}: {exc.strerror}") from None
        fsync_dir(parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        for led, owned in opened:
            if owned:
                led.close()


def _merge_to_url(
    sources: Sequence[Location],
    url: str,
    result: MergeResult,
    batch: int,
    notify: Notify | None,
    allow_network_fs: bool = False,
) -> None:
    """Merge into a temporary LMDB ledger, then sync it into the new shared ledger."""
    from .replication import sync

    try:
        with Ledger.open(url, create=False, readonly=True) as existing:
            if existing.head.seq:
                raise LedgerError(
                    f"{result.out} already holds a ledger ({existing.head.seq} events); merge "
                    "writes a new ledger: choose another database or schema"
                )
    except LedgerNotFound:
        pass
    with tempfile.TemporaryDirectory(prefix="ledger-merge-") as folder:
        path = os.path.join(folder, "merged.ledger")
        # The temporary ledger keeps an id of its own: the shared one takes the merge's.
        _merge_to_path(sources, path, result, batch, notify, allow_network_fs, derive_id=False)
        Ledger.open(url, create=True, ledger_id=result.ledger_id).close()
        with Ledger(path, create=False, readonly=True) as merged:
            synced = sync(merged, url, notify=notify, batch_size=batch)
            with Ledger.open(url, create=False) as dst:
                dst.aux_delete(CURSORS, cursor_key(merged.ledger_id, None))
                head = dst.head
    if (head.seq, head.hash) != (result.head_seq, result.head_hash) or synced.duplicates:
        raise LedgerError(
            f"{result.out} changed while the merge was copied into it (head {head.seq} "
            f"{head.hash[:16]}, expected {result.head_seq} {result.head_hash[:16]})"
        )


def merge(
    sources: Sequence[Location],
    out: str | os.PathLike[str],
    *,
    batch_size: int = BATCH_EVENTS,
    notify: Notify | None = None,
    allow_network_fs: bool = False,
) -> MergeResult:
    """Write the union of ``sources`` as a new ledger at ``out`` (a path that holds
    nothing, or a ``postgresql://`` URL of a database or schema with no ledger yet).

    The same sources in any order give the same seqs, head hash and export bytes (the
    new ledger's id is derived from the sources' ids and heads: ``merged_id``). ``notify`` receives progress lines; ``allow_network_fs``
    is passed to LMDB locations. Raises
    ``LedgerNotFound`` (a source is missing), ``LedgerError`` (``out`` exists), an
    ``EventError`` subclass when two sources disagree (same id, other content, or a
    rule such as a run finished differently on both): then nothing is written.
    """
    if not sources:
        raise LedgerError("merge needs at least one SOURCE ledger")
    if batch_size < 1:
        raise LedgerError(f"batch_size must be at least 1, got {batch_size}")
    target = os.fspath(out)
    result = MergeResult(out=mask_location(target), sources=[])
    if is_url(target):
        _merge_to_url(sources, target, result, batch_size, notify, allow_network_fs)
    else:
        _merge_to_path(sources, target, result, batch_size, notify, allow_network_fs)
    return result
