"""The runner side (DESIGN §6): buffered recording of studies, cases, runs and metrics.

A runner pays microseconds per metric: events go to an in-memory buffer that is
committed as one batch when it reaches ``batch_size``, every ``interval`` seconds (a
background thread), when a run finishes, on exit, and on SIGTERM/SIGINT. ``kill -9``
therefore loses at most what was buffered since the last commit; ``durable=True``
commits every event. A run's final values are held back and committed in the same batch
as its ``run_finished``, so a killed run never leaves final results that look complete.
A run's lease (for resume) is written and deleted in those same commits.

Each commit waits for the disk (two fsyncs, several milliseconds on a shared VM), so
the default ``batch_size`` is one full block (4,096 events): at a fast runner's rate the
commits stay a small part of its time, and ``interval`` still bounds what a crash can
lose to about a second.

Run ids are deterministic (``case#attempt``, or ``case~sSEED#attempt`` with a seed), so
a restarted runner that re-emits what was already recorded appends nothing new.
"""

from __future__ import annotations

import math
import numbers
import os
import signal
import socket
import threading
import time
import warnings
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, Union

import msgspec

from .codec import encode_canonical, format_ts, parse_ts
from .errors import LedgerDecodeError, LedgerError, RuleViolation, RunClosed
from .events import (
    ArtifactRecorded,
    CaseCreated,
    EcoApplied,
    MetricsRecorded,
    Objective,
    RunFinished,
    RunStarted,
    SelectionRecorded,
    StudyCreated,
    strict_class,
)
from .log import Ledger
from .plan import Plan, build_plan, close_interrupted_runs, lease_key
from .summary import StudyState, study_states

__all__ = ["CaseHandle", "Recorder", "RunHandle"]

_lease_pack = msgspec.msgpack.Encoder().encode
_StrictMetrics = strict_class("metrics_recorded")


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
_now = time.time  # the clock events are stamped with (a module attribute: tests replace it)

Stamp = Union[str, float, datetime, None]
"""What a runner may pass as ``ts=``: RFC 3339 with an offset, Unix seconds, or an
aware ``datetime``; None stamps the event with the time of the call."""


