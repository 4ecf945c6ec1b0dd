"""Runs: how each run started, ended and was judged, with its timings and artifacts.

``status`` is None while a run is open. An invalidated run keeps its status (it did
finish) but ``invalidated`` holds the reason, and ``counts`` is false: rankings, stage
summaries and statistics leave it out and say why. First and last event times are the
``ts`` of the run's ``run_started`` and of its latest own event (metrics, finish,
artifacts; an invalidation is a later judgement, not the run's activity).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import numpy as np

from ledger.events import ArtifactRecorded, RunFinished, RunInvalidated, RunStarted
from ledger.frames import Frame, MetricRows
from ledger.numbers import is_number

from .base import BaseProjection, encode_state

__all__ = ["Artifact", "RunInfo", "RunsProjection", "StudyRuns"]


class Artifact(msgspec.Struct, array_like=True, gc=False):
    name: str
    uri: str
    seq: int
    sha256: str | None = None
    bytes: int | None = None
    media_type: str | None = None


class RunInfo(msgspec.Struct, array_like=True, gc=False):
    run: str
    case: str
    seq: int  # of run_started
    ts: int  # first event time, µs since the epoch (UTC)
    attempt: int | None = None
    seed: int | None = None
    host: str | None = None
    pid: int | None = None
    config: dict[str, Any] | None = None
    provenance: dict[str, Any] | None = None
    status: str | None = None
    error: str | None = None
    resources: dict[str, Any] | None = None
    finished_seq: int | None = None
    finished_ts: int | None = None
    last_seq: int = 0
    last_ts: int = 0
    invalidated: str | None = None  # the reason
    invalidated_seq: int | None = None
    artifacts: list[Artifact] = msgspec.field(default_factory=list)

    @property
    def counts(self) -> bool:
        """Completed and not invalidated: the runs rankings aggregate."""
        return self.status == "completed" and self.invalidated is None

    @property
    def wall_s(self) -> float | None:
        """The run's own ``resources.wall_s`` when it reported one, else finish - start."""
        if self.resources is not None:
            wall = self.resources.get("wall_s")
            if is_number(wall):
                return float(wall)
        if self.finished_ts is None:
            return None
        return (self.finished_ts - self.ts) / 1e6

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "case": self.case,
            "attempt": self.attempt,
            "seed": self.seed,
            "host": self.host,
            "pid": self.pid,
            "status": self.status,
            "error": self.error,
            "resources": self.resources,
            "invalidated": self.invalidated,
            "started_seq": self.seq,
            "finished_seq": self.finished_seq,
            "first_ts": self.ts,
            "last_ts": self.last_ts,
            "wall_s": self.wall_s,
            "artifacts": [msgspec.structs.asdict(a) for a in self.artifacts],
        }


class StudyRuns:
    __slots__ = ("by_case", "runs", "study")

    def __init__(self, study: str) -> None:
        self.study = study
        self.runs: dict[str, RunInfo] = {}  # start order
        self.by_case: dict[str, list[str]] = {}  # case -> run ids in start order

    def _add(self, info: RunInfo) -> None:
        self.runs[info.run] = info
        self.by_case.setdefault(info.case, []).append(info.run)

    def run(self, run: str) -> RunInfo | None:
        return self.runs.get(run)

    def of_case(self, case: str) -> list[RunInfo]:
        """The case's runs (its attempts), in start order."""
        return [self.runs[r] for r in self.by_case.get(case, ())]

    def sorted(self) -> list[RunInfo]:
        """Runs by (case, run) in code-point order."""
        return sorted(self.runs.values(), key=lambda r: (r.case, r.run))

    def status_counts(self, cases: set[str] | None = None) -> dict[str, int]:
        """Runs by status (``running`` while open), invalidated ones under
        ``invalidated``; sorted keys."""
        counts: dict[str, int] = {}
        for info in self.runs.values():
            if cases is not None and info.case not in cases:
                continue
            key = "invalidated" if info.invalidated is not None else (info.status or "running")
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items()))


class _StudyState(msgspec.Struct, array_like=True, gc=False):
    study: str
    runs: list[RunInfo]


