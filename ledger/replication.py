"""``sync``: copy to a target ledger every event of a source that it lacks (docs/architecture.md, Past one host).

Events keep their id, ts and content; the target numbers and chains them itself. The
copy goes in batches, each one atomic append that also writes the sync's *cursor* — the
source's ledger id (and study) -> the last source seq copied and the source's chain hash
there — into the target's ``cursors`` table in the same transaction. So a sync killed at
any moment has copied whole batches and recorded exactly how far it got: the next run
starts after the cursor and copies nothing twice. Ids make even a lost cursor harmless
(an event the target holds is a duplicate, never a second copy); the cursor makes a
second run cheap and lets it say "0 appended". A cursor whose hash no longer matches
the source (a source restored from an older backup, or rewritten) is noticed and the
source re-read from the start, every event it still holds being skipped as a duplicate.

Only the public ``Ledger`` API is used (``read_batches``, ``append`` with ``aux``,
``hash_at``, ``aux_get``), so any two backends sync the same way. ``merge`` lives in
``ledger.merging``; both are exported lazily as ``ledger.sync`` and ``ledger.merge``
(no submodule is named ``sync`` or ``merge``: importing it would replace the function
on the package).
"""

from __future__ import annotations

import heapq
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from typing import Any, Union

import msgspec

from .errors import (
    AuthenticationFailed,
    EventError,
    LedgerError,
    LedgerNotFound,
    StoreUnavailable,
)
from .log import AppendResult, Ledger
from .store.location import is_url, mask

try:  # the same type hashlib exports, without loading OpenSSL at start-up
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - an interpreter without CPython's _blake2
    from hashlib import blake2b

__all__ = [
    "BATCH_EVENTS",
    "POLL_SECONDS",
    "SyncResult",
    "is_url",
    "mask_location",
    "sync",
]

Location = Union[str, os.PathLike, Ledger]
Notify = Callable[[str], None]

BATCH_EVENTS = 8192
"""Events per atomic batch: two stored blocks; a commit (two fsyncs) per 8,192 events
is a small part of a copy's time, and a kill loses at most one batch's work."""
POLL_SECONDS = 0.5
"""How often ``--follow`` looks at the source's head (as ``ledger log --follow``)."""
PROGRESS_SECONDS = 2.0
MAX_BACKOFF_SECONDS = 30.0
CURSORS = "cursors"
_CURSOR_PREFIX = b"sync/"

_json_encode = msgspec.json.Encoder(order="deterministic").encode
_json_decode = msgspec.json.decode


class SyncResult(msgspec.Struct, kw_only=True):
    """What a sync did: the ``sync --json`` figures, and a little more.

    ``source_seq`` is the source seq up to which the target now holds every event the
    sync selects; ``stopped`` says a ``follow`` ended on a signal (or ``stop``).
    """

    source: str
    target: str
    appended: int = 0
    duplicates: int = 0
    source_seq: int = 0
    target_head_seq: int = 0
    target_head_hash: str = ""
    studies: Union[list[str], None] = None
    batches: int = 0
    stopped: bool = False

    def to_dict(self) -> dict[str, Any]:
        return msgspec.structs.asdict(self)


# -- locations ------------------------------------------------------------------------


def mask_location(location: object) -> str:
    """``location`` as given (a path, a URL, or an open ``Ledger``: its location), with
    any password shown as ``***``: what messages and results say."""
    if hasattr(location, "read_batches"):
        location = getattr(location, "path", location)
    return mask(location if isinstance(location, (str, os.PathLike)) else str(location))


def open_location(
    location: Location, *, source: bool, allow_network_fs: bool = False
) -> tuple[Ledger, bool]:
    """The ledger at ``location`` and whether we opened it (and so close it). A source
    must exist and is opened read-only; a missing target is created (as ``append``)."""
    if hasattr(location, "read_batches"):
        return location, False  # type: ignore[return-value]
    options = {"create": not source, "readonly": source, "allow_network_fs": allow_network_fs}
    try:
        return Ledger.open(location, **options), True  # type: ignore[arg-type]
    except LedgerNotFound:
        if is_url(location):
            raise
        raise LedgerNotFound(
            f"no ledger at {mask_location(location)}: check the source's path (sync and "
            "merge read ledgers that exist, and create only their target)"
        ) from None


# -- what a refusal says --------------------------------------------------------------


def event_label(env: Any) -> str:
    """``id X, study S, case C, run R``: the ids that name an event to a person."""
    ev = env.event
    parts = [f"id {env.id}", f"study {ev.study}"]
    for name in ("case", "run"):
        value = getattr(ev, name, None)
        if value is not None:
            parts.append(f"{name} {value}")
    return ", ".join(parts)