def stamp(ts: Stamp = None) -> str | float:
    """The ``ts`` an event gets at the runner's call: now, or the caller's own time,
    checked here so that a bad time is refused at the call, never at a later commit.

    Raises ``LedgerDecodeError`` naming ``ts``.
    """
    if ts is None:
        return _now()
    if isinstance(ts, datetime):
        if ts.utcoffset() is None:
            raise LedgerDecodeError(
                "`ts`: a datetime without a time zone is ambiguous; give it one "
                "(e.g. datetime.now(timezone.utc))",
                field="ts",
            )
        return format_ts((ts - _EPOCH) // _MICROSECOND)
    if isinstance(ts, str):
        parse_ts(ts)
        return ts
    if isinstance(ts, numbers.Real) and not isinstance(ts, bool):
        seconds = float(ts)  # numpy scalars too
        parse_ts(seconds)  # refuses NaN and infinities
        return seconds
    if isinstance(ts, bool):
        parse_ts(ts)  # "must be a timestamp, got a boolean"
    raise LedgerDecodeError(
        f"`ts` must be an RFC 3339 string, Unix seconds or an aware datetime, got "
        f"{type(ts).__name__}",
        field="ts",
    )


_PLAIN = frozenset((int, float))
_STR = frozenset((str,))


def _clean_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Metric values as plain ints and floats, refused at the call site when they are not
    numbers, so a bad value never enters the buffer (and never blocks later commits)."""
    out = dict(values)
    vals = out.values()
    if _PLAIN.issuperset(map(type, vals)) and _STR.issuperset(map(type, out)):
        # The usual call: str names, int and float values. One sum says whether a NaN
        # is among them (inf - inf is NaN too: the loop below then looks closer).
        try:
            total = sum(vals)
        except OverflowError:
            total = math.nan
        if total == total:
            return out
    for name, value in out.items():
        if type(name) is not str:
            raise LedgerDecodeError(
                f"metric name {name!r} is not a string",
                event_type="metrics_recorded",
                field="values",
            )
        kind = type(value)
        if kind is int:
            continue
        if kind is float:
            if value != value:
                out[name] = math.nan  # one canonical NaN (see codec.canonical_values)
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise LedgerDecodeError(
                f"metric {name!r}: {value!r} is not a number (metric values are ints or floats)",
                event_type="metrics_recorded",
                field=f"values.{name}",
            )
        value = int(value) if isinstance(value, numbers.Integral) else float(value)
        out[name] = math.nan if value != value else value
    return out


def run_id_for(case: str, attempt: int, seed: int | None = None) -> str:
    key = case if seed is None else f"{case}~s{seed}"
    return f"{key}#{attempt}"


class CaseHandle:
    """A declared case; ``run()`` starts a run of it."""

    def __init__(self, recorder: Recorder, case: str, stage: int, params: dict[str, Any]) -> None:
        self.recorder = recorder
        self.id = case
        self.stage = stage
        self.params = params

    def run(
        self,
        *,
        seed: int | None = None,
        config: Mapping[str, Any] | None = None,
        provenance: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        ts: Stamp = None,
    ) -> RunHandle:
        """Start a run of this case (``ts``: when it started; default now)."""
        return self.recorder.start_run(
            self, seed=seed, config=config, provenance=provenance, run_id=run_id, ts=ts
        )

    def __repr__(self) -> str:
        return f"CaseHandle({self.id!r}, stage={self.stage})"


class RunHandle:
    """An open run. As a context manager it finishes ``completed`` on a clean exit and
    ``failed`` (with the exception text) when the body raises."""

    def __init__(self, recorder: Recorder, case: CaseHandle, run: str, seed: int | None) -> None:
        self.recorder = recorder
        self.case = case
        self.id = run
        self.seed = seed
        self.finished = False
        self.finals: dict[str, float] = {}
        self._finals_ts: str | float | None = None
        self._t0 = time.perf_counter()
        self._cpu0 = time.process_time()

    def log(
        self, values: Mapping[str, float], step: int | None = None, *, ts: Stamp = None
    ) -> None:
        """Record metric values; without ``step`` they are final results, committed
        together with the run's finish (stamped with the time of the last call that
        gave one). ``ts``: when the values were measured; default now."""
        if self.finished:
            raise LedgerError(f"run {self.id!r} is finished; start a new run to record more")
        when = stamp(ts)
        values = _clean_values(values)
        if step is None:
            self.finals.update(values)
            self._finals_ts = when
            return
        if type(step) is not int or step < 0:
            raise LedgerDecodeError(
                f"step {step!r} is not an int >= 0",
                event_type="metrics_recorded",
                field="step",
            )
        # Values, step and names are checked: the strict class skips re-validation.
        self.recorder._emit(
            _StrictMetrics(
                study=self.recorder.study, run=self.id, values=values, step=step, ts=when
            )
        )

    def artifact(self, name: str, uri: str, *, ts: Stamp = None, **extra: Any) -> None:
        """Record a file the run produced, by reference (``sha256``, ``bytes``,
        ``media_type`` in ``extra``)."""
        when = stamp(ts)
        self.recorder._emit(
            ArtifactRecorded(
                study=self.recorder.study, run=self.id, name=name, uri=uri, ts=when, **extra
            )
        )

    def finish(
        self,
        status: str = "completed",
        *,
        error: str | None = None,
        resources: Mapping[str, Any] | None = None,
        ts: Stamp = None,
    ) -> None:
        """Finish the run (``ts``: when it ended; default now); a second call is a no-op."""
        if self.finished:
            return
        when = stamp(ts)
        self.finished = True
        res = {
            "wall_s": round(time.perf_counter() - self._t0, 6),
            "cpu_s": round(time.process_time() - self._cpu0, 6),
        }
        if resources:
            res.update(resources)
        events: list[Any] = []
        if self.finals:
            events.append(
                MetricsRecorded(
                    study=self.recorder.study,
                    run=self.id,
                    values=dict(self.finals),
                    ts=self._finals_ts,
                )
            )
        events.append(
            RunFinished(
                study=self.recorder.study,
                run=self.id,
                status=status,
                error=error,
                resources=res,
                ts=when,
            )
        )
        self.recorder._finish_run(self, events)

    def __enter__(self) -> RunHandle:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self.finished:
            return
        if exc is None:
            self.finish("completed")
        elif isinstance(exc, KeyboardInterrupt):
            self.finish("cancelled", error="KeyboardInterrupt")
        else:
            import traceback  # only a failing run needs it (start-up cost otherwise)

            text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            self.finish("failed", error=text[:4000])

    def __repr__(self) -> str:
        return f"RunHandle({self.id!r})"


class Recorder:
    """Record a study from a runner process. Use as a context manager.

    Raises ``RuleViolation`` at construction when the study already exists with another
    config, and from any call whose commit the ledger refuses.
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
    ) -> None:
        created = stamp(ts)
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
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self._lock = threading.RLock()
        self._buffer: list[Any] = []
        self._aux: list[tuple[str, bytes, bytes | None]] = []  # leases, with the next commit
        self._open: dict[str, RunHandle] = {}
        self._handles: dict[str, RunHandle] = {}
        self._closed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._old_handlers: dict[int, Any] = {}
        self.state: StudyState = self._load_state()
        self._attempts: dict[str, int] = {}
        for run in self.state.runs.values():
            key = run.case if run.seed is None else f"{run.case}~s{run.seed}"
            self._attempts[key] = max(self._attempts.get(key, 0), run.attempt or 1)
        objs = [Objective(metric=o["metric"], direction=o["direction"]) for o in objectives or []]
        self._emit(
            StudyCreated(
                study=study,
                config=dict(config) if config is not None else None,
                description=description,
                objectives=objs or None,
                tags=list(tags) if tags is not None else None,
                ts=created,
            )
        )
        self.flush()

    def _load_state(self) -> StudyState:
        if not self.ledger.has_study(self.study):
            return StudyState(study=self.study)
        folded = study_states(self.ledger, study=self.study)
        return folded.get(self.study, StudyState(study=self.study))

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
        self.close(cancel_reason=None if exc is None else f"runner exited with {exc_type.__name__}")

    def close(self, *, cancel_reason: str | None = None) -> None:
        """Finish open runs as ``cancelled`` (they cannot complete any more), commit
        everything buffered, stop the flush thread and restore signal handlers."""
        if self._closed:
            return
        with self._lock:
            for run in list(self._open.values()):
                run.finish("cancelled", error=cancel_reason or "recorder closed before the run")
            self._closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.flush()
        finally:
            for sig, handler in self._old_handlers.items():
                signal.signal(sig, handler)
            self._old_handlers.clear()
            if self._owns_ledger:
                self.ledger.close()

    def _on_signal(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        with self._lock:
            for run in list(self._open.values()):
                run.finish("cancelled", error=f"received {name}")
        self.flush()
        old = self._old_handlers.get(signum)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        if callable(old) and old not in (signal.SIG_IGN, signal.SIG_DFL):
            old(signum, frame)
        raise SystemExit(128 + signum)

    def _flusher(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.flush()
                self._heartbeat()
            except LedgerError:
                # The next explicit flush raises it to the runner; never die silently
                # with events lost: the buffer is kept on failure.
                pass

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
        when = stamp(ts)
        parent_ids = [p.id if isinstance(p, CaseHandle) else p for p in parents or []]
        params = dict(params or {})
        existing = self.state.cases.get(case)
        if existing is not None:
            self._same_params(case, existing, params)
            return CaseHandle(self, case, existing["stage"], params)
        self._emit(
            CaseCreated(
                study=self.study,
                case=case,
                parents=parent_ids or None,
                stage=stage,
                params=params or None,
                ts=when,
            )
        )
        self.state.cases[case] = {"stage": stage, "params": params, "seq": 0}
        return CaseHandle(self, case, stage, params)

    def derive(
        self,
        parent: str | CaseHandle,
        *,
        eco: str,
        case: str | None = None,
        params: Mapping[str, Any] | None = None,
        eco_class: str | None = None,
        stage: int | None = None,
        ts: Stamp = None,
    ) -> CaseHandle:
        """Create a child case by applying an ECO (a change) to ``parent``; ``ts``: when;
        default now."""
        when = stamp(ts)
        parent_id = parent.id if isinstance(parent, CaseHandle) else parent
        parent_info = self.state.cases.get(parent_id)
        if parent_info is None:
            raise RuleViolation(
                f"parent case {parent_id!r} is not declared in study {self.study!r}",
                event_type="eco_applied",
                field="parent",
            )
        child = case or f"{parent_id}+{eco}"
        stage = parent_info["stage"] + 1 if stage is None else stage
        params = dict(params or {})
        existing = self.state.cases.get(child)
        if existing is not None:
            self._same_params(child, existing, params)
            return CaseHandle(self, child, existing["stage"], params)
        self._emit(
            EcoApplied(
                study=self.study,
                case=child,
                parent=parent_id,
                eco=eco,
                eco_class=eco_class,
                params=params or None,
                stage=stage,
                ts=when,
            )
        )
        self.state.cases[child] = {"stage": stage, "params": params, "seq": 0}
        return CaseHandle(self, child, stage, params)

    def _same_params(self, case: str, existing: dict[str, Any], params: dict[str, Any]) -> None:
        if params and existing["params"] and self._canon(existing["params"]) != self._canon(params):
            raise RuleViolation(
                f"case {case!r} already exists in study {self.study!r} with other params "
                f"({existing['params']!r}); give the new case another id",
                event_type="case_created",
                field="case",
            )

    def _canon(self, params: dict[str, Any]) -> bytes:
        from .redact import redact

        return encode_canonical(redact(params)[0] if self.redact else params)

    def select(
        self,
        stage: int,
        survivors: list[str | CaseHandle],
        *,
        policy: Mapping[str, Any] | None = None,
        ts: Stamp = None,
    ) -> None:
        """Record the runner's own survivor decision for the audit trail (``ts``: when
        it was made; default now)."""
        when = stamp(ts)
        self.flush()
        self._emit(
            SelectionRecorded(
                study=self.study,
                stage=stage,
                survivors=[s.id if isinstance(s, CaseHandle) else s for s in survivors],
                policy=dict(policy) if policy else None,
                as_of=self.ledger.head.seq or None,
                ts=when,
            )
        )

    # -- runs -----------------------------------------------------------------------

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
        when = stamp(ts)
        with self._lock:
            key = case.id if seed is None else f"{case.id}~s{seed}"
            attempt = self._attempts.get(key, 0) + 1
            self._attempts[key] = attempt
            rid = run_id or run_id_for(case.id, attempt, seed)
            handle = RunHandle(self, case, rid, seed)
            # The lease goes with the run's start, in the same commit.
            self._aux.append(("leases", lease_key(self.study, rid), self._lease_value()))
            self._emit(
                RunStarted(
                    study=self.study,
                    case=case.id,
                    run=rid,
                    attempt=attempt,
                    seed=seed,
                    host=self.host,
                    pid=self.pid,
                    config=dict(config) if config is not None else None,
                    provenance=dict(provenance) if provenance is not None else None,
                    ts=when,
                )
            )
            self._open[rid] = handle
            self._handles[rid] = handle
        return handle

    def _finish_run(self, run: RunHandle, events: list[Any]) -> None:
        with self._lock:
            self._buffer.extend(events)
            self._open.pop(run.id, None)
            self._aux.append(("leases", lease_key(self.study, run.id), None))
        self.flush()

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
        from .codec import event_from_obj

        now = stamp()
        replace = msgspec.structs.replace
        out = []
        for obj in events:
            ev = obj if isinstance(obj, msgspec.Struct) and hasattr(obj, "TYPE") else None
            if ev is None:
                ev = event_from_obj(obj)
            if ev.study != self.study:
                raise RuleViolation(
                    f"this recorder records study {self.study!r}, not {ev.study!r}",
                    event_type=ev.TYPE,
                    field="study",
                )
            out.append(ev if ev.ts is not None else replace(ev, ts=now))
        with self._lock:
            if self._closed:
                raise LedgerError("the recorder is closed")
            self._buffer.extend(out)
            full = len(self._buffer) >= self.batch_size
        if full:
            self.flush()

    # -- buffer and commits ---------------------------------------------------------

    def _emit(self, event: Any) -> None:
        with self._lock:
            if self._closed:
                raise LedgerError("the recorder is closed")
            self._buffer.append(event)
            full = len(self._buffer) >= self.batch_size
        if full:
            self.flush()

    def flush(self) -> int:
        """Commit everything buffered as one batch; returns the number appended.

        On failure the buffer is kept, so nothing is lost by a refused commit; the error
        propagates to the caller.
        """
        with self._lock:
            if not self._buffer and not self._aux:
                return 0
            batch, aux = self._buffer, self._aux
            self._buffer, self._aux = [], []
            rerouted: set[str] = set()
            while True:
                try:
                    result = self.ledger.append(batch, redact=self.redact, aux=aux)
                    break
                except RunClosed as exc:
                    # Someone (a resume elsewhere) closed this run while we were still
                    # recording it: keep what follows under a new attempt, never drop it.
                    if exc.run is None or exc.run in rerouted:
                        self._buffer, self._aux = batch + self._buffer, aux + self._aux
                        raise
                    rerouted.add(exc.run)
                    batch = self._reroute(batch, exc.run, exc.closed_seq)
                except BaseException:
                    self._buffer, self._aux = batch + self._buffer, aux + self._aux
                    raise
        return result.appended

    def _reroute(self, batch: list[Any], run: str, closed_seq: int | None) -> list[Any]:
        replace = msgspec.structs.replace
        first = next(i for i, ev in enumerate(batch) if getattr(ev, "run", None) == run)
        handle = self._handles.get(run)
        state = self.state.runs.get(run)
        case = handle.case.id if handle else (state.case if state else None)
        seed = handle.seed if handle else (state.seed if state else None)
        if case is None:
            started = next((ev for ev in batch if ev.TYPE == "run_started" and ev.run == run), None)
            if started is None:
                raise LedgerError(f"cannot re-attempt run {run!r}: its case is unknown")
            case, seed = started.case, started.seed
        key = case if seed is None else f"{case}~s{seed}"
        attempt = self._attempts.get(key, 0) + 1
        self._attempts[key] = attempt
        new = run_id_for(case, attempt, seed)
        warnings.warn(
            f"run {run!r} was closed by another process (seq {closed_seq}); recording what "
            f"followed under a new attempt {new!r}",
            stacklevel=3,
        )
        out = batch[:first] + [
            RunStarted(
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
        ]
        out += [
            replace(ev, run=new) if getattr(ev, "run", None) == run else ev for ev in batch[first:]
        ]
        if handle is not None:
            handle.id = new
            self._handles[new] = handle
            if self._open.pop(run, None) is not None:
                self._open[new] = handle
        return out

    # -- leases ----------------------------------------------------------------------

    def _lease_value(self) -> bytes:
        return _lease_pack(
            {"host": self.host, "pid": self.pid, "expires": time.time() + self.lease_seconds}
        )

    def _lease(self, run: str) -> None:
        self.ledger.aux_put("leases", lease_key(self.study, run), self._lease_value())

    def _heartbeat(self) -> None:
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
        return plan
