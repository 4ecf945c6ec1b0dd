"""The analyses, each over a ``Query``, each returning an ``AnalyticsResult``.

This layer decides *which numbers* go into the statistics modules (``stats``,
``outliers``, ``compare``, ``failures``, ``curves``), which do the maths. It loads the
study once per call, takes the query's rows, leaves out what cannot be used — with a
reason per run — and shapes the DESIGN §5 JSON.

Defaults, so a bare query does what a user means:

- the value analyses (``stats``, ``outliers``, ``compare``, ``rank_ci``,
  ``eco_effects``) use completed runs unless the query names statuses; ``failures`` and
  ``curves`` use every run (a failure analysis needs the failures; a diverging or live
  run has a curve worth seeing). Invalidated runs never count;
- the metric is the one argument, else the query's only metric, else the study's only
  objective; otherwise an error lists the metrics;
- a run without a final value of the metric, or whose value is NaN, is left out with
  that reason (outliers keep NaN in: the rule itself excludes it, with its reason);
- ``confidence``, ``min_n``, ``bootstrap``/``seed`` and the outlier rule come from an
  ``AnalyticsConfig`` (``config.load_config`` reads ``ledger.toml``); an explicit
  argument beats it.

Grouping (``by``): ``case``, ``stage``, ``eco``, ``eco_class``, ``host``, ``status``,
``param:NAME``, or ``all`` (one group). Groups are ordered by label (numbers
numerically, text in code-point order, a missing label last).

Every function raises ``QueryError`` / ``AnalyticsError`` (both ``LedgerError``) for a
request it cannot answer, and what ``Query.load`` raises (unknown study, bad as-of).
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Sequence
from typing import Any

import msgspec
import numpy as np

from . import compare as _compare
from . import curves as _curves
from . import failures as _failures
from . import outliers as _outliers
from . import stats as _stats
from .config import AnalyticsConfig
from .query import Columns, Exclusion, MetricSpec, Query, QueryError, QueryFrame, QuerySpec
from .result import AnalyticsResult
from .stats import AnalyticsError

__all__ = [
    "BY",
    "FAILURE_STATUSES",
    "compare",
    "curves",
    "eco_effects",
    "failures",
    "outliers",
    "rank_ci",
    "stats",
]

BY = ("case", "stage", "eco", "eco_class", "host", "status", "all")
FAILURE_STATUSES = ("failed", "timeout", "interrupted")
TESTS = ("welch", "student", "mannwhitney")
_METHODS = {
    "iqr": "iqr",
    "zscore": "zscore",
    "modified-z": "modified-z",
    "modified_z": "modified-z",
    "bounds": "bounds",
}


# --------------------------------------------------------------------------- helpers


def _config(config: AnalyticsConfig | None, **flags: Any) -> AnalyticsConfig:
    return (config if config is not None else AnalyticsConfig()).override(**flags)


def _settings(cfg: AnalyticsConfig, *names: str) -> dict[str, Any]:
    out = {n: getattr(cfg, n) for n in names}
    out["config"] = cfg.source
    return out


def _pick_metric(query: Query, metric: str | None, view: Any) -> str:
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


def _prepare(
    query: Query,
    metric: str | None,
    *,
    default_status: str | None = "completed",
    agg: str | None = None,
    direction: str | None = None,
) -> tuple[Query, QueryFrame, str]:
    """The query with its defaults applied, its frame, and the metric to analyse.
    ``agg`` makes the metric per case (the query's other metrics are dropped)."""
    if default_status is not None and query.spec.statuses is None:
        query = query.runs(status=default_status)
    view = query.load()
    query = query.study(view.study)
    name = _pick_metric(query, metric, view)
    if agg is not None:
        if agg not in ("mean", "median", "best", "last"):
            raise AnalyticsError(f"unknown aggregate {agg!r}; use one of mean, median, best, last")
        query = query._replace(metrics=(MetricSpec(name, agg, direction),))
    elif all(m.name != name for m in query.spec.metrics):
        first = query.spec.metrics[0] if query.spec.metrics else None
        query = query.metric(name, agg=first.agg if first else None, direction=None)
    return query, query.collect(view), name


def _direction(frame: QueryFrame, metric: str, direction: str | None) -> str | None:
    if direction is not None:
        if direction not in ("min", "max"):
            raise AnalyticsError(f"direction must be 'min' or 'max', got {direction!r}")
        return direction
    for m in frame.metrics:
        if m.name == metric and m.direction is not None:
            return m.direction
    return dict(frame.view.objectives).get(metric)


def _need_direction(frame: QueryFrame, metric: str, direction: str | None, what: str) -> str:
    d = _direction(frame, metric, direction)
    if d is None:
        raise QueryError(
            f"{what} needs a direction for {metric!r}: it is not an objective of study "
            f"{frame.study!r}; pass direction 'min' or 'max' (--direction)"
        )
    return d


def _values(
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


def _all_exclusions(frame: QueryFrame, extra: Sequence[Exclusion]) -> list[Exclusion]:
    return sorted([*frame.exclusions, *extra], key=lambda e: (e.case, e.run or ""))


def _labels(cols: Columns, by: str, frame: QueryFrame) -> np.ndarray:
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


def _summary_warnings(groups: Sequence[dict[str, Any]], key: str = "group") -> list[str]:
    return [f"{key} {g[key]}: {w}" for g in groups for w in g.get("warnings", ())]


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


# ----------------------------------------------------------------------------- stats


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
    cfg = _config(config, confidence=confidence, bootstrap=bootstrap, seed=seed, min_n=min_n)
    query, frame, name = _prepare(query, metric, agg=agg, direction=direction)
    rows, x, dropped = _values(frame, name)
    labels = _labels(rows, by, frame)
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
        exclusions=_all_exclusions(frame, dropped),
        settings=_settings(cfg, "confidence", "bootstrap", "seed", "min_n"),
        warnings=_summary_warnings(groups),
        title=f"stats of {what} by {by}",
        display={"": shown},
    )


# -------------------------------------------------------------------------- outliers


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
    cfg = _config(
        config,
        outlier_method=_METHODS.get(method) if method else None,
        outlier_factor=factor,
        outlier_low=low,
        outlier_high=high,
    )
    query, frame, name = _prepare(query, metric, agg=agg, direction=direction)
    rows, x, dropped = _values(frame, name, drop_nan=False)
    m = cfg.outlier_method
    labels = _labels(rows, by, frame) if by is not None else None
    if m == "iqr":
        res = _outliers.iqr(x, factor=cfg.factor, metric=name, labels=labels)
    elif m == "zscore":
        res = _outliers.zscore(x, threshold=cfg.factor, metric=name, labels=labels)
    elif m == "modified-z":
        res = _outliers.modified_z(x, threshold=cfg.factor, metric=name, labels=labels)
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
        exclusions=_all_exclusions(frame, dropped),
        settings={**params, "config": cfg.source},
        warnings=res.warnings,
        title=f"outliers of {name} ({m}{', by ' + by if by else ''}): "
        f"{len(found)} flagged, {res.kept_count} kept",
        display={"": ["case", "run", "value", "reason"]},
    )


