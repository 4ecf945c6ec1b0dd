"""``report.xlsx``: the study for people — summary, cases, runs, rankings, stage comparisons.

Sheets, in order:

- ``summary``: what was exported (study, seq and head hash, objectives, the
  ranking policy, counts, filters, redactions) as field/value rows;
- ``cases`` and ``runs``: the exported tables (``--fields`` applied, lists as JSON);
- ``metrics``: the exported metrics table, bounded to :data:`XLSX_METRIC_ROWS` rows
  (a workbook is for reading, and xlsx writes a cell at a time): when the study has
  more values, the sheet keeps every final value and then the series in table order,
  and the summary says how many of how many it holds;
- ``rankings``: every case of the study ranked under its objectives (rank, case,
  stage, runs, one column per key), then the unranked ones with the reason; the first
  key's column carries a colour scale oriented by its direction;
- ``comparisons``: per stage, cases and runs (completed; not_completed counts failed,
  pruned, timed-out, cancelled, interrupted and invalidated runs), the best case and score, the median
  score of the ranked cases, and the change of both from the previous stage (with
  ``better`` saying whether the best moved the right way); a line chart of the best
  score per stage sits beside it.

Scores are the first objective's aggregate (the study's ranking policy). A study with
no objectives gets the sheets without scores, formatting or chart. Times are date
cells (UTC); the summary's values keep their types (the as-of seq a number, its time a
date). The sheets other than metrics are small (one row per case, run or stage), so
building them row by row is fine; the writer
(:func:`~projections.export.xlsx_writer.write_xlsx`) pins every byte.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from projections.export.tables import ExportRecords
from projections.export.xlsx_writer import FieldSheet, XlsxSpec, write_xlsx

if TYPE_CHECKING:
    import os

    import pyarrow as pa

    from projections.stages import Selection

__all__ = [
    "XLSX_METRIC_ROWS",
    "comparisons_table",
    "metrics_sheet",
    "rankings_table",
    "report_sheets",
    "write_report",
]

#: Rows of the workbook's metrics sheet at most; the CSV and Parquet tables hold all.
XLSX_METRIC_ROWS = 10_000


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


def _first_score(score: float | list[float]) -> float:
    """A ranked row's score on its first key."""
    return score[0] if isinstance(score, list) else score


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
    latest_selection: dict[int, Selection] = {sel.stage: sel for sel in view.selections}
    rows: list[dict[str, Any]] = []
    prev_best = prev_median = None
    for stage in view.dag.stages():
        nodes = view.dag.cases(stage)
        counts = view.runs.status_counts({n.case for n in nodes})
        ranking = by_stage.get(stage)
        firsts = [_first_score(r.score) for r in ranking.rows] if ranking else []
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


def metrics_sheet(rec: ExportRecords, metrics: pa.Table) -> tuple[pa.Table, str]:
    """The metrics table bounded to :data:`XLSX_METRIC_ROWS` rows, and what it holds.

    Cut, it keeps the final values first (in table order; all of them when they fit)
    and fills the rest with stepped values in table order, so every run's results are
    there before any curve is.
    """
    total = metrics.num_rows
    limit = XLSX_METRIC_ROWS
    if total <= limit:
        return metrics, f"all {total:,} values"
    final = np.asarray(rec.metrics["final"], bool)
    keep = final & (np.cumsum(final) <= limit)
    room = limit - int(keep.sum())
    if room > 0:
        stepped = ~final
        keep |= stepped & (np.cumsum(stepped) <= room)
    rows = np.flatnonzero(keep)
    note = (
        f"{len(rows):,} of {total:,} values (cut at {limit:,} rows: every final value "
        "first, then the series in table order); metrics.csv and metrics.parquet hold all"
    )
    return metrics.take(rows), note


def _summary_table(
    rec: ExportRecords, meta: Mapping[str, Any], metrics_note: str | None = None
) -> FieldSheet:
    from datetime import datetime, timezone

    view = rec.view
    ranks = rec.rankings()
    counts: dict[str, int] = {}
    for r in rec.runs:
        key = "invalidated" if r.invalidated is not None else (r.status or "running")
        counts[key] = counts.get(key, 0) + 1
    as_of_ts = meta.get("as_of_ts")
    when = None
    if as_of_ts is not None:
        seconds, micros = divmod(int(as_of_ts), 1_000_000)
        when = datetime.fromtimestamp(seconds, tz=timezone.utc).replace(microsecond=micros)
    fields: list[tuple[str, Any]] = [
        ("study", rec.study),
        ("description", rec.info["description"]),
        ("as of seq", rec.as_of),
        ("as of time (UTC)", when),
        ("head hash", meta.get("head_hash")),
        ("objectives", ", ".join(f"{m}:{d}" for m, d in view.objectives) or "none"),
        ("ranking", ranks.policy.text if ranks.policy is not None else "none (no objectives)"),
        ("stages", ", ".join(map(str, view.dag.stages())) or "none"),
        ("cases exported", len(rec.cases)),
        ("runs exported", len(rec.runs)),
        ("runs by status", ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"),
        ("metric values exported", len(rec.metrics["value"])),
        ("metrics sheet", metrics_note),
        ("metrics", ", ".join(rec.metrics["metrics"]) or "none"),
        ("where", "; ".join(rec.where.texts) or "all rows"),
        ("redacted values", len(rec.redactor.paths) if rec.redactor.enabled else "redaction off"),
    ]
    if metrics_note is None:
        fields = [f for f in fields if f[0] != "metrics sheet"]
    return FieldSheet(tuple(fields))


def report_sheets(
    rec: ExportRecords,
    cases: pa.Table,
    runs: pa.Table,
    meta: Mapping[str, Any],
    metrics: pa.Table | None = None,
) -> tuple[dict[str, pa.Table | FieldSheet], XlsxSpec]:
    """The workbook's sheets and the spec that formats them. ``cases``, ``runs`` and
    ``metrics`` are the exported tables, CSV-ready (no list columns); without
    ``metrics`` the workbook has no metrics sheet. ``meta``: ``head_hash`` and
    ``as_of_ts`` (the as-of event's time, µs)."""
    ranks = rec.rankings()
    score_cols = _score_columns(rec)
    bounded, note = metrics_sheet(rec, metrics) if metrics is not None else (None, None)
    sheets: dict[str, pa.Table | FieldSheet] = {
        "summary": _summary_table(rec, meta, note),
        "cases": cases,
        "runs": runs,
    }
    if bounded is not None:
        sheets["metrics"] = bounded
    sheets["rankings"] = rankings_table(rec)
    sheets["comparisons"] = comparisons_table(rec)
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
    metrics: pa.Table | None = None,
) -> None:
    sheets, spec = report_sheets(rec, cases, runs, meta, metrics)
    write_xlsx(sheets, path, spec)
