"""``eco_effects`` over a query: what each ECO changed, child case minus parent case.

Unlike the other analyses it scores cases the query's case filters leave out (a
selected child's parent), so beside the query's frame it builds a second one without
the case filters, from the same loaded view.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from . import stats as _stats
from .config import AnalyticsConfig
from .query import Columns, Exclusion, MetricSpec, Query, QueryFrame, QuerySpec
from .report_inputs import (
    direction_of,
    prepare,
    resolve_config,
    settings_of,
    summary_warnings,
)
from .result import AnalyticsResult

if TYPE_CHECKING:
    from projections.study import StudyView


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
            assert direction is not None  # improvement is None without one
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
    view: StudyView | None = None,
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
    "metric", "agg", "direction", ...}``. ``view``: the study already loaded at the
    query's seq (``Query.load``), so a caller holding one does not fold the log again.
    """
    cfg = resolve_config(config, confidence=confidence, bootstrap=bootstrap, seed=seed, min_n=min_n)
    query, frame, name = prepare(query, metric, agg=agg, direction=direction, view=view)
    d = direction_of(frame, name, direction)
    scores = _Scores.of(query, frame, name, agg, direction)
    edges, dropped, involved = _edges(frame, scores, d)
    delta = np.array([e["delta"] for e in edges], np.float64)
    by_eco = _effect_groups(delta, d, _objects([e["eco"] for e in edges]), "eco", cfg)
    by_class = _effect_groups(delta, d, _objects([e["eco_class"] for e in edges]), "eco_class", cfg)
    everything = scores.frame
    run_level = [e for e in everything.exclusions if e.run is not None and e.case in involved]
    exclusions = sorted([*run_level, *dropped], key=lambda e: (e.case, e.run or ""))
    shown = ["count", "mean", "ci_low", "ci_high", "helped", "hurt", "verdict"]
    warns = summary_warnings(by_eco, "eco")
    if d is None:
        warns.append(
            f"{name} is not an objective and no direction was given: deltas only, no "
            "verdict on which ECOs help"
        )
    cols = everything.columns
    rows_used = cols.take(
        np.fromiter((c in involved for c in cols["case"].tolist()), bool, len(cols))
    )
    return AnalyticsResult(
        kind="eco_effects",
        study=frame.study,
        as_of=frame.as_of,
        query=query,
        rows=rows_used,
        table=_group_table(by_eco, "eco", bool(cfg.bootstrap)),
        extras={
            "by_eco_class": _group_table(by_class, "eco_class", bool(cfg.bootstrap)),
            "edges": Columns.from_rows(edges, _EDGE_TYPES),
        },
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
        settings=settings_of(cfg, "confidence", "bootstrap", "seed", "min_n"),
        warnings=warns,
        title=f"ECO effects on {agg} {name} (child minus parent, {len(edges)} edges)",
        display={
            "": ["eco", *shown],
            "by_eco_class": ["eco_class", *shown],
        },
    )


_EDGE_TYPES = {
    "parent": "str",
    "child": "str",
    "eco": "str",
    "eco_class": "str",
    "stage": "int",
    "parent_score": "float",
    "child_score": "float",
    "delta": "float",
    "improvement": "float",
}
_GROUP_TYPES = {
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


def _objects(items: list[Any]) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _group_table(rows: list[dict[str, Any]], label: str, bootstrap: bool) -> Columns:
    types = dict(_GROUP_TYPES)
    if bootstrap:
        types.update(boot_low="float", boot_high="float")
    flat = [{**r, "warnings": "; ".join(r["warnings"])} for r in rows]
    return Columns.from_rows(flat, {label: "str", **types, "warnings": "str"})


class _Scores(NamedTuple):
    """Every case's score, whatever the case filters say (parents need theirs)."""

    frame: QueryFrame  # one row per case of the study
    score: dict[str, Any]
    no_run: dict[str, str]
    metric: str
    agg: str

    @classmethod
    def of(
        cls, query: Query, frame: QueryFrame, name: str, agg: str, direction: str | None
    ) -> _Scores:
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
        ).collect(frame.view)
        cols = everything.columns
        col = everything.metric_columns[name]
        score = dict(zip(cols["case"].tolist(), cols.pylist(col)))
        no_run = {e.case: e.reason for e in everything.exclusions if e.run is None}
        return cls(everything, score, no_run, name, agg)

    def why_not(self, case: str) -> str | None:
        """Why ``case`` has no usable score (None: it has one)."""
        if case in self.no_run:
            return self.no_run[case]
        if case not in self.score or self.score[case] is None:
            return f"no run with a final {self.metric}"
        if math.isnan(self.score[case]):
            return f"{self.agg} of {self.metric} is NaN"
        return None


def _edges(
    frame: QueryFrame, scores: _Scores, d: str | None
) -> tuple[list[dict[str, Any]], list[Exclusion], set[str]]:
    """The ECO edges into the query's cases with both scores, the edges left out (with
    why) and every case involved."""
    dag = frame.view.dag
    edges: list[dict[str, Any]] = []
    dropped: list[Exclusion] = []
    involved: set[str] = set()
    for child in frame.cases:
        node = dag.nodes[child]
        if node.eco is None or not node.parents:
            continue
        parent = node.parents[0]
        involved.update((child, parent))
        problem = scores.why_not(child)
        side = "child"
        if problem is None:
            problem, side = scores.why_not(parent), f"parent {parent}"
        if problem is not None:
            dropped.append(
                Exclusion(child, None, f"edge {parent} -> {child} ({node.eco}): {side}: {problem}")
            )
            continue
        score = scores.score
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
    return edges, dropped, involved