# --------------------------------------------------------------------------- compare


def _case_values(rows: Columns, x: np.ndarray, case: str) -> tuple[np.ndarray, np.ndarray]:
    sel = rows["case"] == case
    return x[sel], np.flatnonzero(sel)


def _check_case(frame: QueryFrame, case: str) -> None:
    if case not in frame.view.dag.nodes:
        known = sorted(frame.view.dag.nodes)
        shown = ", ".join(known[:12]) + (f", ... ({len(known)} in all)" if len(known) > 12 else "")
        raise QueryError(
            f"study {frame.study!r} has no case {case!r} at seq {frame.as_of} (cases: {shown})"
        )
    if case not in frame.cases:
        raise QueryError(f"case {case!r} is not selected by the query {frame.query!r}")


def _expand_cases(frame: QueryFrame, items: Sequence[str]) -> list[str]:
    out: list[str] = []
    for item in items:
        if any(ch in item for ch in "*?["):
            hits = [c for c in frame.cases if fnmatch.fnmatchcase(c, item)]
            if not hits:
                raise QueryError(f"no selected case matches {item!r}")
            out.extend(hits)
        else:
            _check_case(frame, item)
            out.append(item)
    return list(dict.fromkeys(out))


def compare(
    query: Query,
    *,
    a: str | None = None,
    b: str | None = None,
    cases: Sequence[str] | None = None,
    test: str = "welch",
    paired: bool = False,
    metric: str | None = None,
    confidence: float | None = None,
    config: AnalyticsConfig | None = None,
) -> AnalyticsResult:
    """Case ``a`` against case ``b`` (Welch, Student or Mann-Whitney; ``paired`` pairs
    runs by seed: paired t or Wilcoxon signed-rank), or every pair of ``cases`` (ids or
    globs) with Holm's correction.

    JSON (a/b): ``{"test", "statistic", "p_value", "df", "effect_size", "n_a", "n_b",
    "mean_a", "mean_b", "a", "b", ...}``; (cases): ``{"pairs": [{"a", "b", "statistic",
    "p_value", "p_adjusted", ...}], "test", ...}``.
    """
    if test not in TESTS:
        raise AnalyticsError(f"unknown test {test!r}; use one of {', '.join(TESTS)}")
    if cases is not None and (a is not None or b is not None):
        raise AnalyticsError("give either two cases (a and b) or a list of cases, not both")
    if cases is None and (a is None or b is None):
        raise AnalyticsError("name the two cases to compare (a and b), or a list of cases")
    cfg = _config(config, confidence=confidence)
    query, frame, name = _prepare(query, metric)
    if frame.per_case:
        raise QueryError("compare tests runs against runs: drop the agg from the query's metric")
    rows, x, dropped = _values(frame, name)
    exclusions = _all_exclusions(frame, dropped)
    if cases is not None:
        if paired:
            raise AnalyticsError("paired tests compare two cases; drop paired or pass a and b")
        return _pairwise(query, frame, rows, x, name, cases, test, cfg, exclusions)
    assert a is not None and b is not None
    _check_case(frame, a)
    _check_case(frame, b)
    xa, ia = _case_values(rows, x, a)
    xb, ib = _case_values(rows, x, b)
    extra: dict[str, Any] = {}
    if paired:
        pairing = _compare.pair_by_seed(rows["seed"][ia], xa, rows["seed"][ib], xb)
        if test == "mannwhitney":
            res = _compare.wilcoxon(pairing.a, pairing.b)
        else:
            res = _compare.paired_t(pairing.a, pairing.b, confidence=cfg.confidence)
        extra = {
            "paired_by": "seed",
            "seeds": pairing.seeds.tolist(),
            "unpaired_a": pairing.unpaired_a,
            "unpaired_b": pairing.unpaired_b,
        }
    elif test == "welch":
        res = _compare.welch(xa, xb, confidence=cfg.confidence)
    elif test == "student":
        res = _compare.student(xa, xb, confidence=cfg.confidence)
    else:
        res = _compare.mannwhitney(xa, xb)
    d = res.to_dict()
    d.update({"a": a, "b": b, "metric": name, "paired": paired, **extra})
    warns = list(res.warnings)
    if paired and (extra["unpaired_a"] or extra["unpaired_b"]):
        warns.append(
            f"runs without a partner of the same seed left out: {extra['unpaired_a']} of "
            f"{a}, {extra['unpaired_b']} of {b}"
        )
    keys = [
        "a", "b", "test", "method", "n_a", "n_b", "mean_a", "mean_b", "estimate",
        "ci_low", "ci_high", "statistic", "df", "p_value", "effect_size", "effect_name",
    ]  # fmt: skip
    types = {k: "float" for k in keys}
    types.update({k: "str" for k in ("a", "b", "test", "method", "effect_name")})
    types.update({"n_a": "int", "n_b": "int"})
    return AnalyticsResult(
        kind="compare",
        study=frame.study,
        as_of=frame.as_of,
        query=query,
        rows=rows.take(np.concatenate([ia, ib])),
        table=Columns.from_rows([d], types),
        data=d,
        exclusions=[e for e in exclusions if e.case in (a, b)],
        settings=_settings(cfg, "confidence"),
        warnings=warns,
        title=f"{res.test} test of {name}: {a} vs {b}",
        display={
            "": [
                "a",
                "b",
                "n_a",
                "n_b",
                "mean_a",
                "mean_b",
                "statistic",
                "df",
                "p_value",
                "effect_size",
            ]
        },  # fmt: skip
    )


