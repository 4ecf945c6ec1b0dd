"""The Recorder's outbox: events buffered in memory and committed in batches.

What a commit can meet, and what the outbox does about it:

- **A refused event** (a rule the log holds against it: a case another process created
  with other params, a survivor that is no case): the event is taken out, the rest of
  the batch is committed, and the refusal is raised to the caller of the commit and
  kept in ``refused``. One bad event never blocks the events behind it. A refused
  ``run_started`` takes its run's other buffered events with it (they could never be
  committed), and ``on_dropped`` tells the Recorder.
- **A run that must move** (``RunClosed``: another process closed it; or its id was
  taken by another runner first): ``reattempt`` (the Recorder's) rewrites the batch
  under a new attempt and the commit is tried again.
- **A server that is away** (``StoreUnavailable``; not ``AuthenticationFailed``, which
  no retry cures): the batch goes back to the front of the buffer, nothing is lost, one
  line on stderr says so, and commits are retried with exponential backoff (0.5 s
  doubling up to ``retry_max``) while the runner goes on buffering. When the buffer
  holds ``max_buffered`` events the runner's next call blocks, retrying, for up to
  ``block_timeout`` seconds and then raises ``StoreUnavailable`` (its event is not
  buffered). ``drain`` (on close) retries for a bounded time, then writes what it could
  not commit to a JSON Lines file that ``ledger append`` takes later (re-sending is
  safe: ids derive from content) and says so.
- **Any other failure** (disk full, corruption): the batch goes back to the buffer and
  the error is raised.

Only one commit runs at a time (``_commit_lock``), and the buffer lock is never held
while the ledger is written to, so a runner's ``log()`` never waits for a slow server.
"""

from __future__ import annotations

import os
import random
import re
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from .codec import dumps, to_json_safe
from .errors import (
    AuthenticationFailed,
    EventError,
    LedgerError,
    RuleViolation,
    RunClosed,
    StoreUnavailable,
)
from .plan import lease_key

__all__ = ["SOURCE", "Outbox", "index_of", "say"]

SOURCE = "recorder buffer"
_WHERE = re.compile(re.escape(SOURCE) + r"\[(\d+)\]$")
RETRY_FIRST = 0.5

Aux = tuple[str, bytes, "bytes | None"]
Reattempt = Callable[[list[Any], list[Aux], EventError], "tuple[list[Any], list[Aux]] | None"]


