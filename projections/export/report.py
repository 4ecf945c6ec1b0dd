"""``report.xlsx``: the study for people — summary, cases, runs, rankings, stage comparisons.

Sheets, in order:

- ``summary``: what was exported (study, seq and head hash, objectives, the
  ranking policy, counts, filters, redactions) as field/value rows;
- ``cases`` and ``runs``: the exported tables (``--fields`` applied, lists as JSON);
- ``rankings``: every case of the study ranked under its objectives (rank, case,
  stage, runs, one column per key), then the unranked ones with the reason; the first
  key's column carries a colour scale oriented by its direction;
- ``comparisons``: per stage, cases and runs (completed; not_completed counts failed,
  pruned, timed-out, cancelled, interrupted and invalidated runs), the best case and score, the median
  score of the ranked cases, and the change of both from the previous stage (with
  ``better`` saying whether the best moved the right way); a line chart of the best
  score per stage sits beside it.

Scores are the first objective's aggregate (the study's ranking policy). A study with
no objectives gets the sheets without scores, formatting or chart. The sheets are small
(one row per case, run or stage), so building them row by row is fine; the writer
(:func:`~projections.export.xlsx_writer.write_xlsx`) pins every byte.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from projections.export.tables import ExportRecords
from projections.export.xlsx_writer import XlsxSpec, write_xlsx

if TYPE_CHECKING:
    import os

    import pyarrow as pa

__all__ = ["comparisons_table", "rankings_table", "report_sheets", "write_report"]


def _score_columns(rec: ExportRecords) -> list[str]:
    ranks = rec.rankings()
    if ranks.policy is None:
        return []
    agg = ranks.policy.agg
    return [f"{k.metric} ({agg}, {k.direction})" for k in ranks.policy.keys]


def _scores(score: Any, n: int) -> list[float | None]:
    if score is None:
        return [None] * n
    return list(score) if isinstance(score, list) else [score]


def rankings_table(rec: ExportRecords) -> pa.Table:
    """Ranked cases in rank order, then the unranked ones (rank null) with the reason."""
    import pyarrow as pa

    ranks = rec.rankings()
    score_cols = _score_columns(rec)
    columns: dict[str, list[Any]] = {"rank": [], "case": [], "stage": [], "runs": []}
    columns.update({c: [] for c in score_cols})
    columns["reason"] = []
    if ranks.overall is not None:
        for row in ranks.overall.rows:
            columns["rank"].append(row.rank)
            columns["case"].append(row.case)
            columns["stage"].append(row.stage)
            columns["runs"].append(row.runs)
            for c, v in zip(score_cols, _scores(row.score, len(score_cols))):
                columns[c].append(v)
            columns["reason"].append(None)
        unranked = [(u.case, u.stage, u.reason) for u in ranks.overall.unranked]
    else:
        unranked = [
            (n.case, n.stage, "the study declares no objectives to rank by")
            for n in rec.view.dag.cases()
        ]
    for case, stage, reason in unranked:
        columns["rank"].append(None)
        columns["case"].append(case)
        columns["stage"].append(stage)
        columns["runs"].append(None)
        for c in score_cols:
            columns[c].append(None)
        columns["reason"].append(reason)
    types = {"rank": pa.int64(), "case": pa.string(), "stage": pa.int64(), "runs": pa.int64()}
    types.update({c: pa.float64() for c in score_cols})
    types["reason"] = pa.string()
    return pa.table({k: pa.array(v, types[k]) for k, v in columns.items()})


def comparisons_table(rec: ExportRecords) -> pa.Table:
    """One row per stage: counts, best and median score, changes from the stage before."""
    import pyarrow as pa

    view = rec.view
    ranks = rec.rankings()
    direction = ranks.policy.keys[0].direction if ranks.policy is not None else "min"
    by_stage = {r.stage: r for r in ranks.by_stage}
    latest_selection: dict[int, Any] = {}
    for sel in view.selections:
        latest_selection[sel.stage] = sel
    rows: list[dict[str, Any]] = []
    prev_best = prev_median = None
    for stage in view.dag.stages():
        nodes = view.dag.cases(stage)
        counts = view.runs.status_counts({n.case for n in nodes})
        ranking = by_stage.get(stage)
        firsts = [_scores(r.score, 1)[0] for r in ranking.rows] if ranking else []
        best = firsts[0] if firsts else None
        median = float(np.median(firsts)) if firsts else None
        delta_best = best - prev_best if best is not None and prev_best is not None else None
        delta_median = (
            median - prev_median if median is not None and prev_median is not None else None
        )
        sel = latest_selection.get(stage)
        rows.append(
            {
                "stage": stage,
                "cases": len(nodes),
                "runs": sum(counts.values()),
                "completed": counts.get("completed", 0),
                "not_completed": sum(
                    v for k, v in counts.items() if k not in ("completed", "running")
                ),
                "ranked": len(ranking.rows) if ranking else 0,
                "best_case": ranking.rows[0].case if ranking and ranking.rows else None,
                "best": best,
                "median": median,
                "delta_best": delta_best,
                "delta_median": delta_median,
                "better": None
                if delta_best is None
                else bool(delta_best < 0 if direction == "min" else delta_best > 0),
                "survivors_recorded": len(sel.survivors) if sel is not None else None,
            }
        )
        prev_best = best if best is not None else prev_best
        prev_median = median if median is not None else prev_median
    types = {
        "stage": pa.int64(),
        "cases": pa.int64(),
        "runs": pa.int64(),
        "completed": pa.int64(),
        "not_completed": pa.int64(),
        "ranked": pa.int64(),
        "best_case": pa.string(),
        "best": pa.float64(),
        "median": pa.float64(),
        "delta_best": pa.float64(),
        "delta_median": pa.float64(),
        "better": pa.bool_(),
        "survivors_recorded": pa.int64(),
    }
    return pa.table({k: pa.array([r[k] for r in rows], t) for k, t in types.items()})


def _summary_table(rec: ExportRecords, meta: Mapping[str, Any]) -> pa.Table:
    import pyarrow as pa

    view = rec.view
    ranks = rec.rankings()
    counts: dict[str, int] = {}
    for r in rec.runs:
        key = "invalidated" if r.invalidated is not None else (r.status or "running")
        counts[key] = counts.get(key, 0) + 1
    fields: list[tuple[str, Any]] = [
        ("study", rec.study),
        ("description", rec.info["description"]),
        ("as of seq", rec.as_of),
        ("head hash", meta.get("head_hash")),
        ("objectives", ", ".join(f"{m}:{d}" for m, d in view.objectives) or "none"),
        ("ranking", ranks.policy.text if ranks.policy is not None else "none (no objectives)"),
        ("stages", ", ".join(map(str, view.dag.stages())) or "none"),
        ("cases exported", len(rec.cases)),
        ("runs exported", len(rec.runs)),
        ("runs by status", ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"),
        ("metric values exported", len(rec.metrics["value"])),
        ("metrics", ", ".join(rec.metrics["metrics"]) or "none"),
        ("where", "; ".join(rec.where.texts) or "all rows"),
        ("redacted values", len(rec.redactor.paths) if rec.redactor.enabled else "redaction off"),
    ]
    return pa.table(
        {
            "field": pa.array([f for f, _ in fields], pa.string()),
            "value": pa.array([None if v is None else str(v) for _, v in fields], pa.string()),
        }
    )


def report_sheets(
    rec: ExportRecords, cases: pa.Table, runs: pa.Table, meta: Mapping[str, Any]
) -> tuple[dict[str, pa.Table], XlsxSpec]:
    """The workbook's sheets and the spec that formats them. ``cases`` and ``runs`` are
    the exported tables, CSV-ready (no list columns)."""
    ranks = rec.rankings()
    score_cols = _score_columns(rec)
    sheets = {
        "summary": _summary_table(rec, meta),
        "cases": cases,
        "runs": runs,
        "rankings": rankings_table(rec),
        "comparisons": comparisons_table(rec),
    }
    if ranks.policy is None:
        spec = XlsxSpec(ranking_sheet=None, ranking_column=None, chart_sheet=None, title=rec.study)
    else:
        key = ranks.policy.keys[0]
        spec = XlsxSpec(
            ranking_sheet="rankings",
            ranking_column=score_cols[0],
            direction=key.direction,
            chart_sheet="comparisons",
            chart_category="stage",
            chart_value="best",
            chart_title=f"Best {key.metric} ({ranks.policy.agg}) per stage",
            title=rec.study,
        )
    return sheets, spec


def write_report(
    rec: ExportRecords,
    cases: pa.Table,
    runs: pa.Table,
    meta: Mapping[str, Any],
    path: str | os.PathLike[str],
) -> None:
    sheets, spec = report_sheets(rec, cases, runs, meta)
    write_xlsx(sheets, path, spec)
