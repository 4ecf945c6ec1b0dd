"""``failures`` over a query: failure rates, what failures go with, bursts, errors.

It counts runs by status rather than analysing a metric, so it uses every run by
default and leaves out only those that neither succeeded nor failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import failures as _failures
from .config import AnalyticsConfig
from .query import Columns, Exclusion, Query, QueryError, QueryFrame
from .report_inputs import (
    all_exclusions,
    group_labels,
    resolve_config,
    settings_of,
)
from .result import AnalyticsResult
from .stats import AnalyticsError

FAILURE_STATUSES = ("failed", "timeout", "interrupted")


def failures(
    query: Query,
    *,
    by: str = "stage",
    failure_statuses: Sequence[str] = FAILURE_STATUSES,
    params: Sequence[str] | None = None,
    window: int = 20,
    alpha: float = 0.01,
    top: int = 10,
    confidence: float | None = None,
    config: AnalyticsConfig | None = None,
) -> AnalyticsResult:
    """Which runs fail, where and when: failure rates per group of ``by`` with Wilson
    intervals; association of failure with each param (and the host) ranked by
    strength; bursts of failures over the log (by the seq of each run's finish); the
    most common error messages.

    A run counts when it completed (a success) or ended in ``failure_statuses`` (by
    default failed, timeout, interrupted); runs still running, pruned or cancelled are
    left out with that reason.

    JSON: ``{"overall", "groups": [{"group", "n", "failed", "rate", "ci_low",
    "ci_high"}], "association": [...], "bursts": {...}, "top_errors": [...], ...}``.
    """
    cfg = resolve_config(config, confidence=confidence)
    view = query.load()
    query = query.study(view.study)
    frame = query.collect(view)
    if frame.per_case:
        raise QueryError("failure analysis counts runs: drop the agg from the query's metric")
    fails = _failure_statuses(failure_statuses)
    rows, extra = _counted_runs(frame, fails)
    failed = np.fromiter((s in fails for s in rows["status"].tolist()), bool, len(rows))
    labels = group_labels(rows, by, frame)
    rates = _failures.failure_rates(labels, failed, confidence=cfg.confidence)
    groups = [g.to_dict() for g in rates.groups]
    candidates = _association_candidates(frame, rows, params)
    assoc = (
        _failures.association(candidates, failed, confidence=cfg.confidence) if len(rows) else None
    )
    associations = [a.to_dict() for a in assoc.params] if assoc is not None else []
    seqs = np.array(rows["finished_seq"].tolist(), dtype=np.int64)
    bursts = _failures.bursts(seqs, failed, window=window, alpha=alpha)
    errors = _top_errors(rows, failed, top)
    warns = [*bursts.warnings]
    for a in associations:
        warns.extend(f"{a['param']}: {w}" for w in a["warnings"])
    burst_rows = [b.to_dict() for b in bursts.bursts]
    return AnalyticsResult(
        kind="failures",
        study=frame.study,
        as_of=frame.as_of,
        query=query,
        rows=rows.with_column("failed", failed),
        table=Columns.from_rows(groups, _RATE_TYPES),
        extras={
            "association": Columns.from_rows(associations, _ASSOCIATION_TYPES),
            "bursts": Columns.from_rows(burst_rows, _BURST_TYPES),
            "top_errors": Columns.from_rows(errors, _ERROR_TYPES),
        },
        data={
            "by": by,
            "failure_statuses": list(fails),
            "confidence": cfg.confidence,
            "overall": rates.overall.to_dict(),
            "groups": groups,
            "association": associations,
            "bursts": {k: v for k, v in bursts.to_dict().items() if k != "warnings"},
            "top_errors": errors,
        },
        exclusions=all_exclusions(frame, extra),
        settings=settings_of(cfg, "confidence"),
        warnings=warns,
        title=(
            f"failures by {by}: {rates.overall.failed} of {rates.overall.n} runs "
            f"({', '.join(fails)})"
        ),
        display=_DISPLAY,
    )


_RATE_TYPES = {
    "group": "any",
    "n": "int",
    "failed": "int",
    "rate": "float",
    "ci_low": "float",
    "ci_high": "float",
}
_ASSOCIATION_TYPES = {
    "param": "str",
    "kind": "str",
    "test": "str",
    "statistic": "float",
    "df": "float",
    "p_value": "float",
    "strength": "float",
    "strength_name": "str",
    "n": "int",
    "missing": "int",
}
_BURST_TYPES = {
    "start": "int",
    "end": "int",
    "n": "int",
    "failed": "int",
    "rate": "float",
    "ratio": "float",
    "p_value": "float",
}
_ERROR_TYPES = {
    "pattern": "str",
    "count": "int",
    "share": "float",
    "example": "str",
    "example_run": "str",
}
_DISPLAY = {
    "": ["group", "n", "failed", "rate", "ci_low", "ci_high"],
    "association": ["param", "kind", "test", "p_value", "strength", "strength_name"],
    "bursts": ["start", "end", "n", "failed", "rate", "ratio", "p_value"],
    "top_errors": ["count", "share", "pattern", "example_run"],
}


def _failure_statuses(failure_statuses: Sequence[str]) -> tuple[str, ...]:
    fails = tuple(dict.fromkeys(failure_statuses))
    bad = [s for s in fails if s not in ("failed", "timeout", "interrupted", "pruned", "cancelled")]
    if bad:
        raise AnalyticsError(
            f"{bad[0]!r} is not a finished status that can count as a failure; use "
            "failed, timeout, interrupted, pruned or cancelled"
        )
    return fails


def _counted_runs(frame: QueryFrame, fails: tuple[str, ...]) -> tuple[Columns, list[Exclusion]]:
    """The runs that succeeded or failed, and the others with why they are left out."""
    cols = frame.columns
    status = cols["status"].tolist()
    counted = np.fromiter((s == "completed" or s in fails for s in status), bool, len(status))
    extra = [
        Exclusion(
            c,
            r,
            "still running" if s is None else f"status {s}: neither a success nor a failure",
        )
        for c, r, s, ok in zip(cols["case"].tolist(), cols["run"].tolist(), status, counted)
        if not ok
    ]
    return cols.take(np.flatnonzero(counted)), extra


def _association_candidates(
    frame: QueryFrame, rows: Columns, params: Sequence[str] | None
) -> dict[str, Any]:
    """The columns tested for association with failure: the params (all, or those
    named) and, when runs ran on several hosts and no params were named, the host."""
    candidates: dict[str, Any] = {}
    names = frame.params if params is None else tuple(params)
    for p in names:
        if f"param.{p}" not in rows:
            raise QueryError(
                f"no selected case sets the param {p!r} (params: {', '.join(frame.params) or 'none'})"
            )
        candidates[f"param.{p}"] = rows[f"param.{p}"]
    if params is None and len({h for h in rows["host"].tolist() if h is not None}) > 1:
        candidates["host"] = rows["host"]
    return candidates


def _top_errors(rows: Columns, failed: np.ndarray, top: int) -> list[dict[str, Any]]:
    errors = []
    failed_runs = rows["run"][failed]
    for e in _failures.top_errors(rows["error"][failed], k=top):
        d = e.to_dict()
        d["example_run"] = failed_runs[e.first_index]
        del d["first_index"]
        errors.append(d)
    return errors