def say(text: str) -> None:
    """One line on stderr (warnings about the ledger's server, what was not committed)."""
    try:
        sys.stderr.write(f"ledger: {text}\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed stderr must not cost the runner its events
        pass


class _Outage:
    __slots__ = ("delay", "error", "next_try", "since")

    def __init__(self, error: str, delay: float) -> None:
        self.since = time.monotonic()
        self.error = error
        self.delay = delay
        self.next_try = self.since + delay


class Outbox:
    """Buffered events and the leases that ride with them, committed in order."""

    def __init__(
        self,
        ledger: Any,
        study: str,
        *,
        redact: bool,
        lock: threading.RLock,
        max_buffered: int = 100_000,
        retry_max: float = 30.0,
        block_timeout: float = 600.0,
        spill_dir: str | os.PathLike[str] | None = ".",
        reattempt: Reattempt | None = None,
        on_dropped: Callable[[str, EventError], None] | None = None,
    ) -> None:
        self.ledger = ledger
        self.study = study
        self.redact = redact
        self.lock = lock  # the Recorder's: guards the buffer, never held while committing
        self.buffer: list[Any] = []
        self.aux: list[Aux] = []
        self.max_buffered = max(1, max_buffered)
        self.retry_max = max(RETRY_FIRST, retry_max)
        self.block_timeout = block_timeout
        self.spill_dir = spill_dir
        self.reattempt = reattempt
        self.on_dropped = on_dropped
        self.refused: list[tuple[Any, EventError]] = []
        self.outage: _Outage | None = None
        self._commit_lock = threading.RLock()
        self._committing: int | None = None  # the thread inside a commit

    # -- adding ---------------------------------------------------------------------------

    def add(self, events: list[Any], aux: list[Aux] = ()) -> int:  # type: ignore[assignment]
        """Buffer ``events`` (and aux writes); returns the buffer's length. Blocks while
        the server is away and the buffer is full (see the module docstring)."""
        if len(self.buffer) >= self.max_buffered and self.outage is not None:
            self._wait_for_room()
        with self.lock:
            self.buffer.extend(events)
            self.aux.extend(aux)
            return len(self.buffer)

    def _wait_for_room(self) -> None:
        deadline = time.monotonic() + self.block_timeout
        while len(self.buffer) >= self.max_buffered and self.outage is not None:
            now = time.monotonic()
            if now >= deadline:
                raise StoreUnavailable(
                    f"the ledger's server has been unreachable for "
                    f"{now - self.outage.since:.0f} s and the Recorder holds "
                    f"{len(self.buffer)} events (max_buffered); this call was not recorded. "
                    "Nothing buffered is lost: the Recorder keeps retrying, and on close "
                    "writes what it could not commit to a file"
                )
            time.sleep(max(0.0, min(self.outage.next_try, deadline) - now))
            self.try_commit()

    # -- committing -------------------------------------------------------------------------

    def due(self) -> bool:
        """Whether a commit may be tried now (always, unless backing off from an outage)."""
        return self.outage is None or time.monotonic() >= self.outage.next_try

    def try_commit(self) -> int:
        """Commit if due; an away server is noted, not raised. Refusals are raised."""
        if not self.due():
            return 0
        # While the server is away a commit may hang for a connection timeout: a runner
        # whose call finds one under way leaves its events to it, rather than wait.
        if not self._commit_lock.acquire(blocking=self.outage is None):
            return 0
        try:
            return self.commit()
        except StoreUnavailable as exc:
            if isinstance(exc, AuthenticationFailed):
                raise
            return 0
        finally:
            self._commit_lock.release()

    def commit(self) -> int:
        """Commit everything buffered now; returns the number of events appended.

        Raises ``StoreUnavailable`` while the server is away (everything stays buffered),
        the first ``EventError`` of an event refused and dropped (after the rest was
        committed), or the ledger's other errors (everything stays buffered).
        """
        with self._commit_lock:
            if self._committing == threading.get_ident():
                return 0  # a signal handler inside this thread's commit: the outer one goes on
            self._committing = threading.get_ident()
            try:
                appended, refused = self._commit_buffer()
            finally:
                self._committing = None
        if refused:
            raise refused[0]
        return appended

    def _commit_buffer(self) -> tuple[int, list[EventError]]:
        with self.lock:
            batch, aux = self.buffer, self.aux
            self.buffer, self.aux = [], []
        if not batch and not aux:
            return 0, []
        inflight = [batch, aux]  # as the commit rewrites it (runs moved, events dropped)
        try:
            appended, refused = self._append(inflight)
        except BaseException as exc:
            batch, aux = inflight
            with self.lock:  # back in front of what was buffered meanwhile
                self.buffer[:0] = batch
                self.aux[:0] = aux
            if isinstance(exc, StoreUnavailable) and not isinstance(exc, AuthenticationFailed):
                self._note_outage(exc)
            raise
        self._note_recovery(len(inflight[0]))
        return appended, refused

    def _append(self, inflight: list[Any]) -> tuple[int, list[EventError]]:
        """Append ``inflight`` (``[batch, aux]``), rewriting it in place until it commits:
        a run moved to another attempt, a refused event dropped."""
        refused: list[EventError] = []
        moved = 0
        while inflight[0] or inflight[1]:
            batch, aux = inflight
            try:
                result = self.ledger.append(batch, redact=self.redact, aux=aux, source=SOURCE)
                return result.appended, refused
            except EventError as exc:
                fixed = self._reattempt(batch, aux, exc, moved)
                if fixed is not None:
                    inflight[:] = fixed
                    moved += 1
                    continue
                inflight[:] = self._drop(batch, aux, exc)
                refused.append(exc)
        return 0, refused

    def _reattempt(
        self, batch: list[Any], aux: list[Aux], exc: EventError, moved: int
    ) -> tuple[list[Any], list[Aux]] | None:
        if self.reattempt is None or moved >= 1000:
            return None
        if not (isinstance(exc, RunClosed) or _run_taken(exc)):
            return None
        return self.reattempt(batch, aux, exc)

    def _drop(
        self, batch: list[Any], aux: list[Aux], exc: EventError
    ) -> tuple[list[Any], list[Aux]]:
        """The batch without the refused event (and, for a refused run, without every
        event of that run); raises ``exc`` when it names no event of the batch."""
        index = index_of(exc, batch)
        if index is None:
            raise exc
        event = batch[index]
        run = getattr(event, "run", None)
        self.refused.append((event, exc))
        if run is not None and (event.TYPE == "run_started" or exc.field == "run"):
            keep = [ev for ev in batch if getattr(ev, "run", None) != run]
            with self.lock:  # what the runner buffered meanwhile for that run
                self.buffer = [ev for ev in self.buffer if getattr(ev, "run", None) != run]
            key = lease_key(self.study, run)
            aux = [a for a in aux if not (a[0] == "leases" and a[1] == key)]
            if self.on_dropped is not None:
                self.on_dropped(run, exc)
            return keep, aux
        return batch[:index] + batch[index + 1 :], aux

    # -- an away server -----------------------------------------------------------------------

    def _note_outage(self, exc: StoreUnavailable) -> None:
        outage = self.outage
        if outage is None:
            self.outage = _Outage(str(exc), RETRY_FIRST)
            say(
                f"server unreachable ({exc}); buffering {len(self.buffer)} events, retrying "
                f"(every {RETRY_FIRST:g} s, backing off to {self.retry_max:g} s)"
            )
            return
        outage.error = str(exc)
        outage.delay = min(outage.delay * 2, self.retry_max)
        # a little jitter, so that runners cut off together do not all come back at once
        outage.next_try = time.monotonic() + outage.delay * random.uniform(0.8, 1.0)

    def _note_recovery(self, committed: int) -> None:
        outage, self.outage = self.outage, None
        if outage is not None:
            say(
                f"server reachable again after {time.monotonic() - outage.since:.0f} s; "
                f"committed {committed} buffered events"
            )

    def drain(self, timeout: float) -> None:
        """Commit everything, retrying an away server for up to ``timeout`` seconds;
        then write what is left to a file and raise ``StoreUnavailable`` saying so."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.commit()
                return
            except StoreUnavailable as exc:
                now = time.monotonic()
                if isinstance(exc, AuthenticationFailed) or now >= deadline:
                    self._give_up(exc)
                    raise
                wait = self.outage.next_try if self.outage is not None else now
                time.sleep(max(0.0, min(wait, deadline) - now))

    def _give_up(self, exc: LedgerError) -> None:
        with self.lock:
            events, self.buffer, self.aux = self.buffer, [], []
        if not events:
            return
        path = self.spill(events)
        runs = sorted({r for r in (getattr(ev, "run", None) for ev in events) if r})
        what = f"{len(events)} events of study {self.study!r}"
        if runs:
            shown = ", ".join(runs[:5]) + (f" and {len(runs) - 5} more" if len(runs) > 5 else "")
            what += f" (runs {shown})"
        if path is None:
            say(f"could not commit {what}: {exc}; they are lost")
        else:
            say(
                f"could not commit {what}: {exc}; they are saved in {path}: "
                f"`ledger --ledger LEDGER append {path}` commits them (re-sending is safe)"
            )

    def spill(self, events: list[Any]) -> Path | None:
        """Write ``events`` as JSON Lines (their wire form, ``ts`` included) to
        ``spill_dir``; None when there is none or it cannot be written."""
        if self.spill_dir is None:
            return None
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.study)[:64] or "study"
        path = Path(self.spill_dir) / f"ledger-unsent-{safe}-{os.getpid()}.jsonl"
        try:
            with open(path, "ab") as f:
                for ev in events:
                    f.write(dumps(to_json_safe(msgspec.to_builtins(ev))) + b"\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError:
            return None
        return path.resolve()


def index_of(exc: EventError, batch: list[Any]) -> int | None:
    """The position in ``batch`` of the event an error of a commit names
    (``recorder buffer[i]``), or None."""
    m = _WHERE.search(exc.where or "")
    if m is None:
        return None
    index = int(m.group(1))
    return index if index < len(batch) else None


def _run_taken(exc: EventError) -> bool:
    """A ``run_started`` refused because its run id is taken (another runner's)."""
    return (
        isinstance(exc, RuleViolation)
        and exc.event_type == "run_started"
        and exc.field == "run"
        and "already exists" in exc.detail
    )
