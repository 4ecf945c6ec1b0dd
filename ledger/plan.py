"""The resume plan (docs/architecture.md, The runner side): what a restarted runner still has to do.

A started, unfinished run is *running* while it is on this host with its pid alive, or
on another host with a fresh lease; otherwise it is *interrupted*. On this host a dead
pid is proof even when the lease has not expired yet (a ``kill -9`` leaves a lease
behind).
Runs already closed with status ``interrupted`` count as interrupted too. A case is
*pending* when it has no completed and no running run.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import msgspec

from .errors import LedgerError
from .summary import StudyState

__all__ = [
    "Plan",
    "attempt_key",
    "build_plan",
    "close_interrupted_runs",
    "lease_key",
    "pid_alive",
]

_lease_decode = msgspec.msgpack.Decoder(dict[str, Any])


def attempt_key(case: str, seed: int | None = None) -> str:
    """What the attempts of a run are counted per: the case, and the seed when there is
    one. The Recorder's run ids are ``f"{attempt_key(case, seed)}#{attempt}"``."""
    return case if seed is None else f"{case}~s{seed}"


def lease_key(study: str, run: str) -> bytes:
    return f"{study}\x00{run}".encode("utf-8", "surrogatepass")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Plan(msgspec.Struct, kw_only=True, dict=True):
    study: str
    completed: list[str]
    failed: list[str]
    interrupted: list[str]
    running: list[str]
    pending: list[str]
    done_cases: list[str]
    to_close: list[tuple[str, str]] = msgspec.field(default_factory=list)
    done_keys: list[str] = msgspec.field(default_factory=list)  # attempt keys completed

    def done(self, case: Any, seed: int | None = None) -> bool:
        """True once the case has a completed run (with ``seed``, a completed run of that
        seed): a runner can skip it. ``case`` is a case id or a ``CaseHandle``."""
        name = getattr(case, "id", case)
        if seed is not None:
            if hasattr(seed, "item") and not isinstance(seed, int):
                seed = seed.item()  # a numpy integer
            name, slot = attempt_key(name, seed), "_done_keys"
            source = self.done_keys
        else:
            slot, source = "_done", self.done_cases
        try:
            done = self.__dict__[slot]
        except KeyError:  # built once: a runner asks for every case of its loop
            done = self.__dict__[slot] = frozenset(source)
        return name in done

    def to_dict(self) -> dict[str, Any]:
        return {
            "study": self.study,
            "completed": self.completed,
            "failed": self.failed,
            "interrupted": self.interrupted,
            "running": self.running,
            "pending": self.pending,
        }


def build_plan(ledger: Any, study: str, state: StudyState, *, now: float | None = None) -> Plan:
    """Classify a study's runs and cases. Raises ``LedgerError`` for an unknown study."""
    if not ledger.has_study(study):
        known = ", ".join(ledger.studies()) or "none"
        raise LedgerError(f"unknown study {study!r} (known: {known})")
    # The ledger's clock, by which leases were stamped: on a shared ledger the server's,
    # so a host whose clock is off cannot judge another host's run dead (or alive).
    now = ledger.clock() if now is None else now
    host = socket.gethostname()
    completed, failed, interrupted, running = [], [], [], []
    to_close: list[tuple[str, str]] = []
    for run_id, run in sorted(state.runs.items()):
        if run.status is None:
            lease_raw = ledger.aux_get("leases", lease_key(study, run_id))
            lease = _lease_decode.decode(lease_raw) if lease_raw else None
            fresh = lease is not None and lease.get("expires", 0) > now
            pid = run.pid
            same_host = run.host == host and pid is not None
            # On this host the pid is proof either way; elsewhere only the lease can tell.
            if (pid is not None and same_host and pid_alive(pid)) or (not same_host and fresh):
                running.append(run_id)
                continue
            interrupted.append(run_id)
            # Only a provably dead run is closed; one we cannot see stays open.
            if same_host:
                to_close.append((run_id, f"process {run.pid} on {host} is gone"))
            elif lease is not None:
                to_close.append((run_id, "its lease expired (no heartbeat)"))
        elif run.invalidated:
            continue
        elif run.status == "completed":
            completed.append(run_id)
        elif run.status == "interrupted":
            interrupted.append(run_id)
        else:
            failed.append(run_id)
    done = sorted({state.runs[r].case for r in completed})
    done_keys = sorted({attempt_key(state.runs[r].case, state.runs[r].seed) for r in completed})
    busy = {state.runs[r].case for r in running}
    pending = sorted(c for c in state.cases if c not in done and c not in busy)
    return Plan(
        study=study,
        completed=completed,
        failed=failed,
        interrupted=interrupted,
        running=running,
        pending=pending,
        done_cases=done,
        to_close=to_close,
        done_keys=done_keys,
    )


def close_interrupted_runs(ledger: Any, study: str, plan: Plan, *, redact: bool = True) -> int:
    """Close the provably dead runs of ``plan`` with status ``interrupted`` and the
    reason; returns how many were closed (a run closed meanwhile is a duplicate-free
    no-op only if identical, so the append is conditional on nothing else closing it)."""
    from .events import RunFinished

    if not plan.to_close:
        return 0
    events = [
        RunFinished(study=study, run=run, status="interrupted", error=f"interrupted: {reason}")
        for run, reason in plan.to_close
    ]
    result = ledger.append(events, redact=redact)
    for run, _ in plan.to_close:
        ledger.aux_delete("leases", lease_key(study, run))
    return result.appended
