"""``outliers`` over a query: which runs' values a rule flags, each with its reason.

The rules are in ``outliers``; this module maps the user's and the config's choice of
rule onto them and keeps NaN values in, so the rule itself can say why it drops them.
"""

from __future__ import annotations

from . import outliers as _outliers
from .config import AnalyticsConfig
from .query import Columns, Query
from .report_inputs import (
    all_exclusions,
    group_labels,
    prepare,
    resolve_config,
    usable_values,
)
from .result import AnalyticsResult
from .stats import AnalyticsError

_METHODS = {
    "iqr": "iqr",
    "zscore": "zscore",
    "modified-z": "modified-z",
    "modified_z": "modified-z",
    "bounds": "bounds",
}


def outliers(
    query: Query,
    *,
    metric: str | None = None,
    method: str | None = None,
    factor: float | None = None,
    low: float | None = None,
    high: float | None = None,
    by: str | None = None,
    agg: str | None = None,
    direction: str | None = None,
    config: AnalyticsConfig | None = None,
) -> AnalyticsResult:
    """Flag outlying values with ``iqr`` (factor k), ``zscore`` / ``modified-z``
    (threshold) or fixed ``bounds`` (low/high), over all rows or per group (``by``).
    Each outlier carries its reason (``wns_ps=-310.0 below Q1-1.5·IQR=-212.5``).

    JSON: ``{"outliers": [{"run", "case", "value", "reason"}], "kept": n, "method",
    "metric", "params", "fences", ...}``; ``rows`` has a boolean ``kept`` column.
    """
    if method is not None and method not in _METHODS:
        raise AnalyticsError(
            f"unknown outlier method {method!r}; use one of iqr, zscore, modified-z, bounds",
            argument="method",
        )
    cfg = resolve_config(
        config,
        outlier_method=_METHODS.get(method) if method else None,
        outlier_factor=factor,
        outlier_low=low,
        outlier_high=high,
    )
    query, frame, name = prepare(query, metric, agg=agg, direction=direction)
    rows, x, dropped = usable_values(frame, name, drop_nan=False)
    m = cfg.outlier_method
    labels = group_labels(rows, by, frame) if by is not None else None
    if m == "iqr" or m == "zscore" or m == "modified-z":
        k = cfg.factor
        assert k is not None  # DEFAULT_FACTORS gives each of these rules one
        if m == "iqr":
            res = _outliers.iqr(x, factor=k, metric=name, labels=labels)
        elif m == "zscore":
            res = _outliers.zscore(x, threshold=k, metric=name, labels=labels)
        else:
            res = _outliers.modified_z(x, threshold=k, metric=name, labels=labels)
    else:
        if by is not None:
            raise AnalyticsError("bounds are fixed: they take no grouping (drop --by)")
        if cfg.outlier_low is None and cfg.outlier_high is None:
            raise AnalyticsError(
                "the bounds method needs a low and/or a high bound (--low, --high, or "
                "outlier_low / outlier_high in ledger.toml)"
            )
        res = _outliers.bounds(x, low=cfg.outlier_low, high=cfg.outlier_high, metric=name)
    runs = rows["run"] if "run" in rows else None
    found = [
        {
            "run": None if runs is None else runs[i],
            "case": rows["case"][i],
            "value": v,
            "reason": why,
        }
        for i, v, why in zip(res.excluded.tolist(), res.excluded_values, res.reasons)
    ]
    params = {"method": m, **res.params}
    return AnalyticsResult(
        kind="outliers",
        study=frame.study,
        as_of=frame.as_of,
        query=query,
        rows=rows.with_column("kept", res.kept),
        table=Columns.from_rows(
            found, {"run": "str", "case": "str", "value": "float", "reason": "str"}
        ),
        data={
            "metric": name,
            "method": m,
            "by": by,
            "params": dict(res.params),
            "outliers": found,
            "kept": res.kept_count,
            "n": res.n,
            "fences": [f.to_dict() for f in res.fences],
        },
        exclusions=all_exclusions(frame, dropped),
        settings={**params, "config": cfg.source},
        warnings=res.warnings,
        title=f"outliers of {name} ({m}{', by ' + by if by else ''}): "
        f"{len(found)} flagged, {res.kept_count} kept",
        display={"": ["case", "run", "value", "reason"]},
    )
