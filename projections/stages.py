"""Stage summaries, and the runner's own survivor decisions (``selection_recorded``).

A chip-design study keeps the best cases stage by stage. The runner records what it
kept; this module sets that record beside what the ranking would pick at the same
state, so an audit can see whether the decision followed the policy. The summaries
themselves are computed on demand from the DAG, runs and metrics projections; only the
recorded selections need a fold of their own (``SelectionsProjection``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from ledger.events import SelectionRecorded
from ledger.frames import Frame

from .base import BaseProjection, encode_state
from .rankings import FinalsOf, Policy, rank_study

if TYPE_CHECKING:
    from .dag import StudyDag
    from .runs import StudyRuns

__all__ = ["Selection", "SelectionsProjection", "StageSummary", "stage_summaries"]


class Selection(msgspec.Struct, array_like=True, gc=False):
    stage: int
    survivors: list[str]
    seq: int
    ts: int
    policy: dict[str, Any] | None = None
    as_of: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "survivors": list(self.survivors),
            "seq": self.seq,
            "policy": self.policy,
            "as_of": self.as_of,
        }


class _StudyState(msgspec.Struct, array_like=True, gc=False):
    study: str
    selections: list[Selection]


class _State(msgspec.Struct, array_like=True, gc=False):
    seq: int
    studies: list[_StudyState]


_decode_state = msgspec.msgpack.Decoder(_State).decode


class SelectionsProjection(BaseProjection):
    """Folds ``selection_recorded``: every decision, in log order, per study."""

    name = "selections"
    version = 1
    FRAMES = True

    def __init__(self) -> None:
        super().__init__()
        self.studies: dict[str, list[Selection]] = {}

    def _fold_frame(self, frame: Frame) -> None:
        for env in frame.other:
            ev = env.event
            if type(ev) is SelectionRecorded:
                self.studies.setdefault(ev.study, []).append(
                    Selection(ev.stage, list(ev.survivors), env.seq, env.ts, ev.policy, ev.as_of)
                )

    def of(self, study: str) -> list[Selection]:
        return list(self.studies.get(study, ()))

    def latest(self, study: str, stage: int) -> Selection | None:
        """The stage's most recent decision (a later one replaces an earlier one)."""
        for sel in reversed(self.studies.get(study, ())):
            if sel.stage == stage:
                return sel
        return None

    def snapshot(self) -> bytes:
        return encode_state(
            _State(self.seq, [_StudyState(k, list(v)) for k, v in self.studies.items()])
        )

    def restore(self, data: bytes) -> None:
        state = _decode_state(data)
        studies = {st.study: list(st.selections) for st in state.studies}
        self.studies = studies
        self.seq = state.seq


class StageSummary(msgspec.Struct, kw_only=True):
    stage: int
    cases: int
    runs: dict[str, int]  # by status; "running" while open, "invalidated" apart
    best_case: str | None
    best_score: float | list[float] | None
    ranked: int
    unranked: int
    recorded_survivors: list[str] | None  # the latest selection_recorded of the stage
    recorded_seq: int | None
    ranking_survivors: list[str] | None  # the top K the ranking picks, K = len(recorded)
    agree: bool | None  # same set of cases

    def to_dict(self) -> dict[str, Any]:
        return msgspec.structs.asdict(self)


def stage_summaries(
    dag: StudyDag,
    runs: StudyRuns | None,
    selections: list[Selection],
    finals_of: FinalsOf,
    policy: Policy | None,
    *,
    study: str,
    as_of: int,
) -> list[StageSummary]:
    """One summary per stage (stages of the DAG and of recorded selections, ascending),
    from a study's projections (``StudyView.stage_summaries`` passes its own).

    With ``policy`` None (a study without objectives and no policy given), scores and
    the ranking's survivors are None.
    """
    stages = sorted(set(dag.stages()) | {s.stage for s in selections})
    out = []
    for stage in stages:
        nodes = dag.cases(stage)
        cases = {n.case for n in nodes}
        counts = runs.status_counts(cases) if runs is not None else {}
        recorded = None
        for sel in reversed(selections):
            if sel.stage == stage:
                recorded = sel
                break
        best_case = best_score = None
        ranked = unranked = 0
        picked: list[str] | None = None
        if policy is not None:
            ranking = rank_study(dag, runs, finals_of, policy, stage, study=study, as_of=as_of)
            ranked, unranked = len(ranking.rows), len(ranking.unranked)
            if ranking.rows:
                best_case, best_score = ranking.rows[0].case, ranking.rows[0].score
            if recorded is not None:
                picked = [r.case for r in ranking.rows[: len(recorded.survivors)]]
        out.append(
            StageSummary(
                stage=stage,
                cases=len(nodes),
                runs=counts,
                best_case=best_case,
                best_score=best_score,
                ranked=ranked,
                unranked=unranked,
                recorded_survivors=list(recorded.survivors) if recorded else None,
                recorded_seq=recorded.seq if recorded else None,
                ranking_survivors=picked,
                agree=(set(picked) == set(recorded.survivors))
                if picked is not None and recorded is not None
                else None,
            )
        )
    return out