class Wheres(Sequence[str]):
    """The ``wheres`` of an append, built on demand (``SOURCE seq N``), remembering
    which event each text names: a refusal's ``where`` then says which event of the
    batch the target refused. ``labels`` is one source's label, or one per event."""

    def __init__(self, labels: str | Sequence[str], envs: Sequence[Any]) -> None:
        self.labels = labels
        self.envs = envs
        self.asked: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.envs)

    def label(self, i: int) -> str:
        return self.labels if isinstance(self.labels, str) else self.labels[i]

    def __getitem__(self, i: Any) -> Any:
        text = f"{self.label(i)} seq {self.envs[i].seq}"
        self.asked[text] = i
        return text

    def index_of(self, exc: EventError) -> int | None:
        return self.asked.get(exc.where) if exc.where is not None else None


def refusal(exc: EventError, label: str, env: Any, target: str, tail: str) -> EventError:
    """The target's refusal of ``env``, restated as one line that names the source, its
    seq, the event's type and ids, the reason, and how far the copy got."""
    err = exc.located(label)
    EventError.__init__(
        err,
        f"refused by {target}: {exc.detail}; {tail}",
        where=f"{label} seq {env.seq} ({event_label(env)})",
        event_type=exc.event_type or env.event.TYPE,
        field=exc.field,
    )
    return err


def rechunk(chunks: Iterator[list[Any]], size: int) -> Iterator[list[Any]]:
    """The same items in lists of ``size`` (the last one shorter): a read ends its
    chunks at stored blocks, a batch at ``size`` events."""
    buf: list[Any] = []
    for chunk in chunks:
        if not buf and len(chunk) == size:
            yield chunk
            continue
        buf.extend(chunk)
        while len(buf) >= size:
            yield buf[:size]
            buf = buf[size:]
    if buf:
        yield buf


class Progress:
    """At most one progress line every ``PROGRESS_SECONDS`` (a short sync prints none):
    ``due()`` is the time since the start when a line is due, else None."""

    def __init__(self, notify: Notify | None, what: str) -> None:
        self.notify = notify
        self.what = what
        self.start = self.last = time.monotonic()

    def due(self) -> float | None:
        if self.notify is None:
            return None
        now = time.monotonic()
        if now - self.last < PROGRESS_SECONDS:
            return None
        self.last = now
        return now - self.start

    def say(self, text: str) -> None:
        if self.notify is not None:
            self.notify(f"{self.what}: {text}")


# -- cursors --------------------------------------------------------------------------


