"""Small folds that ``ledger`` itself needs: per-study counts and run states.

``status`` and the runner's resume plan need to know which cases and runs a study has
and how they ended. ``ledger`` never imports ``projections`` (docs/architecture.md, Layers), so this is a
fold of its own — a few dicts. ``study_states`` reads a large log as frames (the metrics
events as stored columns, counted with numpy) instead of decoding every event: a runner
restarting on a study of millions of values waits for a fraction of the decode.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

__all__ = ["FRAMES_FROM", "RunState", "StudyState", "fold_frames", "fold_studies", "study_states"]

FRAMES_FROM = 20_000
"""Events in the log from which ``study_states`` reads frames: below it, decoding the
few events costs less than importing numpy."""


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
    # (stage, survivors, policy) of each selection_recorded: a restarted Recorder
    # re-recording the same decision appends nothing
    selections: list[tuple[int, list[str], Any]] = msgspec.field(default_factory=list)

    def run_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for run in self.runs.values():
            key = run.status or "running"
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items()))


def study_states(
    ledger: Any, *, study: str | None = None, until: int | None = None
) -> dict[str, StudyState]:
    """``fold_studies`` of the log (of ``study``, up to ``until``), read as frames when
    the log is large."""
    if ledger.head.seq >= FRAMES_FROM:
        return fold_frames(ledger.read_frames(0, until, study=study))
    return fold_studies(ledger.read(0, until, study=study))


def fold_studies(envelopes: Iterable[Any]) -> dict[str, StudyState]:
    """Fold envelopes into one ``StudyState`` per study (seq order assumed)."""
    studies: dict[str, StudyState] = {}
    _fold_into(studies, envelopes)
    return studies


def fold_frames(frames: Iterable[Any]) -> dict[str, StudyState]:
    """``fold_studies`` of the same events given as frames (``Ledger.read_frames``).

    Within a frame the other events are folded before the metrics rows; the rules make
    that equivalent (a study exists before anything names it, a run before its
    metrics), so the result equals the fold in seq order."""
    import numpy as np

    studies: dict[str, StudyState] = {}
    for frame in frames:
        _fold_into(studies, frame.other)
        m = frame.metrics
        if not m.count:
            continue
        n = len(m.runs)
        rows = np.bincount(m.run, minlength=n).tolist()
        finals = np.bincount(m.run[m.step < 0], minlength=n).tolist()
        last = np.zeros(n, np.int64)
        np.maximum.at(last, m.run, m.seq)
        for (name, run), count, final, seq in zip(m.runs, rows, finals, last.tolist()):
            st = studies.get(name)
            if st is None:
                st = studies[name] = StudyState(study=name)
            st.events += count
            st.last_seq = max(st.last_seq, seq)
            if final:
                state = st.runs.get(run)
                if state is not None:
                    state.finals += final
    return studies


def _fold_into(studies: dict[str, StudyState], envelopes: Iterable[Any]) -> None:
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
            if ev.stage is not None:
                stage = ev.stage
            else:
                stage = 1 + max(st.cases.get(p, {"stage": 0})["stage"] for p in ev.parent_ids)
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
        elif tag == "selection_recorded":
            st.selections.append((ev.stage, list(ev.survivors), ev.policy))