def _pairwise(
    query: Query,
    frame: QueryFrame,
    rows: Columns,
    x: np.ndarray,
    name: str,
    cases: Sequence[str],
    test: str,
    cfg: AnalyticsConfig,
    exclusions: list[Exclusion],
) -> AnalyticsResult:
    chosen = _expand_cases(frame, cases)
    if len(chosen) < 2:
        raise AnalyticsError(f"pairwise comparison needs at least 2 cases, got {chosen}")
    wanted = set(chosen)
    sel = np.fromiter((c in wanted for c in rows["case"].tolist()), bool, len(rows))
    split = _stats.split_groups(x[sel], rows["case"][sel])
    groups = {c: split.get(c, np.empty(0)) for c in chosen}
    res = _compare.pairwise(groups, test=test)
    # PairRow fields are builtins already (NaN was made None): a shallow copy suffices
    pairs = [msgspec.structs.asdict(p) for p in res.pairs]
    table = Columns.from_rows(
        pairs,
        {
            "a": "str",
            "b": "str",
            "n_a": "int",
            "n_b": "int",
            "mean_a": "float",
            "mean_b": "float",
            "statistic": "float",
            "df": "float",
            "p_value": "float",
            "p_adjusted": "float",
            "effect_size": "float",
            "method": "str",
        },
    )
    return AnalyticsResult(
        kind="compare",
        study=frame.study,
        as_of=frame.as_of,
        query=query,
        rows=rows.take(np.flatnonzero(sel)),
        table=table,
        data={
            "metric": name,
            "test": test,
            "adjustment": res.adjustment,
            "effect_name": res.effect_name,
            "groups": list(res.groups),
            "pairs": pairs,
        },
        exclusions=[e for e in exclusions if e.case in wanted],
        settings=_settings(cfg, "confidence"),
        warnings=res.warnings,
        title=f"pairwise {test} tests of {name} over {len(chosen)} cases (Holm-adjusted)",
        display={
            "": [
                "a",
                "b",
                "n_a",
                "n_b",
                "mean_a",
                "mean_b",
                "statistic",
                "p_value",
                "p_adjusted",
                "effect_size",
            ]
        },  # fmt: skip
    )


