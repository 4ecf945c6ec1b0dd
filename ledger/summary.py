"""Small folds that ``ledger`` itself needs: per-study counts and run states.

``status`` and the runner's resume plan need to know which cases and runs a study has
and how they ended. ``ledger`` never imports ``projections`` (DESIGN §1), so this is a
fold of its own — a few dicts, no numpy.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

__all__ = ["RunState", "StudyState", "fold_studies"]


class RunState(msgspec.Struct, kw_only=True):
    run: str
    case: str
    attempt: int | None = None
    seed: int | None = None
    host: str | None = None
    pid: int | None = None
    started_seq: int = 0
    status: str | None = None  # None while running
    closed_seq: int | None = None
    error: str | None = None
    invalidated: bool = False
    finals: int = 0


class StudyState(msgspec.Struct, kw_only=True):
    study: str
    events: int = 0
    last_seq: int = 0
    cases: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)
    runs: dict[str, RunState] = msgspec.field(default_factory=dict)

    def run_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for run in self.runs.values():
            key = run.status or "running"
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items()))


def fold_studies(envelopes: Iterable[Any]) -> dict[str, StudyState]:
    """Fold envelopes into one ``StudyState`` per study (seq order assumed)."""
    studies: dict[str, StudyState] = {}
    for env in envelopes:
        ev = env.event
        st = studies.get(ev.study)
        if st is None:
            st = studies[ev.study] = StudyState(study=ev.study)
        st.events += 1
        st.last_seq = env.seq
        tag = ev.TYPE
        if tag == "metrics_recorded":
            if ev.step is None:
                run = st.runs.get(ev.run)
                if run is not None:
                    run.finals += 1
        elif tag == "case_created":
            st.cases[ev.case] = {"stage": ev.stage, "params": ev.params or {}, "seq": env.seq}
        elif tag == "eco_applied":
            parent = st.cases.get(ev.parent, {"stage": 0})
            stage = parent["stage"] + 1 if ev.stage is None else ev.stage
            st.cases[ev.case] = {"stage": stage, "params": ev.params or {}, "seq": env.seq}
        elif tag == "run_started":
            st.runs[ev.run] = RunState(
                run=ev.run,
                case=ev.case,
                attempt=ev.attempt,
                seed=ev.seed,
                host=ev.host,
                pid=ev.pid,
                started_seq=env.seq,
            )
        elif tag == "run_finished":
            run = st.runs.get(ev.run)
            if run is not None:
                run.status = ev.status
                run.closed_seq = env.seq
                run.error = ev.error
        elif tag == "run_invalidated":
            run = st.runs.get(ev.run)
            if run is not None:
                run.invalidated = True
    return studies
