"""What every analysis does to a query before the maths: defaults, metric, values, groups.

The analyses run different statistics but must agree on which numbers go in — the
same default status, the same rule for picking the metric and its direction, the same
reason for a run left out, the same group labels — or two commands would count one
study differently. So those steps are written once, here, for every ``*_report``
module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import AnalyticsConfig
from .query import Columns, Exclusion, MetricSpec, Query, QueryError, QueryFrame
from .stats import AnalyticsError

if TYPE_CHECKING:
    from projections.study import StudyView

BY = ("case", "stage", "eco", "eco_class", "host", "status", "all")


def resolve_config(config: AnalyticsConfig | None, **flags: Any) -> AnalyticsConfig:
    return (config if config is not None else AnalyticsConfig()).override(**flags)


def settings_of(cfg: AnalyticsConfig, *names: str) -> dict[str, Any]:
    out = {n: getattr(cfg, n) for n in names}
    out["config"] = cfg.source
    return out


def pick_metric(query: Query, metric: str | None, view: Any) -> str:
    if metric is not None:
        return metric
    names = [m.name for m in query.spec.metrics]
    if len(names) == 1:
        return names[0]
    if len(names) > 1:
        raise QueryError(
            f"the query has several metrics ({', '.join(names)}); name the one to analyse"
        )
    if len(view.objectives) == 1:
        return view.objectives[0][0]
    known = view.metrics.metric_names(view.study)
    shown = ", ".join(known[:12]) + (f", ... ({len(known)} in all)" if len(known) > 12 else "")
    raise QueryError(
        f"name a metric (--metric): study {view.study!r} has "
        f"{'no single objective' if view.objectives else 'no objectives'}; "
        f"its metrics: {shown or 'none'}"
    )


def prepare(
    query: Query,
    metric: str | None,
    *,
    default_status: str | None = "completed",
    agg: str | None = None,
    direction: str | None = None,
    view: StudyView | None = None,
) -> tuple[Query, QueryFrame, str]:
    """The query with its defaults applied, its frame, and the metric to analyse.
    ``agg`` makes the metric per case (the query's other metrics are dropped). ``view``:
    the study already loaded at the query's seq (the report holds one), else loaded."""
    if default_status is not None and query.spec.statuses is None:
        query = query.runs(status=default_status)
    if view is None:
        view = query.load()
    query = query.study(view.study)
    name = pick_metric(query, metric, view)
    if agg is not None:
        if agg not in ("mean", "median", "best", "last"):
            raise AnalyticsError(f"unknown aggregate {agg!r}; use one of mean, median, best, last")
        query = query._replace(metrics=(MetricSpec(name, agg, direction),))
    elif all(m.name != name for m in query.spec.metrics):
        first = query.spec.metrics[0] if query.spec.metrics else None
        query = query.metric(name, agg=first.agg if first else None, direction=None)
    return query, query.collect(view), name


def direction_of(frame: QueryFrame, metric: str, direction: str | None) -> str | None:
    if direction is not None:
        if direction not in ("min", "max"):
            raise AnalyticsError(f"direction must be 'min' or 'max', got {direction!r}")
        return direction
    for m in frame.metrics:
        if m.name == metric and m.direction is not None:
            return m.direction
    return dict(frame.view.objectives).get(metric)


def need_direction(frame: QueryFrame, metric: str, direction: str | None, what: str) -> str:
    d = direction_of(frame, metric, direction)
    if d is None:
        raise QueryError(
            f"{what} needs a direction for {metric!r}: it is not an objective of study "
            f"{frame.study!r}; pass direction 'min' or 'max' (--direction)"
        )
    return d


def usable_values(
    frame: QueryFrame, metric: str, *, drop_nan: bool = True
) -> tuple[Columns, np.ndarray, list[Exclusion]]:
    """The rows holding a usable value of ``metric``, the values, and the rows left out."""
    cols = frame.columns
    col = frame.metric_columns[metric]
    x = cols[col]
    missing = cols.nulls.get(col, np.zeros(len(cols), bool))
    nan = np.isnan(x) & ~missing
    drop = missing | nan if drop_nan else missing
    out: list[Exclusion] = []
    if drop.any():
        cases = cols["case"]
        runs = cols["run"] if "run" in cols else None
        agg = frame.metrics[0].agg if frame.per_case else None
        for i in np.flatnonzero(drop).tolist():
            run = None if runs is None else runs[i]
            if missing[i]:
                why = f"no final {metric}" if agg is None else f"no run with a final {metric}"
            else:
                why = f"{metric} is NaN" if agg is None else f"{agg} of {metric} is NaN"
            out.append(Exclusion(cases[i], run, why))
    keep = np.flatnonzero(~drop)
    return cols.take(keep), x[keep], out


def all_exclusions(frame: QueryFrame, extra: Sequence[Exclusion]) -> list[Exclusion]:
    return sorted([*frame.exclusions, *extra], key=lambda e: (e.case, e.run or ""))


def group_labels(cols: Columns, by: str, frame: QueryFrame) -> np.ndarray:
    """The group label of each row for ``by``."""
    if by == "all":
        out = np.empty(len(cols), dtype=object)
        out[:] = "all"
        return out
    if by.startswith("param:"):
        name = by[len("param:") :]
        col = f"param.{name}"
        if col not in cols:
            raise QueryError(
                f"no selected case sets the param {name!r} "
                f"(params: {', '.join(frame.params) or 'none'})"
            )
        return cols[col]
    if by not in BY:
        raise QueryError(f"cannot group by {by!r}; use one of {', '.join(BY)} or param:NAME")
    if by not in cols:
        raise QueryError(
            f"cannot group by {by!r} with one row per case (the query has an agg); "
            "group by case, stage, eco, eco_class or a param"
        )
    return cols[by]


def summary_warnings(groups: Sequence[dict[str, Any]], key: str = "group") -> list[str]:
    return [f"{key} {g[key]}: {w}" for g in groups for w in g.get("warnings", ())]