# --------------------------------------------------------------------------- rank_ci


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
    cfg = _config(config, confidence=confidence)
    query, frame, name = _prepare(query, metric)
    if frame.per_case:
        raise QueryError("rank_ci ranks cases by their runs: drop the agg from the query's metric")
    d = _need_direction(frame, name, direction, "a ranking")
    rows, x, dropped = _values(frame, name)
    exclusions = _all_exclusions(frame, dropped)
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
        settings=_settings(cfg, "confidence"),
        title=f"cases ranked by mean {name} ({d}), {cfg.confidence:g} intervals",
        display={"": list(table.names), "unranked": ["case", "reason"]},
    )


# ----------------------------------------------------------------------- eco_effects


def _effect_groups(
    delta: np.ndarray,
    direction: str | None,
    labels: np.ndarray,
    label: str,
    cfg: AnalyticsConfig,
) -> list[dict[str, Any]]:
    improvement = None if direction is None else (delta if direction == "max" else -delta)
    res = _stats.grouped(
        delta,
        labels,
        confidence=cfg.confidence,
        percentiles=(),
        bootstrap=cfg.bootstrap or None,
        seed=cfg.seed,
        min_n=cfg.min_n,
    )
    names, codes = _stats.group_codes(labels)
    out = []
    for gi, s in enumerate(res.groups):
        d = s.to_dict()
        row: dict[str, Any] = {label: names[gi]}
        for k in ("count", "mean", "median", "std", "min", "max", "ci_low", "ci_high"):
            row[k] = d[k]
        if cfg.bootstrap:
            row["boot_low"], row["boot_high"] = d["boot_low"], d["boot_high"]
        if improvement is not None:
            imp = improvement[codes == gi]
            row["helped"] = int((imp > 0).sum())
            row["hurt"] = int((imp < 0).sum())
            row["unchanged"] = int((imp == 0).sum())
            row["mean_improvement"] = float(imp.mean()) if imp.size else None
            row["verdict"] = _verdict(row["ci_low"], row["ci_high"], direction)
        else:
            row.update(helped=None, hurt=None, unchanged=None, mean_improvement=None, verdict=None)
        row["warnings"] = list(d["warnings"])
        out.append(row)
    if improvement is not None:
        out.sort(
            key=lambda r: (
                r["mean_improvement"] is None,
                -(r["mean_improvement"] or 0.0),
            )
        )
    return out


def _verdict(lo: float | None, hi: float | None, direction: str) -> str:
    """``helps`` / ``hurts`` when the interval of the mean delta lies wholly on the
    better / worse side of 0 (better: above for max, below for min); ``unclear`` when
    it holds 0; ``too few`` without an interval (one edge)."""
    if lo is None or hi is None:
        return "too few"
    if lo > 0:
        return "helps" if direction == "max" else "hurts"
    if hi < 0:
        return "hurts" if direction == "max" else "helps"
    return "unclear"