def cursor_key(source_id: str, study: str | None) -> bytes:
    key = _CURSOR_PREFIX + source_id.encode()
    if study is None:
        return key
    digest = blake2b(study.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    return key + b"/study/" + digest.encode()


def cursor_value(label: str, study: str | None, seq: int, hash_hex: str) -> bytes:
    return _json_encode({"source": label, "study": study, "seq": seq, "hash": hash_hex})


def read_cursor(raw: bytes | None) -> tuple[int, str] | None:
    if raw is None:
        return None
    try:
        data = _json_decode(raw)
        return int(data["seq"]), str(data["hash"])
    except (msgspec.DecodeError, KeyError, TypeError, ValueError):
        return None


# -- sync -----------------------------------------------------------------------------


class _Sync:
    """One sync between two locations: opens (and after an outage reopens) them, and
    runs passes, each copying what the source holds up to its head at the start."""

    def __init__(
        self,
        source: Location,
        target: Location,
        studies: list[str] | None,
        batch: int,
        notify: Notify | None,
        allow_network_fs: bool = False,
    ) -> None:
        self.source, self.target = source, target
        self.allow_network_fs = allow_network_fs
        self.studies = studies
        self.batch = batch
        self.notify = notify
        self.result = SyncResult(
            source=mask_location(source), target=mask_location(target), studies=studies
        )
        self.src: Ledger | None = None
        self.dst: Ledger | None = None
        self.owned: list[Ledger] = []
        self.position = -1  # the source head the last complete pass reached

    # opening and closing

    def open(self) -> tuple[Ledger, Ledger]:
        if self.src is None:
            self.src, owned = open_location(
                self.source, source=True, allow_network_fs=self.allow_network_fs
            )
            if owned:
                self.owned.append(self.src)
        if self.dst is None:
            self.dst, owned = open_location(
                self.target, source=False, allow_network_fs=self.allow_network_fs
            )
            if owned:
                self.owned.append(self.dst)
            if self.dst.ledger_id == self.src.ledger_id:
                raise LedgerError(
                    f"{self.result.source} and {self.result.target} are the same ledger "
                    f"(id {self.src.ledger_id}); sync copies between two ledgers"
                )
        return self.src, self.dst

    def close(self) -> None:
        """Close what we opened (a ``Ledger`` passed in stays open); the next ``open``
        reopens: after a lost server, a fresh connection."""
        for led in self.owned:
            try:
                led.close()
            except LedgerError:
                pass
        self.owned.clear()
        if not hasattr(self.source, "read_batches"):
            self.src = None
        if not hasattr(self.target, "read_batches"):
            self.dst = None

    # cursors

    def _start(self, src: Ledger, dst: Ledger, study: str | None) -> int:
        """Where the copy of ``study`` (None: everything) resumes: its cursor, when the
        source still holds what the cursor vouches for."""
        found = read_cursor(dst.aux_get(CURSORS, cursor_key(src.ledger_id, study)))
        if found is None:
            return 0
        seq, hash_hex = found
        if seq <= src.head.seq and src.hash_at(seq) == hash_hex:
            return seq
        if self.notify is not None:
            what = "" if study is None else f" (study {study})"
            self.notify(
                f"warning: {self.result.source} no longer holds what {self.result.target} "
                f"copied from it up to seq {seq}{what}: it was restored from an older copy "
                "or rewritten; reading it again from the start (events the target holds "
                "are skipped as duplicates)"
            )
        return 0

    def starts(self, src: Ledger, dst: Ledger) -> dict[str | None, int]:
        whole = self._start(src, dst, None)
        if self.studies is None:
            return {None: whole}
        # A whole-ledger cursor covers every study too.
        return {s: max(whole, self._start(src, dst, s)) for s in self.studies}

    def chunks(self, src: Ledger, starts: dict[str | None, int], limit: int) -> Iterator[list[Any]]:
        """The source's selected events after their starts, up to ``limit``, in seq
        order, in lists of at most ``batch``."""
        if len(starts) == 1:
            ((study, start),) = starts.items()
            chunks = src.read_batches(
                start,
                limit,
                study=study,
                chunk_events=self.batch,
                chunk_blocks=1 << 30,
                as_input=True,
            )
            yield from rechunk(chunks, self.batch)
            return
        streams = [
            (env for envs in src.read_batches(start, limit, study=s, as_input=True) for env in envs)
            for s, start in starts.items()
        ]
        merged = heapq.merge(*streams, key=lambda env: env.seq)
        while chunk := list(islice(merged, self.batch)):
            yield chunk

    # a pass

    def run_pass(self, stop: threading.Event) -> None:
        src, dst = self.open()
        starts = self.starts(src, dst)
        limit = src.head.seq
        progress = Progress(self.notify, "sync")
        result = self.result
        for envs in self.chunks(src, starts, limit):
            self.copy(src, dst, envs, starts)
            result.batches += 1
            seq = envs[-1].seq
            elapsed = progress.due()
            if elapsed is not None:
                rate = result.appended / max(elapsed, 1e-9)
                progress.say(
                    f"{result.source} seq {seq:,} of {limit:,}, "
                    f"{result.appended:,} events appended ({rate:,.0f}/s)"
                )
            if stop.is_set():
                result.source_seq = seq
                return
        self.position = limit
        result.source_seq = limit
        head = dst.head
        result.target_head_seq, result.target_head_hash = head.seq, head.hash

    def copy(
        self, src: Ledger, dst: Ledger, envs: list[Any], starts: dict[str | None, int]
    ) -> None:
        """Append ``envs`` to the target as one batch with the cursors it moves; on a
        refusal, append the events before the refused one, then raise."""
        wheres = Wheres(self.result.source, envs)
        try:
            res = dst.append(
                envs, redact=False, wheres=wheres, aux=self.cursors(src, envs[-1], starts)
            )
        except EventError as exc:
            i = wheres.index_of(exc)
            if i is None:
                raise
            copied = starts.get(None, min(starts.values()))
            if i:
                res = dst.append(envs[:i], redact=False, aux=self.cursors(src, envs[i - 1], starts))
                self.count(res)
                copied = envs[i - 1].seq
            raise refusal(
                exc,
                self.result.source,
                envs[i],
                self.result.target,
                f"the events before it are copied ({self.result.target} holds "
                f"{self.result.source} up to seq {copied})",
            ) from None
        self.count(res)
        for study in starts:
            starts[study] = max(starts[study], envs[-1].seq)

    def cursors(
        self, src: Ledger, last: Any, starts: dict[str | None, int]
    ) -> list[tuple[str, bytes, bytes | None]]:
        hash_hex = src.hash_at(last.seq)
        return [
            (
                CURSORS,
                cursor_key(src.ledger_id, study),
                cursor_value(self.result.source, study, last.seq, hash_hex),
            )
            for study, start in starts.items()
            if start < last.seq
        ]

    def count(self, res: AppendResult) -> None:
        self.result.appended += res.appended
        self.result.duplicates += res.duplicates
        self.result.target_head_seq, self.result.target_head_hash = res.head_seq, res.head_hash

    def settle(self) -> None:
        """After the last pass of a study sync: move the study cursors to the position
        reached (events of other studies lie between), so the next sync starts there."""
        if self.studies is None or self.src is None or self.dst is None or self.position <= 0:
            return
        src, dst, seq = self.src, self.dst, self.position
        try:
            hash_hex = src.hash_at(seq)
            for study in self.studies:
                key = cursor_key(src.ledger_id, study)
                found = read_cursor(dst.aux_get(CURSORS, key))
                if found is None or found[0] < seq:
                    value = cursor_value(self.result.source, study, seq, hash_hex)
                    dst.aux_put(CURSORS, key, value)
        except StoreUnavailable:
            pass  # only saves the next sync a scan; everything copied is recorded

    # following

    def wait_for_source(self, stop: threading.Event, interval: float) -> None:
        """Until the source grows past what was copied, or ``stop``."""
        src, _ = self.open()
        while not stop.wait(interval):
            if src.head.seq > self.position:
                return


@contextmanager
def _stop_on_signals(stop: threading.Event, enabled: bool) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop`` (the batch in flight still commits) instead of
    killing the process; the previous handlers come back afterwards."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class _Backoff:
    """Waits out an unreachable server: the delay doubles from ``interval`` up to
    ``most``. Says so when the reason changes (and at every wait once at ``most``), not
    at every retry; and once the copy is through again, that it is."""

    def __init__(self, interval: float, most: float, notify: Notify | None) -> None:
        self.interval, self.most, self.notify = interval, most, notify
        self.delay = 0.0
        self.said: str | None = None

    def wait(self, exc: StoreUnavailable, job: _Sync, stop: threading.Event) -> None:
        self.delay = min(self.most, max(self.interval, self.delay * 2 or self.interval))
        reason = str(exc)
        if self.notify is not None and (reason != self.said or self.delay >= self.most):
            self.notify(f"waiting: {reason}; retrying with backoff (every {self.most:g} s at most)")
            self.said = reason
        job.close()
        stop.wait(self.delay)

    def through(self, target: str) -> None:
        if self.delay and self.notify is not None:
            self.notify(f"reconnected; {target} is up to date")
        self.delay, self.said = 0.0, None


def sync(
    source: Location,
    target: Location,
    studies: Sequence[str] | str | None = None,
    follow: bool = False,
    *,
    interval: float = POLL_SECONDS,
    batch_size: int = BATCH_EVENTS,
    notify: Notify | None = None,
    stop: threading.Event | None = None,
    handle_signals: bool = True,
    max_backoff: float = MAX_BACKOFF_SECONDS,
    allow_network_fs: bool = False,
) -> SyncResult:
    """Copy to ``target`` every event of ``source`` it lacks, in the source's order.

    ``source`` and ``target`` are ledger locations (a path, a ``postgresql://`` URL) or
    open ``Ledger`` objects. ``studies`` limits the copy to those studies' events. With
    ``follow``, keep copying as the source grows (polling its head every ``interval``
    seconds) until ``stop`` is set — or, when ``handle_signals`` and on the main thread,
    until SIGTERM or SIGINT — waiting out an unreachable server (``StoreUnavailable``)
    with backoff up to ``max_backoff`` seconds. ``notify`` receives progress lines and
    warnings. ``allow_network_fs`` is passed to LMDB locations (see ``Ledger``).
    Returns a ``SyncResult``.

    Raises ``LedgerNotFound`` (no source), an ``EventError`` subclass when the target
    refuses an event (its message names the source seq, the event and the reason; the
    events before it are copied), ``StoreUnavailable`` (not following),
    ``AuthenticationFailed``, ``StorageError``.
    """
    if isinstance(studies, str):
        studies = [studies]
    chosen = sorted(set(studies)) if studies else None
    if batch_size < 1:
        raise LedgerError(f"batch_size must be at least 1, got {batch_size}")
    job = _Sync(source, target, chosen, batch_size, notify, allow_network_fs)
    stop = stop if stop is not None else threading.Event()
    backoff = _Backoff(interval, max_backoff, notify)
    with _stop_on_signals(stop, follow and handle_signals):
        try:
            while True:
                try:
                    job.run_pass(stop)
                    backoff.through(job.result.target)
                    if not follow or stop.is_set():
                        break
                    job.wait_for_source(stop, interval)
                except StoreUnavailable as exc:
                    if not follow or isinstance(exc, AuthenticationFailed):
                        raise
                    backoff.wait(exc, job, stop)
                if stop.is_set():
                    break
            job.settle()
        finally:
            job.close()
    job.result.stopped = stop.is_set()
    return job.result