class _State(msgspec.Struct, array_like=True, gc=False):
    seq: int
    studies: list[_StudyState]


_decode_state = msgspec.msgpack.Decoder(_State).decode

# ``RunsProjection`` method per event type; other types are not the runs' concern.
_Fold = Callable[["RunsProjection", int, int, Any], None]


class RunsProjection(BaseProjection):
    """Folds run_started, run_finished, run_invalidated, artifact_recorded, and the
    time of each run's latest metrics."""

    name = "runs"
    version = 1
    FRAMES = True

    def __init__(self) -> None:
        super().__init__()
        self.studies: dict[str, StudyRuns] = {}

    def study(self, name: str) -> StudyRuns | None:
        return self.studies.get(name)

    def _runs(self, study: str) -> StudyRuns:
        st = self.studies.get(study)
        if st is None:
            st = self.studies[study] = StudyRuns(study)
        return st

    def _fold_frame(self, frame: Frame) -> None:
        folds = _FOLDS
        for env in frame.other:
            fold = folds.get(type(env.event))  # exact types, as the events are decoded
            if fold is not None:
                fold(self, env.seq, env.ts, env.event)
        self._note_metrics(frame.metrics)

    def _started(self, seq: int, ts: int, ev: RunStarted) -> None:
        st = self._runs(ev.study)
        if ev.run in st.runs:
            return
        st._add(
            RunInfo(
                ev.run,
                ev.case,
                seq,
                ts,
                ev.attempt,
                ev.seed,
                ev.host,
                ev.pid,
                ev.config,
                ev.provenance,
                last_seq=seq,
                last_ts=ts,
            )
        )

    def _info(self, study: str, run: str) -> RunInfo | None:
        st = self.studies.get(study)
        return st.runs.get(run) if st is not None else None

    def _finished(self, seq: int, ts: int, ev: RunFinished) -> None:
        info = self._info(ev.study, ev.run)
        if info is not None and info.status is None:
            info.status = ev.status
            info.error = ev.error
            info.resources = ev.resources
            info.finished_seq = seq
            info.finished_ts = ts
            info.last_seq, info.last_ts = seq, ts

    def _invalidated(self, seq: int, ts: int, ev: RunInvalidated) -> None:
        info = self._info(ev.study, ev.run)
        if info is not None and info.invalidated is None:
            info.invalidated = ev.reason
            info.invalidated_seq = seq

    def _artifact(self, seq: int, ts: int, ev: ArtifactRecorded) -> None:
        info = self._info(ev.study, ev.run)
        if info is not None:
            info.artifacts.append(
                Artifact(ev.name, ev.uri, seq, ev.sha256, ev.bytes, ev.media_type)
            )
            info.last_seq, info.last_ts = seq, ts

    def _note_metrics(self, m: MetricRows) -> None:
        """Each run's latest metrics event moves its last event time."""
        if not m.count:
            return
        # Each run's latest metrics event: one unique over the reversed run column.
        uniq, back = np.unique(m.run[::-1], return_index=True)
        last = m.count - 1 - back
        for key, seq, ts in zip(
            map(m.runs.__getitem__, uniq.tolist()), m.seq[last].tolist(), m.ts[last].tolist()
        ):
            info = self._info(key[0], key[1])
            if info is not None and seq > info.last_seq:
                info.last_seq, info.last_ts = seq, ts

    def snapshot(self) -> bytes:
        return encode_state(
            _State(
                self.seq,
                [_StudyState(name, list(st.runs.values())) for name, st in self.studies.items()],
            )
        )

    def restore(self, data: bytes) -> None:
        state = _decode_state(data)
        studies: dict[str, StudyRuns] = {}
        for st in state.studies:
            runs = StudyRuns(st.study)
            for info in st.runs:
                runs._add(info)
            studies[st.study] = runs
        self.studies = studies
        self.seq = state.seq


_FOLDS: dict[type, _Fold] = {
    RunStarted: RunsProjection._started,
    RunFinished: RunsProjection._finished,
    RunInvalidated: RunsProjection._invalidated,
    ArtifactRecorded: RunsProjection._artifact,
}