def eco_effects(
    query: Query,
    *,
    metric: str | None = None,
    agg: str = "mean",
    direction: str | None = None,
    confidence: float | None = None,
    bootstrap: int | None = None,
    seed: int | None = None,
    min_n: int | None = None,
    config: AnalyticsConfig | None = None,
) -> AnalyticsResult:
    """What each ECO brought: for every case created by an ECO (``eco_applied``) among
    the query's cases, its score minus its parent's score (score: ``agg`` of the final
    values of the case's runs that pass the run filters), aggregated by ECO and by ECO
    class with t (and optionally bootstrap) intervals of the mean delta.

    ``improvement`` is the delta made "higher is better" by the metric's direction (the
    objective's, or ``direction``); ``verdict`` is ``helps`` / ``hurts`` when the
    interval excludes 0, else ``unclear`` (``too few`` for one edge). Case filters pick
    the children; parents are scored whatever the case filters say.

    JSON: ``{"edges": [{"parent", "child", "eco", "eco_class", "stage", "parent_score",
    "child_score", "delta", "improvement"}], "by_eco": [...], "by_eco_class": [...],
    "metric", "agg", "direction", ...}``.
    """
    cfg = _config(config, confidence=confidence, bootstrap=bootstrap, seed=seed, min_n=min_n)
    if query.spec.statuses is None:
        query = query.runs(status="completed")
    view = query.load()
    query = query.study(view.study)
    name = _pick_metric(query, metric, view)
    if agg not in ("mean", "median", "best", "last"):
        raise AnalyticsError(f"unknown aggregate {agg!r}; use one of mean, median, best, last")
    query = query._replace(metrics=(MetricSpec(name, agg, direction),))
    frame = query.collect(view)
    d = _direction(frame, name, direction)
    spec = query.spec
    everything = Query(
        query.ledger,
        QuerySpec(
            study=frame.study,
            statuses=spec.statuses,
            hosts=spec.hosts,
            metrics=(MetricSpec(name, agg, direction),),
            as_of=spec.as_of,
        ),
    ).collect(view)
    cols = everything.columns
    col = everything.metric_columns[name]
    score = dict(zip(cols["case"].tolist(), cols.pylist(col)))
    no_run = {e.case: e.reason for e in everything.exclusions if e.run is None}

    def why_not(case: str) -> str | None:
        if case in no_run:
            return no_run[case]
        if case not in score or score[case] is None:
            return f"no run with a final {name}"
        if math.isnan(score[case]):
            return f"{agg} of {name} is NaN"
        return None

    dag = view.dag
    edges: list[dict[str, Any]] = []
    dropped: list[Exclusion] = []
    involved: set[str] = set()
    for child in frame.cases:
        node = dag.nodes[child]
        if node.eco is None or not node.parents:
            continue
        parent = node.parents[0]
        involved.update((child, parent))
        problem = why_not(child)
        side = "child"
        if problem is None:
            problem, side = why_not(parent), f"parent {parent}"
        if problem is not None:
            dropped.append(
                Exclusion(child, None, f"edge {parent} -> {child} ({node.eco}): {side}: {problem}")
            )
            continue
        delta = score[child] - score[parent]
        edges.append(
            {
                "parent": parent,
                "child": child,
                "eco": node.eco,
                "eco_class": node.eco_class,
                "stage": node.stage,
                "parent_score": score[parent],
                "child_score": score[child],
                "delta": delta,
                "improvement": None if d is None else (delta if d == "max" else -delta),
            }
        )
    delta = np.array([e["delta"] for e in edges], np.float64)
    ecos = np.empty(len(edges), dtype=object)
    ecos[:] = [e["eco"] for e in edges]
    classes = np.empty(len(edges), dtype=object)
    classes[:] = [e["eco_class"] for e in edges]
    by_eco = _effect_groups(delta, d, ecos, "eco", cfg)
    by_class = _effect_groups(delta, d, classes, "eco_class", cfg)
    run_level = [e for e in everything.exclusions if e.run is not None and e.case in involved]
    exclusions = sorted([*run_level, *dropped], key=lambda e: (e.case, e.run or ""))
    group_types = {
        "count": "int",
        "mean": "float",
        "median": "float",
        "std": "float",
        "min": "float",
        "max": "float",
        "ci_low": "float",
        "ci_high": "float",
        "helped": "int",
        "hurt": "int",
        "unchanged": "int",
        "mean_improvement": "float",
        "verdict": "str",
    }
    if cfg.bootstrap:
        group_types.update(boot_low="float", boot_high="float")

    def table(rows: list[dict[str, Any]], label: str) -> Columns:
        flat = [{**r, "warnings": "; ".join(r["warnings"])} for r in rows]
        return Columns.from_rows(flat, {label: "str", **group_types, "warnings": "str"})

    edge_cols = Columns.from_rows(
        edges,
        {
            "parent": "str",
            "child": "str",
            "eco": "str",
            "eco_class": "str",
            "stage": "int",
            "parent_score": "float",
            "child_score": "float",
            "delta": "float",
            "improvement": "float",
        },
    )
    shown = ["count", "mean", "ci_low", "ci_high", "helped", "hurt", "verdict"]
    warns = _summary_warnings(by_eco, "eco")
    if d is None:
        warns.append(
            f"{name} is not an objective and no direction was given: deltas only, no "
            "verdict on which ECOs help"
        )
    rows_used = cols.take(
        np.fromiter((c in involved for c in cols["case"].tolist()), bool, len(cols))
    )
    return AnalyticsResult(
        kind="eco_effects",
        study=frame.study,
        as_of=frame.as_of,
        query=query,
        rows=rows_used,
        table=table(by_eco, "eco"),
        extras={"by_eco_class": table(by_class, "eco_class"), "edges": edge_cols},
        data={
            "metric": name,
            "agg": agg,
            "direction": d,
            "confidence": cfg.confidence,
            "edges": edges,
            "by_eco": by_eco,
            "by_eco_class": by_class,
        },
        exclusions=exclusions,
        settings=_settings(cfg, "confidence", "bootstrap", "seed", "min_n"),
        warnings=warns,
        title=f"ECO effects on {agg} {name} (child minus parent, {len(edges)} edges)",
        display={
            "": ["eco", *shown],
            "by_eco_class": ["eco_class", *shown],
        },
    )


