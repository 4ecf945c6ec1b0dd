"""Rankings per stage, the runner's recorded survivors beside the ranking's picks.

Each stage is ranked by ``projections.rankings`` under the study's objectives (the
report's ``agg`` and ``require``), exactly as ``ledger rank --study S --stage N``
ranks it; every row carries ``data-case`` and its exact score (``data-score``, the
shortest round-trip spelling), so a test can hold the rows against ``rank --json``.
"""

from __future__ import annotations

from typing import Any

from projections.text import format_value

from .context import MARK_TEXT, Context


def exact(score: float | list[float]) -> str:
    """A score as ``rank --json`` spells it: shortest round-trip, lists comma-joined."""
    if isinstance(score, list):
        return ",".join(exact(s) for s in score)
    if score != score:
        return "NaN"
    if score in (float("inf"), float("-inf")):
        return "Infinity" if score > 0 else "-Infinity"
    return repr(float(score))


def build(ctx: Context) -> dict[str, Any]:
    if ctx.policy is None:
        return {
            "empty": "The study declares no objectives, so there is no ranking to show "
            "(rank by a metric with `ledger rank --metric M --direction min|max`).",
            "policy": None,
        }
    keys = [k.text for k in ctx.policy.keys]
    summaries = {s.stage: s for s in ctx.summaries}
    stages = []
    for stage, ranking in ctx.stage_rankings.items():
        recorded = set(ctx.recorded.get(stage, ()))
        rows = []
        for r in ranking.rows:
            scores = r.score if isinstance(r.score, list) else [r.score]
            rows.append(
                {
                    "case": r.case,
                    "rank": r.rank,
                    "scores": [format_value(s) for s in scores],
                    "exact": exact(r.score),
                    "runs": r.runs,
                    "kept": r.case in recorded,
                    "picked": bool(r.survivor),
                }
            )
        s = summaries.get(stage)
        if s is None or s.recorded_survivors is None:
            agreement = "no survivors recorded for this stage"
            agree = None
        else:
            agree = s.agree
            agreement = (
                "the recorded survivors ("
                + ", ".join(s.recorded_survivors)
                + (") agree with" if s.agree else ") differ from")
                + " the ranking's top "
                + str(len(s.recorded_survivors))
                + " ("
                + ", ".join(s.ranking_survivors or [])
                + ")"
            )
        stages.append(
            {
                "stage": stage,
                "rows": rows,
                "unranked": [
                    {
                        "case": u.case,
                        "reason": u.reason,
                        "symbol": MARK_TEXT[ctx.marks.get(u.case, "unranked")][0],
                    }
                    for u in ranking.unranked
                ],
                "agreement": agreement,
                "agree": agree,
                "picks": ranking.policy.top,
                "empty": None if rows else "No case of this stage could be ranked.",
            }
        )
    return {"empty": None, "columns": keys, "policy": ctx.policy.text, "stages": stages}
