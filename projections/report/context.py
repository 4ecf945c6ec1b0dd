"""What every view of the report reads: the study at one seq, loaded once, and its marks.

``Context`` loads the study's projections at ``as_of`` (``load_study``), resolves the
ranking policy (the study's objectives, the report's ``agg`` and ``require``), ranks
every stage once, and works out each case's mark — survivor, failed, infeasible or
unranked — which the DAG, the rankings and the Pareto chart all show the same way.
The views then take what they need from it; none of them reads the ledger again except
through the analytics API, which loads the same seq.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import cached_property
from typing import Any

import msgspec

from ledger import Ledger
from projections.analytics.query import Query
from projections.rankings import Policy, Ranking
from projections.stages import StageSummary
from projections.study import StudyView, load_study, resolve_study

__all__ = ["FAILURE_STATUSES", "Context", "Options"]

FAILURE_STATUSES = ("failed", "timeout", "interrupted")


class Options(msgspec.Struct, frozen=True, kw_only=True):
    """How the report is made; recorded in its header, so it can be made again.

    ``agg`` and ``require`` are the ranking's (as ``ledger rank``); ``curve_cases`` and
    ``curve_metrics`` bound the curves section (the best-ranked cases, objectives first);
    ``buckets`` is the M4 bucket count per curve (at most 4 points each);
    ``confidence`` is every interval's level.
    """

    agg: str = "mean"
    require: tuple[str, ...] = ()
    curve_cases: int = 8
    curve_metrics: int = 3
    buckets: int = 50
    confidence: float = 0.95

    def text(self) -> list[tuple[str, str]]:
        return [
            ("aggregate", self.agg),
            ("require", ", ".join(self.require) or "none"),
            ("curves", f"{self.curve_cases} cases x {self.curve_metrics} metrics"),
            ("downsampling", f"M4, {self.buckets} buckets"),
            ("intervals", f"{self.confidence:g}"),
        ]


class Context:
    """One study at one seq, with its rankings and case marks (read-only)."""

    def __init__(
        self, ledger: Ledger, study: str | None, as_of: int | None, options: Options
    ) -> None:
        self.ledger = ledger
        self.options = options
        name = resolve_study(ledger, study)
        self.view: StudyView = load_study(ledger, name, as_of)
        self.study = self.view.study
        self.as_of = self.view.as_of
        self.head_hash = ledger.hash_at(self.as_of)
        self.objectives: list[tuple[str, str]] = self.view.objectives

    # -- the ranking policy and rankings ---------------------------------------------

    @cached_property
    def policy(self) -> Policy | None:
        """The study's objectives as a policy, or None when it declares none."""
        if not self.objectives:
            return None
        return self.view.policy(agg=self.options.agg, require=self.options.require)

    def query(self) -> Query:
        """A query of this study at this seq, for the analytics API."""
        return Query(self.ledger).study(self.study).as_of(self.as_of)

    @cached_property
    def stages(self) -> list[int]:
        return self.view.dag.stages()

    @cached_property
    def stage_rankings(self) -> dict[int, Ranking]:
        """Each stage's ranking under the policy, top K = the stage's recorded survivors
        (so the ranking's picks can be set beside the runner's)."""
        if self.policy is None:
            return {}
        out = {}
        for stage in self.stages:
            sel = self.recorded.get(stage)
            top = len(sel) if sel else None
            policy = msgspec.structs.replace(self.policy, top=top)
            out[stage] = self.view.rank(stage=stage, policy=policy)
        return out

    @cached_property
    def overall(self) -> Ranking | None:
        """Every case ranked together, lexicographically (as ``ledger rank`` with no
        stage): what "the best-ranked cases" means in the curves view."""
        if self.policy is None:
            return None
        return self.view.rank(policy=self.policy)

    @cached_property
    def fronts(self) -> Ranking | None:
        """Every case ranked with Pareto fronts over all the objectives (the Pareto
        view's), or None with fewer than two objectives."""
        if self.policy is None or len(self.policy.keys) < 2:
            return None
        return self.view.rank(policy=msgspec.structs.replace(self.policy, pareto=True))

    @cached_property
    def summaries(self) -> list[StageSummary]:
        return self.view.stage_summaries(self.policy) if self.policy is not None else []

    @cached_property
    def recorded(self) -> dict[int, list[str]]:
        """Each stage's latest recorded survivors (``selection_recorded``)."""
        out: dict[int, list[str]] = {}
        for sel in self.view.selections:
            out[sel.stage] = list(sel.survivors)
        return out

    # -- marks -----------------------------------------------------------------------

    @cached_property
    def marks(self) -> dict[str, str]:
        """case -> ``survivor`` | ``failed`` | ``infeasible`` | ``unranked`` | ``pending``
        | ``ranked``. Survivors are the runner's recorded ones; failed: no completed
        run and at least one failed, timed out or interrupted; infeasible: a
        ``require`` constraint broken; unranked: ranked out for another reason (no
        value, NaN); pending: no run finished yet."""
        runs = self.view.runs
        out: dict[str, str] = {}
        reasons = self.reasons
        survivors = {c for cases in self.recorded.values() for c in cases}
        for node in self.view.dag.cases():
            case = node.case
            statuses = [
                "invalidated" if r.invalidated else (r.status or "running")
                for r in runs.of_case(case)
            ]
            if case in survivors:
                out[case] = "survivor"
            elif reasons.get(case, "").startswith("infeasible"):
                out[case] = "infeasible"
            elif "completed" not in statuses and any(s in FAILURE_STATUSES for s in statuses):
                out[case] = "failed"
            elif "completed" not in statuses:
                out[case] = "pending"
            elif case in reasons:
                out[case] = "unranked"
            else:
                out[case] = "ranked"
        return out

    @cached_property
    def reasons(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for ranking in self.stage_rankings.values():
            for u in ranking.unranked:
                out[u.case] = u.reason
        return out

    def ranked_cases(self) -> list[str]:
        """Cases best first (the overall ranking; by case id without objectives)."""
        if self.overall is not None and self.overall.rows:
            return [r.case for r in self.overall.rows]
        return [n.case for n in self.view.dag.cases()]


MARK_TEXT: dict[str, tuple[str, str]] = {
    # mark -> (symbol, words): the symbol and the word carry the meaning, not colour.
    "survivor": ("★", "survivor (kept by the runner)"),
    "failed": ("✕", "failed (no completed run)"),
    "infeasible": ("⊘", "infeasible (a constraint broken)"),
    "unranked": ("?", "unranked (no usable value)"),
    "pending": ("…", "pending (no finished run)"),
    "ranked": ("", "ranked"),
}


def mark_legend(present: Collection[str]) -> list[dict[str, Any]]:
    order = ["survivor", "ranked", "failed", "infeasible", "unranked", "pending"]
    return [
        {"mark": m, "symbol": MARK_TEXT[m][0], "text": MARK_TEXT[m][1]}
        for m in order
        if m in present
    ]
