"""``rank_ci`` over a query: cases ranked by their mean, with intervals that show
whether the order between neighbours is established.

Kept apart from ``compare_report``: a ranking needs a direction and reports the cases
it could not rank, with the runs left out of each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from projections.base import ProjectionError
from projections.rankings import COUNTED, Policy, Ranking, rank_study

from . import compare as _compare
from . import stats as _stats
from .config import AnalyticsConfig
from .query import Columns, Query, QueryError, select_cases
from .report_inputs import (
    all_exclusions,
    need_direction,
    prepare,
    resolve_config,
    settings_of,
    usable_values,
)
from .result import AnalyticsResult

if TYPE_CHECKING:
    from projections.study import StudyView


def rank_selected(
    query: Query, view: StudyView, policy: Policy, stage: int | None = None
) -> Ranking:
    """``ledger rank`` over the cases and runs a query selects: its case filters
    (``cases`` globs, ``where_param``; ``stage`` here is the ranking's own) choose the
    cases ranked, its statuses the runs whose final values count (default: completed;
    invalidated runs never count). Without filters this is ``view.rank(stage, policy)``.
    The ranking then carries ``selection`` (the globs, param filters and statuses).

    Raises ``QueryError`` (a glob or param that matches no case), ``ProjectionError``
    (a stage with no case), ``PolicyError``.
    """
    spec = query.spec
    if not (spec.cases or spec.params or spec.statuses is not None):
        return view.rank(stage, policy)
    if stage is not None and stage not in view.dag.stages():
        known = ", ".join(map(str, view.dag.stages())) or "none yet"
        raise ProjectionError(
            f"study {view.study!r} has no case in stage {stage} at seq {view.as_of} "
            f"(stages: {known})"
        )
    chosen = {n.case for n in select_cases(spec, view)}
    counted = spec.statuses if spec.statuses is not None else COUNTED
    ranking = rank_study(
        view.dag,
        view.runs,
        view.finals_by_metric,
        policy,
        stage,
        study=view.study,
        as_of=view.as_of,
        cases=chosen,
        counted=counted,
    )
    ranking.selection = {
        "cases": list(spec.cases),
        "where": [f.text for f in spec.params],
        "statuses": list(counted),
    }
    return ranking


def rank_ci(
    query: Query,
    *,
    metric: str | None = None,
    direction: str | None = None,
    confidence: float | None = None,
    config: AnalyticsConfig | None = None,
) -> AnalyticsResult:
    """The query's cases ranked by the mean of their runs, best first, each with the t
    interval of its mean; ``overlaps_next`` says whether a case's interval overlaps the
    next one's (when it does, the order of the two is not established).

    JSON: ``{"ranking": [{"rank", "case", "n", "mean", "std", "ci_low", "ci_high",
    "overlaps_next"}], "unranked": [{"case", "reason"}], "direction", ...}``.
    """
    cfg = resolve_config(config, confidence=confidence)
    query, frame, name = prepare(query, metric)
    if frame.per_case:
        raise QueryError("rank_ci ranks cases by their runs: drop the agg from the query's metric")
    d = need_direction(frame, name, direction, "a ranking")
    rows, x, dropped = usable_values(frame, name)
    exclusions = all_exclusions(frame, dropped)
    split = _stats.split_groups(x, rows["case"])
    groups = {c: split.get(c, np.empty(0)) for c in frame.cases}
    if not groups:
        raise QueryError(f"the query {query!r} selects no case")
    res = _compare.rank_with_ci(groups, direction=d, confidence=cfg.confidence)
    ranking = []
    for i, r in enumerate(res.ranking):
        row = r.to_dict()
        row["case"] = row.pop("group")
        nxt = res.ranking[i + 1] if i + 1 < len(res.ranking) else None
        overlap = None
        if nxt is not None and None not in (r.ci_low, r.ci_high, nxt.ci_low, nxt.ci_high):
            overlap = bool(r.ci_low <= nxt.ci_high and nxt.ci_low <= r.ci_high)  # type: ignore[operator]
        row["overlaps_next"] = overlap
        ranking.append(row)
    why: dict[str, list[str]] = {}
    for e in exclusions:
        why.setdefault(e.case, []).append(e.reason)
    unranked = [
        {
            "case": u.group,
            "reason": u.reason
            + (
                f" ({len(why[u.group])} run(s) left out: {why[u.group][0]}...)"
                if u.group in why
                else ""
            ),
        }
        for u in res.unranked
    ]
    table = Columns.from_rows(
        ranking,
        {
            "rank": "int",
            "case": "str",
            "n": "int",
            "mean": "float",
            "std": "float",
            "ci_low": "float",
            "ci_high": "float",
            "overlaps_next": "bool",
        },
    )
    return AnalyticsResult(
        kind="rank_ci",
        study=frame.study,
        as_of=frame.as_of,
        query=query,
        rows=rows,
        table=table,
        extras={"unranked": Columns.from_rows(unranked, {"case": "str", "reason": "str"})},
        data={
            "metric": name,
            "direction": d,
            "confidence": cfg.confidence,
            "ranking": ranking,
            "unranked": unranked,
        },
        exclusions=exclusions,
        settings=settings_of(cfg, "confidence"),
        title=f"cases ranked by mean {name} ({d}), {cfg.confidence:g} intervals",
        display={"": list(table.names), "unranked": ["case", "reason"]},
    )