# -------------------------------------------------------------------------- failures


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
    cfg = _config(config, confidence=confidence)
    view = query.load()
    query = query.study(view.study)
    frame = query.collect(view)
    if frame.per_case:
        raise QueryError("failure analysis counts runs: drop the agg from the query's metric")
    fails = tuple(dict.fromkeys(failure_statuses))
    bad = [s for s in fails if s not in ("failed", "timeout", "interrupted", "pruned", "cancelled")]
    if bad:
        raise AnalyticsError(
            f"{bad[0]!r} is not a finished status that can count as a failure; use "
            "failed, timeout, interrupted, pruned or cancelled"
        )
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
    rows = cols.take(np.flatnonzero(counted))
    failed = np.fromiter((s in fails for s in rows["status"].tolist()), bool, len(rows))
    labels = _labels(rows, by, frame)
    rates = _failures.failure_rates(labels, failed, confidence=cfg.confidence)
    groups = [g.to_dict() for g in rates.groups]

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
    assoc = (
        _failures.association(candidates, failed, confidence=cfg.confidence) if len(rows) else None
    )
    associations = [a.to_dict() for a in assoc.params] if assoc is not None else []

    seqs = np.array(rows["finished_seq"].tolist(), dtype=np.int64)
    bursts = _failures.bursts(seqs, failed, window=window, alpha=alpha)
    messages = rows["error"][failed]
    errors = []
    failed_runs = rows["run"][failed]
    for e in _failures.top_errors(messages, k=top):
        d = e.to_dict()
        d["example_run"] = failed_runs[e.first_index]
        del d["first_index"]
        errors.append(d)

    warns = [*bursts.warnings]
    for a in associations:
        warns.extend(f"{a['param']}: {w}" for w in a["warnings"])
    rate_types = {
        "group": "any",
        "n": "int",
        "failed": "int",
        "rate": "float",
        "ci_low": "float",
        "ci_high": "float",
    }
    assoc_types = {
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
    burst_rows = [b.to_dict() for b in bursts.bursts]
    return AnalyticsResult(
        kind="failures",
        study=frame.study,
        as_of=frame.as_of,
        query=query,
        rows=rows.with_column("failed", failed),
        table=Columns.from_rows(groups, rate_types),
        extras={
            "association": Columns.from_rows(associations, assoc_types),
            "bursts": Columns.from_rows(
                burst_rows,
                {
                    "start": "int",
                    "end": "int",
                    "n": "int",
                    "failed": "int",
                    "rate": "float",
                    "ratio": "float",
                    "p_value": "float",
                },
            ),  # fmt: skip
            "top_errors": Columns.from_rows(
                errors,
                {
                    "pattern": "str",
                    "count": "int",
                    "share": "float",
                    "example": "str",
                    "example_run": "str",
                },
            ),  # fmt: skip
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
        exclusions=_all_exclusions(frame, extra),
        settings=_settings(cfg, "confidence"),
        warnings=warns,
        title=(
            f"failures by {by}: {rates.overall.failed} of {rates.overall.n} runs "
            f"({', '.join(fails)})"
        ),
        display={
            "": ["group", "n", "failed", "rate", "ci_low", "ci_high"],
            "association": ["param", "kind", "test", "p_value", "strength", "strength_name"],
            "bursts": ["start", "end", "n", "failed", "rate", "ratio", "p_value"],
            "top_errors": ["count", "share", "pattern", "example_run"],
        },
    )


# ---------------------------------------------------------------------------- curves


def curves(
    query: Query,
    *,
    metric: str | None = None,
    direction: str | None = None,
    window: int = 10,
    min_delta: float = 0.0,
    tolerance: float = 0.01,
    band: str = "std",
    align: str = "exact",
    confidence: float | None = None,
    series: bool = False,
    config: AnalyticsConfig | None = None,
) -> AnalyticsResult:
    """Training curves of a stepped metric: per run the best so far, its plateau step
    (no improvement beyond ``min_delta`` over the next ``window`` steps) and
    convergence step; per case the mean curve across its runs with a band (``std``:
    mean ± sd; ``ci``: the t interval of the mean).

    JSON: ``{"runs": [{"run", "case", "points", "final", "best", "best_step",
    "plateau_step", "convergence_step", ...}], "cases": [{"case", "runs", "steps",
    "mean", "std", "low", "high", "count", ...}], ...}``; with ``series`` also
    ``"series": [{"run", "steps", "values", "best"}]`` and the ``series`` table (run,
    case, step, value, best so far).
    """
    cfg = _config(config, confidence=confidence)
    query, frame, name = _prepare(query, metric, default_status=None)
    if frame.per_case:
        raise QueryError("curves are per run: drop the agg from the query's metric")
    d = _need_direction(frame, name, direction, "best-so-far")
    cols = frame.columns
    run_ids = cols["run"].tolist()
    codes, steps, values = _stepped(frame, name, run_ids)
    has = np.zeros(len(run_ids), bool)
    has[codes] = True
    extra = [
        Exclusion(c, r, f"no stepped values of {name}")
        for c, r, ok in zip(cols["case"].tolist(), run_ids, has.tolist())
        if not ok
    ]
    rc = _curves.run_curves(
        codes, steps, values, direction=d, window=window, min_delta=min_delta, tolerance=tolerance
    )
    case_of = cols["case"]
    runs = []
    for r in rc.runs:
        row = r.to_dict()
        p = row.pop("run")
        runs.append({"run": run_ids[p], "case": case_of[p], **row})

    # One mean_curve call for every case: each case's steps (ranked, so no overflow)
    # are moved into a block of their own, so cases never share a step.
    cases_json: list[dict[str, Any]] = []
    curve_parts: list[dict[str, np.ndarray]] = []
    if len(codes):
        case_names, case_code = _stats.group_codes(case_of)
        ustep, rank = np.unique(steps, return_inverse=True)
        width = len(ustep)
        mc = _curves.mean_curve(
            codes,
            case_code[codes].astype(np.int64) * width + rank.ravel(),
            values,
            band=band,
            confidence=cfg.confidence,
            align=align,
        )
        block = mc.steps // width
        step_of = ustep[mc.steps % width]
        cuts = np.flatnonzero(np.diff(block)) + 1
        plateaus: dict[str, list[int | None]] = {}
        for r in runs:
            plateaus.setdefault(r["case"], []).append(r["plateau_step"])
        for lo, hi in zip(
            np.concatenate([[0], cuts]).tolist(), np.concatenate([cuts, [len(block)]]).tolist()
        ):
            case = case_names[int(block[lo])]
            known = [p for p in plateaus[case] if p is not None]
            last = hi - 1
            cases_json.append(
                {
                    "case": case,
                    "runs": len(plateaus[case]),
                    "final_step": int(step_of[last]),
                    "final_mean": _num(mc.mean[last]),
                    "final_low": _num(mc.low[last]),
                    "final_high": _num(mc.high[last]),
                    "plateau_median": float(np.median(known)) if known else None,
                    "plateaued": len(known),
                    "steps": step_of[lo:hi].tolist(),
                    "mean": _list(mc.mean[lo:hi]),
                    "std": _list(mc.std[lo:hi]),
                    "low": _list(mc.low[lo:hi]),
                    "high": _list(mc.high[lo:hi]),
                    "count": mc.count[lo:hi].tolist(),
                }
            )
        curve_parts.append(
            {
                "case": np.asarray(case_names, dtype=object)[block],
                "step": step_of.astype(np.int64),
                "mean": mc.mean,
                "std": mc.std,
                "low": mc.low,
                "high": mc.high,
                "count": mc.count,
            }
        )
    mean_cols = Columns(
        {
            k: (np.concatenate([p[k] for p in curve_parts]) if curve_parts else np.empty(0, dt))
            for k, dt in (
                ("case", object),
                ("step", np.int64),
                ("mean", float),
                ("std", float),
                ("low", float),
                ("high", float),
                ("count", np.int64),
            )
        },  # fmt: skip
        types={"case": "str"},
    )
    extras: dict[str, Columns] = {}
    if series:
        best = _curves.best_so_far(codes, steps, values, direction=d) if len(codes) else np.empty(0)
        order = np.lexsort((steps, codes))
        extras["series"] = Columns(
            {
                "run": cols["run"][codes[order]],
                "case": case_of[codes[order]],
                "step": steps[order],
                "value": values[order],
                "best": best[order],
            },
            types={"run": "str", "case": "str"},
        )
    data: dict[str, Any] = {
        "metric": name,
        "direction": d,
        "window": rc.window,
        "min_delta": rc.min_delta,
        "tolerance": rc.tolerance,
        "band": band,
        "align": align,
        "runs": runs,
        "cases": cases_json,
    }
    if series:
        data["series"] = _series_json(extras["series"])
    run_types = {
        "run": "str",
        "case": "str",
        "points": "int",
        "nan_values": "int",
        "first_step": "int",
        "last_step": "int",
        "final": "float",
        "best": "float",
        "best_step": "int",
        "plateau_step": "int",
        "convergence_step": "int",
    }
    case_types = {
        "case": "str",
        "runs": "int",
        "final_step": "int",
        "final_mean": "float",
        "final_low": "float",
        "final_high": "float",
        "plateau_median": "float",
        "plateaued": "int",
    }
    return AnalyticsResult(
        kind="curves",
        study=frame.study,
        as_of=frame.as_of,
        query=query,
        rows=cols.take(np.flatnonzero(has)),
        table=Columns.from_rows(runs, run_types),
        extras={
            "cases": Columns.from_rows(cases_json, case_types),
            "mean_curves": mean_cols,
            **extras,
        },
        data=data,
        exclusions=_all_exclusions(frame, extra),
        settings={
            "band": band,
            "align": align,
            "confidence": cfg.confidence if band == "ci" else None,
        },
        title=f"curves of {name} ({d}): {len(runs)} runs, window {rc.window}, min_delta {rc.min_delta:g}",
        display={
            "": [
                "case",
                "run",
                "points",
                "last_step",
                "final",
                "best",
                "best_step",
                "plateau_step",
                "convergence_step",
            ],
            "cases": [
                "case",
                "runs",
                "final_step",
                "final_mean",
                "final_low",
                "final_high",
                "plateau_median",
            ],
        },  # fmt: skip
    )


def _stepped(
    frame: QueryFrame, metric: str, run_ids: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The stepped values in force of ``metric`` for the frame's runs: (position of the
    run in ``run_ids``, step, value), sorted by (position, step).

    An adapter over the metrics projection's public columns: only this metric's rows
    are resolved (a later value of the same run and step supersedes an earlier one),
    not every metric of the study as ``long_table`` would.
    """
    view = frame.view
    names = view.final_table().metrics  # every metric name, in index order
    cols = view.metrics.stepped.arrays()
    mi = names.index(metric) if metric in names else -1
    sel = np.flatnonzero(cols["metric"] == mi) if mi >= 0 else np.empty(0, np.int64)
    if not len(sel):
        present = np.unique(cols["metric"]).tolist()
        stepped = sorted(names[i] for i in present if i < len(names))
        raise QueryError(
            f"metric {metric!r} of study {frame.study!r} has no stepped values (only final "
            f"results) at seq {frame.as_of}; stepped metrics: {', '.join(stepped) or 'none'}"
        )
    keys = view.metrics.run_keys()
    pos_of = np.full(len(keys), -1, np.int64)
    where = {run: i for i, (study, run) in enumerate(keys) if study == frame.study}
    for p, r in enumerate(run_ids):
        gi = where.get(r)
        if gi is not None:
            pos_of[gi] = p
    pos = pos_of[cols["run"][sel]]
    sel, pos = sel[pos >= 0], pos[pos >= 0]
    step, seq = cols["step"][sel], cols["seq"][sel]
    order = np.lexsort((seq, step, pos))
    p, st = pos[order], step[order]
    last = np.ones(len(order), bool)  # the highest seq of each (run, step) is in force
    last[:-1] = (p[1:] != p[:-1]) | (st[1:] != st[:-1])
    keep = order[last]
    return pos[keep], step[keep].astype(np.int64), cols["value"][sel][keep].astype(np.float64)


def _num(x: float) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def _list(a: np.ndarray) -> list[Any]:
    """``a.tolist()`` with None for NaN (the analytics' spelling of "undefined")."""
    out = a.tolist()
    for i in np.flatnonzero(np.isnan(a)).tolist():
        out[i] = None
    return out


def _series_json(cols: Columns) -> list[dict[str, Any]]:
    runs = cols["run"]
    if not len(runs):
        return []
    change = np.flatnonzero(runs[1:] != runs[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(runs)]])
    out = []
    for s, e in zip(starts.tolist(), ends.tolist()):
        out.append(
            {
                "run": runs[s],
                "case": cols["case"][s],
                "steps": cols["step"][s:e].tolist(),
                "values": cols["value"][s:e].tolist(),
                "best": [None if v != v else v for v in cols["best"][s:e].tolist()],
            }
        )
    return out
