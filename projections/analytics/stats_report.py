"""``stats`` over a query: summary statistics of one metric per group.

The arithmetic is in ``stats``, which knows nothing of the ledger; this module picks the
values, groups them and shapes the table and JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import stats as _stats
from .config import AnalyticsConfig
from .query import Columns, Query
from .report_inputs import (
    all_exclusions,
    group_labels,
    prepare,
    resolve_config,
    settings_of,
    summary_warnings,
    usable_values,
)
from .result import AnalyticsResult

#: What ``stats`` says, once, when every case has a single run (a sweep or a search
#: runs each configuration once): grouping by case can only describe single values.
ONE_RUN_EACH = (
    "every case has one run, so statistics per case say nothing about spread: pool the "
    "runs with --by all (or --by stage, eco, eco_class or param:NAME)"
)

_GROUP_TYPES = {
    "count": "int",
    "nan_dropped": "int",
    "mean": "float",
    "median": "float",
    "std": "float",
    "sem": "float",
    "min": "float",
    "max": "float",
}


def _group_columns(groups: list[dict[str, Any]], label: str, pct: Sequence[str]) -> Columns:
    rows = []
    for g in groups:
        r = dict(g)
        r[label] = g["group"]
        for k in pct:
            r[k] = g["percentiles"].get(k)
        r["warnings"] = "; ".join(g["warnings"])
        rows.append(r)
    types: dict[str, str] = {label: "any", **_GROUP_TYPES}
    types.update({k: "float" for k in pct})
    types.update({"ci_low": "float", "ci_high": "float", "boot_low": "float", "boot_high": "float"})
    types["warnings"] = "str"
    return Columns.from_rows(rows, types)


def stats(
    query: Query,
    *,
    metric: str | None = None,
    by: str = "case",
    confidence: float | None = None,
    bootstrap: int | None = None,
    seed: int | None = None,
    min_n: int | None = None,
    percentiles: Sequence[float] = (5, 25, 75, 95),
    statistic: str = "mean",
    agg: str | None = None,
    direction: str | None = None,
    config: AnalyticsConfig | None = None,
) -> AnalyticsResult:
    """Count, mean, median, std (ddof=1), min, max, percentiles, the t interval of the
    mean and (``bootstrap`` resamples > 0) a seeded percentile bootstrap interval of
    ``statistic``, per group of ``by``. With ``agg`` (or a query metric with an agg)
    each case's runs are aggregated first: statistics of case scores, e.g. by stage.

    JSON: ``{"groups": [{"group", "count", "mean", "median", "std", "min", "max",
    "ci_low", "ci_high", "percentiles", "boot_low", "boot_high", "warnings", ...}],
    "metric", "by", ...}``.
    """
    cfg = resolve_config(config, confidence=confidence, bootstrap=bootstrap, seed=seed, min_n=min_n)
    query, frame, name = prepare(query, metric, agg=agg, direction=direction)
    rows, x, dropped = usable_values(frame, name)
    labels = group_labels(rows, by, frame)
    res = _stats.grouped(
        x,
        labels,
        confidence=cfg.confidence,
        percentiles=percentiles,
        bootstrap=cfg.bootstrap or None,
        seed=cfg.seed,
        statistic=statistic,
        min_n=cfg.min_n,
    )
    groups = [g.to_dict() for g in res.groups]
    pct = [_stats.pct_key(p) for p in percentiles]
    table = _group_columns(groups, "group", pct)
    shown = ["group", "count", "mean", "median", "std", "min", "max", "ci_low", "ci_high"]
    if cfg.bootstrap:
        shown += ["boot_low", "boot_high"]
    agg = frame.metrics[0].agg if frame.per_case else None
    what = f"{agg} {name} per case" if agg else name
    warnings = summary_warnings(groups)
    if by == "case" and len(groups) > 1 and all(g["count"] <= 1 for g in groups):
        warnings = [ONE_RUN_EACH]  # not one warning per case
    return AnalyticsResult(
        kind="stats",
        study=frame.study,
        as_of=frame.as_of,
        query=query,
        rows=rows,
        table=table,
        data={
            "metric": name,
            "by": by,
            "statistic": statistic,
            "confidence": cfg.confidence,
            "groups": groups,
        },
        exclusions=all_exclusions(frame, dropped),
        settings=settings_of(cfg, "confidence", "bootstrap", "seed", "min_n"),
        warnings=warnings,
        title=f"stats of {what} by {by}",
        display={"": shown},
    )
