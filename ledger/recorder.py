"""The runner side (docs/architecture.md): buffered recording of studies, cases, runs and metrics.

A runner pays microseconds per metric: events go to an in-memory buffer (``Outbox``)
that is committed as one batch when it reaches ``batch_size``, every ``interval``
seconds (a background thread), when a run finishes, on exit, and on SIGTERM/SIGINT.
``kill -9`` therefore loses at most what was buffered since the last commit;
``durable=True`` commits every event. A run's final values are held back and committed
in the same batch as its ``run_finished``, so a killed run never leaves final results
that look complete. A run's lease (for resume) is written and deleted in those same
commits.

Each event is stamped and checked at the call that makes it (``ledger.inputs``): a
value the ledger would refuse is refused there, never at a later commit, and carries
the time of the call through buffering, retries and resume.

Each commit waits for the disk (two fsyncs, several milliseconds on a shared VM), so
the default ``batch_size`` is one full block (4,096 events): at a fast runner's rate the
commits stay a small part of its time, and ``interval`` still bounds what a crash can
lose to about a second.

Run ids are deterministic: ``case#attempt``, or ``case~sSEED#attempt`` with a seed
(``attempt_key``), the attempt one past the highest in the log and in this process.
Two runners that start the same attempt at once (two processes, or hosts sharing a
PostgreSQL ledger) are told apart at the commit: the second one's run moves to the next
free attempt, and nothing else of its batch is refused.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from .codec import encode_canonical, event_from_obj, parse_ts
from .errors import EventError, LedgerDecodeError, LedgerError, RuleViolation, RunClosed
from .events import (
    I64_MIN,
    U64_MAX,
    CaseCreated,
    EcoApplied,
    Objective,
    RunStarted,
    SelectionRecorded,
    StudyCreated,
)
from .handles import CaseHandle, RunHandle, RunPruned, run_id_for
from .inputs import Stamp, checked, integer, stamp
from .log import Ledger
from .outbox import Aux, Outbox, index_of, say
from .plan import Plan, attempt_key, build_plan, close_interrupted_runs, lease_key
from .summary import StudyState, study_states

__all__ = ["CaseHandle", "Recorder", "RunHandle", "RunPruned", "attempt_key", "run_id_for"]

_lease_pack = msgspec.msgpack.Encoder().encode

# Attempts handed out in this process, per (ledger id, study): two Recorders of one
# process on one study never allocate the same run id (their run_started events would
# be identical — same host and pid — so the ledger could not tell them apart).
_ALLOCATED: dict[tuple[str, str], dict[str, int]] = {}
_ALLOCATED_LOCK = threading.Lock()


class Recorder:
    """Record a study from a runner process. Use as a context manager.

    Every call checks what it is given and raises ``EventError`` (naming the field)
    there. Raises ``RuleViolation`` at construction when the study already exists with
    another config; a commit that the ledger refuses for one event commits the others
    and raises that event's error (``refused`` lists them). While the server of a shared
    ledger is away the Recorder buffers and retries (``Outbox``): ``max_buffered`` events
    at most, then a call blocks up to ``block_timeout`` seconds; on close it retries for
    ``close_timeout`` seconds, then writes what it could not commit to a file in
    ``spill_dir`` and raises ``StoreUnavailable``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | Ledger,
        study: str,
        *,
        config: Mapping[str, Any] | None = None,
        description: str | None = None,
        objectives: list[Mapping[str, str]] | None = None,
        tags: list[str] | None = None,
        redact: bool = True,
        batch_size: int = 4096,
        interval: float = 1.0,
        durable: bool = False,
        handle_signals: bool = True,
        lease_seconds: float = 60.0,
        ts: Stamp = None,
        max_buffered: int = 100_000,
        retry_max: float = 30.0,
        block_timeout: float = 600.0,
        close_timeout: float = 30.0,
        spill_dir: str | os.PathLike[str] | None = ".",
    ) -> None:
        objs = [
            Objective(metric=o["metric"], direction=o["direction"])  # type: ignore[arg-type]
            for o in objectives or []
        ]
        created = checked(
            StudyCreated(
                study=study,
                config=dict(config) if config is not None else None,
                description=description,
                objectives=objs or None,
                tags=list(tags) if tags is not None else None,
                ts=stamp(ts),
            )
        )
        if isinstance(path, Ledger):
            self.ledger = path
            self._owns_ledger = False
        else:
            self.ledger = Ledger(path)
            self._owns_ledger = True
        self.study = study
        self.redact = redact
        self.batch_size = 1 if durable else max(1, batch_size)
        self.interval = interval
        self.durable = durable
        self.handle_signals = handle_signals
        self.lease_seconds = lease_seconds
        # Leases are judged by the ledger's clock (a shared ledger's server): the offset
        # of this host's clock from it, measured now and at each heartbeat, so stamping
        # a lease costs no round trip and works while the server is away.
        self._skew = self.ledger.clock() - time.time()
        self.close_timeout = close_timeout
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self._lock = threading.RLock()
        self.outbox = Outbox(
            self.ledger,
            study,
            redact=redact,
            lock=self._lock,
            max_buffered=max_buffered,
            retry_max=retry_max,
            block_timeout=block_timeout,
            spill_dir=spill_dir,
            reattempt=self._reattempt,
            on_dropped=self._run_dropped,
        )
        self._open: dict[str, RunHandle] = {}
        self._handles: dict[str, RunHandle] = {}
        self._closed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._old_handlers: dict[int, Any] = {}
        self.state: StudyState = self._load_state()
        self._attempts: dict[str, int] = {}
        self._selections: set[bytes] = set()
        self._learn_state()
        self._emit(created)
        self.flush()

    def _load_state(self) -> StudyState:
        if not self.ledger.has_study(self.study):
            return StudyState(study=self.study)
        folded = study_states(self.ledger, study=self.study)
        return folded.get(self.study, StudyState(study=self.study))

    def _learn_state(self) -> None:
        """Attempts and selections already in the log (after a start or a resume)."""
        for run in self.state.runs.values():
            key = attempt_key(run.case, run.seed)
            self._attempts[key] = max(self._attempts.get(key, 0), run.attempt or 1)
        for stage, survivors, policy in self.state.selections:
            self._selections.add(self._canon([stage, survivors, policy]))

    @property
    def refused(self) -> list[tuple[Any, EventError]]:
        """Events the ledger refused at a commit (and the errors), dropped from the buffer."""
        return self.outbox.refused

    # -- context and lifecycle -------------------------------------------------------

    def __enter__(self) -> Recorder:
        if self.interval and self.interval > 0 and not self.durable:
            self._thread = threading.Thread(
                target=self._flusher, name="ledger-recorder-flush", daemon=True
            )
            self._thread.start()
        if self.handle_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old_handlers[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        reason = None if exc is None else f"runner exited with {exc_type.__name__}"
        # With an exception on its way out, a failed final commit is said on stderr (by
        # the outbox) rather than raised over the runner's own exception.
        self.close(cancel_reason=reason, _quiet=exc is not None)

    def close(self, *, cancel_reason: str | None = None, _quiet: bool = False) -> None:
        """Finish open runs as ``cancelled`` (they cannot complete any more), commit
        everything buffered (retrying an away server for ``close_timeout`` seconds),
        stop the flush thread and restore signal handlers."""
        if self._closed:
            return
        refused = self._cancel_open(cancel_reason or "recorder closed before the run")
        self._closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.outbox.drain(self.close_timeout)
            if refused is not None:
                raise refused
        except LedgerError:
            if not _quiet:
                raise
        finally:
            for sig, handler in self._old_handlers.items():
                signal.signal(sig, handler)
            self._old_handlers.clear()
            if self._owns_ledger:
                self.ledger.close()

    def _cancel_open(self, reason: str) -> EventError | None:
        """Finish every open run as ``cancelled``; the first refusal their commits met
        (raised after everything else is committed)."""
        first = None
        with self._lock:
            for run in list(self._open.values()):
                try:
                    run.finish("cancelled", error=reason)
                except EventError as exc:
                    first = first or exc
        return first

    def _on_signal(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        self._cancel_open(f"received {name}")
        try:
            self.outbox.drain(self.close_timeout)
        except LedgerError as exc:
            say(f"on {name}: {exc}")
        old = self._old_handlers.get(signum)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        if callable(old) and old not in (signal.SIG_IGN, signal.SIG_DFL):
            old(signum, frame)
        raise SystemExit(128 + signum)

    def _flusher(self) -> None:
        while not self._stop.wait(self._next_tick()):
            try:
                self.outbox.try_commit()
                if self.outbox.outage is None:
                    self._heartbeat()
            except EventError as exc:
                # Dropped from the buffer and kept in ``refused``; the runner's thread
                # cannot be interrupted, so it is said here.
                say(f"refused at commit and dropped: {exc}")
            except LedgerError:
                pass  # kept buffered; the next commit tries again, the runner's raises

    def _next_tick(self) -> float:
        outage = self.outbox.outage
        if outage is None:
            return self.interval
        return max(0.05, min(self.interval, outage.next_try - time.monotonic()))

    # -- declarations ---------------------------------------------------------------

    def case(
        self,
        case: str,
        *,
        params: Mapping[str, Any] | None = None,
        parents: list[str | CaseHandle] | None = None,
        stage: int = 0,
        ts: Stamp = None,
    ) -> CaseHandle:
        """Declare a case; declaring an existing case with the same params returns it.
        ``ts``: when it was declared; default now."""
        parent_ids = [p.id if isinstance(p, CaseHandle) else p for p in parents or []]
        event = checked(
            CaseCreated(
                study=self.study,
                case=case,
                parents=parent_ids or None,
                stage=integer(stage, "stage"),
                params=dict(params) if params else None,
                ts=stamp(ts),
            )
        )
        params = event.params or {}
        existing = self.state.cases.get(case)
        if existing is not None:
            self._same_params(case, existing, params)
            return CaseHandle(self, case, existing["stage"], params)
        self._emit(event)
        self.state.cases[case] = {"stage": event.stage, "params": params, "seq": 0}
        return CaseHandle(self, case, event.stage, params)

    def derive(
        self,
        parent: str | CaseHandle | list[str | CaseHandle],
        *,
        eco: str,
        case: str | None = None,
        params: Mapping[str, Any] | None = None,
        eco_class: str | None = None,
        stage: int | None = None,
        ts: Stamp = None,
    ) -> CaseHandle:
        """Create a child case by applying an ECO (a change) to ``parent`` — or to a list
        of parents (a merge of survivors; every edge is labelled with the ECO). The
        child is ``case``, by default ``"{parent}+{eco}"`` (the parents joined by ``+``);
        its stage defaults to the parents' highest + 1. ``ts``: when; default now."""
        many = isinstance(parent, (list, tuple))
        given = list(parent) if isinstance(parent, (list, tuple)) else [parent]
        parent_ids = [p.id if isinstance(p, CaseHandle) else p for p in given]
        stages = []
        for i, name in enumerate(parent_ids):
            info = self.state.cases.get(name)
            if info is None:
                raise RuleViolation(
                    f"parent case {name!r} is not declared in study {self.study!r}",
                    event_type="eco_applied",
                    field=f"parents[{i}]" if many else "parent",
                )
            stages.append(info["stage"])
        child = case or "+".join([*parent_ids, eco])
        event = checked(
            EcoApplied(
                study=self.study,
                case=child,
                # one parent keeps the field an older ledger holds: the same bytes
                parent=parent_ids[0] if len(parent_ids) == 1 else None,
                parents=parent_ids if len(parent_ids) != 1 else None,
                eco=eco,
                eco_class=eco_class,
                params=dict(params) if params else None,
                stage=max(stages, default=-1) + 1 if stage is None else integer(stage, "stage"),
                ts=stamp(ts),
            )
        )
        params = event.params or {}
        existing = self.state.cases.get(child)
        if existing is not None:
            self._same_params(child, existing, params)
            return CaseHandle(self, child, existing["stage"], params)
        self._emit(event)
        self.state.cases[child] = {"stage": event.stage, "params": params, "seq": 0}
        return CaseHandle(self, child, event.stage, params)

    def _same_params(self, case: str, existing: dict[str, Any], params: dict[str, Any]) -> None:
        if params and existing["params"] and self._canon(existing["params"]) != self._canon(params):
            raise RuleViolation(
                f"case {case!r} already exists in study {self.study!r} with other params "
                f"({existing['params']!r}); give the new case another id",
                event_type="case_created",
                field="case",
            )

    def _canon(self, obj: Any) -> bytes:
        from .redact import redact

        return encode_canonical(redact(obj)[0] if self.redact else obj)

    def select(
        self,
        stage: int,
        survivors: list[str | CaseHandle],
        *,
        policy: Mapping[str, Any] | None = None,
        ts: Stamp = None,
    ) -> None:
        """Record the runner's own survivor decision for the audit trail (``ts``: when
        it was made; default now). The same decision (stage, survivors, policy) already
        in the log — a restarted runner deciding again — appends nothing."""
        event = checked(
            SelectionRecorded(
                study=self.study,
                stage=integer(stage, "stage"),
                survivors=[s.id if isinstance(s, CaseHandle) else s for s in survivors],
                policy=dict(policy) if policy else None,
                ts=stamp(ts),
            )
        )
        key = self._canon([event.stage, event.survivors, event.policy])
        if key in self._selections:
            return
        self.outbox.try_commit()
        as_of = None  # unknown while events wait in the buffer (a server away)
        if not self.outbox.buffer:
            as_of = self.ledger.head.seq or None
        self._emit(msgspec.structs.replace(event, as_of=as_of))
        self._selections.add(key)

    # -- runs -----------------------------------------------------------------------

    def _allocate(self, case: str, seed: int | None) -> int:
        """The next attempt of (case, seed): one past the highest in the log as this
        Recorder knows it and the highest any Recorder of this process handed out."""
        key = attempt_key(case, seed)
        with _ALLOCATED_LOCK:
            mine = _ALLOCATED.setdefault((self.ledger.ledger_id, self.study), {})
            attempt = max(self._attempts.get(key, 0), mine.get(key, 0)) + 1
            mine[key] = self._attempts[key] = attempt
        return attempt

    def start_run(
        self,
        case: CaseHandle,
        *,
        seed: int | None = None,
        config: Mapping[str, Any] | None = None,
        provenance: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        ts: Stamp = None,
    ) -> RunHandle:
        """Start a run of ``case`` (see ``CaseHandle.run``)."""
        if seed is not None:
            seed = integer(seed, "seed", lo=I64_MIN, hi=U64_MAX)
        event = checked(
            RunStarted(
                study=self.study,
                case=case.id,
                run=run_id or "-",
                attempt=1,
                seed=seed,
                host=self.host,
                pid=self.pid,
                config=dict(config) if config is not None else None,
                provenance=dict(provenance) if provenance is not None else None,
                ts=stamp(ts),
            )
        )
        with self._lock:
            attempt = self._allocate(case.id, seed)
            rid = run_id or run_id_for(case.id, attempt, seed)
            if len(rid) > 256:
                raise LedgerDecodeError(
                    f"run id {rid[:40]!r}... would be {len(rid)} characters (at most 256); "
                    "give the run a shorter run_id",
                    event_type="run_started",
                    field="run",
                )
            handle = RunHandle(self, case, rid, seed)
            handle.auto_id = run_id is None
            self._open[rid] = handle
            self._handles[rid] = handle
            # The lease goes with the run's start, in the same commit.
            lease = ("leases", lease_key(self.study, rid), self._lease_value())
            self._emit(msgspec.structs.replace(event, run=rid, attempt=attempt), [lease])
        return handle

    def _finish_run(self, run: RunHandle, events: list[Any]) -> None:
        with self._lock:
            self._open.pop(run.id, None)
            self.outbox.add(events, [("leases", lease_key(self.study, run.id), None)])
        self.outbox.try_commit()

    # -- ready-made events ----------------------------------------------------------

    def record(self, events: Iterable[Any]) -> None:
        """Buffer ready-made events of this study — wire dicts or event structs — for
        the next commit, as they are: the ``id`` and ``ts`` they carry are kept (a
        missing ``ts`` is stamped now). For adapters that turn another tool's records
        into exactly the events an importer of that tool makes (the Optuna callback).

        Each event is converted and checked here, so a malformed one is refused at the
        call and nothing of the call is buffered; the rules that need the log (a case
        before its runs, ...) are checked at the commit, as for every event.

        Raises ``LedgerDecodeError`` (a malformed event) and ``RuleViolation`` (an event
        of another study).
        """
        now = stamp()
        replace = msgspec.structs.replace
        out = []
        for obj in events:
            if isinstance(obj, msgspec.Struct) and hasattr(obj, "TYPE"):
                ev = checked(obj)
            else:
                ev = event_from_obj(obj)
            if ev.study != self.study:
                raise RuleViolation(
                    f"this recorder records study {self.study!r}, not {ev.study!r}",
                    event_type=ev.TYPE,
                    field="study",
                )
            if ev.ts is not None:
                parse_ts(ev.ts)  # a bad time is refused here, not at the commit
            out.append(ev if ev.ts is not None else replace(ev, ts=now))
        if self._closed:
            raise LedgerError("the recorder is closed")
        if self.outbox.add(out) >= self.batch_size:
            self.outbox.try_commit()

    # -- buffer and commits ---------------------------------------------------------

    def _emit(self, event: Any, aux: list[Aux] | None = None) -> None:
        if self._closed:
            raise LedgerError("the recorder is closed")
        if self.outbox.add([event], aux or []) >= self.batch_size:
            self.outbox.try_commit()

    def flush(self) -> int:
        """Commit everything buffered as one batch; returns the number appended.

        Raises ``StoreUnavailable`` while the server of a shared ledger is away (the
        events stay buffered and the Recorder keeps retrying), and the ``EventError``
        of an event the ledger refused (dropped; the rest of the batch is committed).
        """
        return self.outbox.commit()

    # -- runs that must move to another attempt -------------------------------------------

    def _reattempt(
        self, batch: list[Any], aux: list[Aux], exc: EventError
    ) -> tuple[list[Any], list[Aux]] | None:
        """The batch rewritten so that it can commit: a run closed elsewhere goes on
        under a new attempt; a run whose id another runner took first moves to the next
        free attempt. None when that cannot be done (the runner chose the run id)."""
        with self._lock:
            if isinstance(exc, RunClosed):
                return self._continue_closed(batch, aux, exc)
            return self._move_taken(batch, aux, exc)

    def _move_taken(
        self, batch: list[Any], aux: list[Aux], exc: EventError
    ) -> tuple[list[Any], list[Aux]] | None:
        index = index_of(exc, batch)
        if index is None or batch[index].TYPE != "run_started":
            return None
        started = batch[index]
        handle = self._handles.get(started.run)
        if handle is None or not handle.auto_id:
            return None
        attempt = self._allocate(started.case, started.seed)
        new = run_id_for(started.case, attempt, started.seed)
        batch = list(batch)
        batch[index] = msgspec.structs.replace(started, run=new, attempt=attempt)
        return self._rename(batch, aux, started.run, new, index + 1)

    def _continue_closed(
        self, batch: list[Any], aux: list[Aux], exc: RunClosed
    ) -> tuple[list[Any], list[Aux]] | None:
        run = exc.run
        first = next((i for i, ev in enumerate(batch) if getattr(ev, "run", None) == run), None)
        if run is None or first is None:
            return None
        handle = self._handles.get(run)
        state = self.state.runs.get(run)
        case = handle.case.id if handle else (state.case if state else None)
        seed = handle.seed if handle else (state.seed if state else None)
        if case is None:
            return None
        attempt = self._allocate(case, seed)
        new = run_id_for(case, attempt, seed)
        warnings.warn(
            f"run {run!r} was closed by another process (seq {exc.closed_seq}); recording "
            f"what followed under a new attempt {new!r}",
            stacklevel=4,
        )
        started = RunStarted(
            study=self.study,
            case=case,
            run=new,
            attempt=attempt,
            seed=seed,
            host=self.host,
            pid=self.pid,
            config={"continues": run},
            ts=batch[first].ts,
        )
        return self._rename(batch[:first] + [started] + batch[first:], aux, run, new, first + 1)

    def _rename(
        self, batch: list[Any], aux: list[Aux], old: str, new: str, start: int
    ) -> tuple[list[Any], list[Aux]]:
        """Events of run ``old`` from ``start`` on (and those buffered meanwhile), its
        leases and its handle, renamed ``new``."""
        replace = msgspec.structs.replace

        def moved(events: list[Any]) -> list[Any]:
            return [
                replace(ev, run=new) if getattr(ev, "run", None) == old else ev for ev in events
            ]

        batch = batch[:start] + moved(batch[start:])
        self.outbox.buffer = moved(self.outbox.buffer)
        old_key, new_key = lease_key(self.study, old), lease_key(self.study, new)
        aux = [(t, new_key if (t, k) == ("leases", old_key) else k, v) for t, k, v in aux]
        self.outbox.aux = [
            (t, new_key if (t, k) == ("leases", old_key) else k, v) for t, k, v in self.outbox.aux
        ]
        handle = self._handles.get(old)
        if handle is not None:
            handle.id = new
            self._handles[new] = handle
            if self._open.pop(old, None) is not None:
                self._open[new] = handle
        return batch, aux

    def _run_dropped(self, run: str, exc: EventError) -> None:
        """A run the ledger refused: later calls on its handle raise, saying why."""
        with self._lock:
            handle = self._handles.get(run)
            if handle is not None:
                handle.refused = exc
            self._open.pop(run, None)

    # -- leases ----------------------------------------------------------------------

    def _lease_value(self) -> bytes:
        return _lease_pack(
            {
                "host": self.host,
                "pid": self.pid,
                "expires": time.time() + self._skew + self.lease_seconds,
            }
        )

    def _lease(self, run: str) -> None:
        self.ledger.aux_put("leases", lease_key(self.study, run), self._lease_value())

    def _heartbeat(self) -> None:
        self._skew = self.ledger.clock() - time.time()
        with self._lock:
            runs = list(self._open)
        for run in runs:
            self._lease(run)

    # -- resume ----------------------------------------------------------------------

    def resume(self, *, close_interrupted: bool = True) -> Plan:
        """What a restarted runner must still do: completed, failed, interrupted, running
        runs and pending cases. Interrupted runs are closed with status ``interrupted``."""
        self.flush()
        self.state = self._load_state()
        plan = build_plan(self.ledger, self.study, self.state)
        if close_interrupted and plan.to_close:
            close_interrupted_runs(self.ledger, self.study, plan, redact=self.redact)
            self.state = self._load_state()
        self._learn_state()
        return plan
