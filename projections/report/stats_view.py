"""Grouped statistics with interval bars, ECO effects, and failure rates.

The numbers are the analytics' own, drawn as interval bars; nothing is computed here.
Statistics and failure rates take the rows of a ``Query`` collected on the report's
already loaded study and hand them to the analytics' maths (``stats.grouped``,
``failures.failure_rates``, ``failures.top_errors``) exactly as ``ledger stats`` and
``ledger failures`` do with their defaults (completed runs for statistics; completed
versus failed, timed out or interrupted for failures), so the study is not loaded
again for each chart; ECO effects are ``api.eco_effects``. A request the analytics
refuse (no value of the metric yet, say) becomes the view's sentence instead of a
chart.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ledger.errors import LedgerError
from projections.analytics import api
from projections.analytics import failures as _failures
from projections.analytics import stats as _stats
from projections.analytics.config import AnalyticsConfig
from projections.analytics.failures_report import FAILURE_STATUSES
from projections.analytics.report_inputs import group_labels, usable_values
from projections.text import format_value

from .context import Context
from .forest import Bar, forest


def _label(group: Any, prefix: str = "", none: str = "(none)") -> str:
    return none if group is None else f"{prefix}{group}"


def _group_label(group: Any, by: str) -> str:
    if by == "stage":
        return _label(group, "stage ")
    return _label(group, none="(no ECO: a root)" if by == "eco" else "(none)")


def _metrics(ctx: Context) -> list[str]:
    """The metrics the statistics describe: the objectives, else the final metrics."""
    if ctx.objectives:
        return [m for m, _ in ctx.objectives][:3]
    table = ctx.view.final_table()
    used = sorted({table.metrics[i] for i in set(table.metric.tolist())})
    return used[:3]


def _has_ecos(ctx: Context) -> bool:
    return any(n.eco is not None for n in ctx.view.dag.nodes.values())


def _stats_chart(ctx: Context, metric: str, by: str) -> dict[str, Any]:
    conf = ctx.options.confidence
    try:
        frame = ctx.query().runs(status="completed").metric(metric).collect(ctx.view)
        rows, x, dropped = usable_values(frame, metric)
        labels = group_labels(rows, by, frame)
        res = _stats.grouped(
            x, labels, confidence=conf, percentiles=(), min_n=AnalyticsConfig().min_n
        )
    except LedgerError as exc:
        return {"title": f"{metric} by {by}", "empty": str(exc)}
    groups = [g.to_dict() for g in res.groups]
    if not groups:
        return {"title": f"{metric} by {by}", "empty": f"No completed run has a final {metric}."}
    bars = [
        Bar(
            _group_label(g["group"], by),
            g["mean"],
            g["ci_low"],
            g["ci_high"],
            f"n={g['count']}  mean {format_value(g['mean'])}",
            f"{_label(g['group'])}: n={g['count']}, mean {format_value(g['mean'])}, "
            f"{conf:g} interval [{format_value(g['ci_low'])}, {format_value(g['ci_high'])}], "
            f"sd {format_value(g['std'])}, min {format_value(g['min'])}, "
            f"max {format_value(g['max'])}",
        )
        for g in groups
    ]
    return {
        "title": f"{metric} by {by}",
        "empty": None,
        "chart": forest(bars, f"mean {metric} with its {conf:g} t interval"),
        "excluded": len(frame.exclusions) + len(dropped),
    }


def build_stats(ctx: Context) -> dict[str, Any]:
    metrics = _metrics(ctx)
    if not metrics:
        return {"empty": "No run has a final value of any metric yet: nothing to describe."}
    charts = []
    for i, m in enumerate(metrics):
        charts.append(_stats_chart(ctx, m, "stage"))
        if i == 0 and _has_ecos(ctx):
            charts.append(_stats_chart(ctx, m, "eco"))
    return {"empty": None, "charts": charts}


def build_eco(ctx: Context) -> dict[str, Any]:
    if not _has_ecos(ctx):
        return {
            "empty": "No case was made by applying an ECO (eco_applied), so there are no "
            "child-minus-parent effects to show."
        }
    metrics = _metrics(ctx)
    if not metrics:
        return {"empty": "No run has a final value of any metric yet: no effect to measure."}
    metric = metrics[0]
    conf = ctx.options.confidence
    try:
        res = api.eco_effects(
            ctx.query(), metric=metric, agg=ctx.options.agg, confidence=conf, view=ctx.view
        )
    except LedgerError as exc:
        return {"empty": str(exc)}
    data = res.data
    if not data["edges"]:
        return {
            "empty": f"No ECO edge has both a child and a parent with a usable {metric} yet "
            f"({len(res.exclusions)} left out)."
        }
    symbol = {
        "helps": "▲ helps",
        "hurts": "▼ hurts",
        "unclear": "· unclear",
        "too few": "· too few",
    }
    charts = []
    for key, rows in (("eco", data["by_eco"]), ("eco_class", data["by_eco_class"])):
        bars = [
            Bar(
                _label(r[key]),
                r["mean"],
                r["ci_low"],
                r["ci_high"],
                f"n={r['count']}  {symbol.get(r['verdict'] or '', '')}".rstrip(),
                f"{_label(r[key])}: {r['count']} edges, mean delta {format_value(r['mean'])}, "
                f"{conf:g} interval [{format_value(r['ci_low'])}, {format_value(r['ci_high'])}]"
                + (f", {r['verdict']}" if r["verdict"] else ""),
                (r["verdict"] or "").replace(" ", "-"),
            )
            for r in rows
        ]
        charts.append(
            {
                "title": f"by {key.replace('_', ' ')}",
                "chart": forest(bars, f"child − parent, {ctx.options.agg} {metric}", zero=True),
            }
        )
    return {
        "empty": None,
        "metric": metric,
        "direction": data["direction"],
        "edges": len(data["edges"]),
        "charts": charts,
        "excluded": len(res.exclusions),
    }


def _fail_chart(ctx: Context, by: str) -> dict[str, Any]:
    conf = ctx.options.confidence
    try:
        frame = ctx.query().collect(ctx.view)
        cols = frame.columns
        status = cols["status"].tolist()
        counted = np.fromiter(
            (s == "completed" or s in FAILURE_STATUSES for s in status), bool, len(status)
        )
        rows = cols.take(np.flatnonzero(counted))
        failed = np.fromiter(
            (s in FAILURE_STATUSES for s in rows["status"].tolist()), bool, len(rows)
        )
        rates = _failures.failure_rates(group_labels(rows, by, frame), failed, confidence=conf)
        errors = _failures.top_errors(rows["error"][failed], k=5)
    except LedgerError as exc:
        return {"title": f"by {by}", "empty": str(exc), "errors": [], "overall": None}
    groups = [g.to_dict() for g in rates.groups]
    failed_runs = rows["run"][failed]
    bars = [
        Bar(
            _group_label(g["group"], by),
            g["rate"],
            g["ci_low"],
            g["ci_high"],
            f"{g['failed']} of {g['n']}",
            f"{_label(g['group'])}: {g['failed']} of {g['n']} runs failed "
            f"(rate {format_value(g['rate'])}, Wilson {conf:g} interval "
            f"[{format_value(g['ci_low'])}, {format_value(g['ci_high'])}])",
        )
        for g in groups
    ]
    return {
        "title": f"by {by}",
        "empty": None if bars else "No run counted.",
        "chart": forest(bars, "failure rate", lo=0.0, hi=1.0) if bars else None,
        "overall": rates.overall.to_dict(),
        "errors": [
            {"pattern": e.pattern, "count": e.count, "example_run": failed_runs[e.first_index]}
            for e in errors
        ],
    }


def build_failures(ctx: Context) -> dict[str, Any]:
    if not ctx.view.runs.runs:
        return {"empty": "The study has no run yet: no failure rate to show."}
    charts = [_fail_chart(ctx, "stage")]
    if _has_ecos(ctx):
        charts.append(_fail_chart(ctx, "eco"))
        charts[-1]["errors"] = []  # the same runs: their errors are listed once
    overall = charts[0].get("overall") or {}
    if overall and overall.get("n", 0) == 0:
        return {"empty": "No run has completed or failed yet: no failure rate to show."}
    sentence = None
    if overall and overall.get("failed", 0) == 0:
        sentence = f"No run failed: all {overall['n']} counted runs completed."
    return {"empty": None, "charts": charts, "sentence": sentence, "overall": overall}
