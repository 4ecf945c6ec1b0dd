"""``curves`` over a query: per-run training curves and per-case mean curves.

It reads the stepped values of one metric straight from the metrics projection's
columns (``_stepped``), rather than every metric's long table, because a curve needs
only the one metric and a study can hold many.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from projections.metrics import in_force_rows
from projections.numbers import float_or_none

from . import curves as _curves
from . import stats as _stats
from .config import AnalyticsConfig
from .query import Columns, Exclusion, Query, QueryError, QueryFrame
from .report_inputs import (
    all_exclusions,
    need_direction,
    prepare,
    resolve_config,
)
from .result import AnalyticsResult


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
    cfg = resolve_config(config, confidence=confidence)
    query, frame, name = prepare(query, metric, default_status=None)
    if frame.per_case:
        raise QueryError("curves are per run: drop the agg from the query's metric")
    d = need_direction(frame, name, direction, "best-so-far")
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
    cases_json, mean_cols = _case_curves(
        codes, steps, values, case_of, runs, band=band, confidence=cfg.confidence, align=align
    )
    extras: dict[str, Columns] = {}
    if series:
        extras["series"] = _series_columns(cols, codes, steps, values, d)
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
    return AnalyticsResult(
        kind="curves",
        study=frame.study,
        as_of=frame.as_of,
        query=query,
        rows=cols.take(np.flatnonzero(has)),
        table=Columns.from_rows(runs, _RUN_TYPES),
        extras={
            "cases": Columns.from_rows(cases_json, _CASE_TYPES),
            "mean_curves": mean_cols,
            **extras,
        },
        data=data,
        exclusions=all_exclusions(frame, extra),
        settings={
            "band": band,
            "align": align,
            "confidence": cfg.confidence if band == "ci" else None,
        },
        title=f"curves of {name} ({d}): {len(runs)} runs, window {rc.window}, min_delta {rc.min_delta:g}",
        display=_DISPLAY,
    )


_RUN_TYPES = {
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
_CASE_TYPES = {
    "case": "str",
    "runs": "int",
    "final_step": "int",
    "final_mean": "float",
    "final_low": "float",
    "final_high": "float",
    "plateau_median": "float",
    "plateaued": "int",
}
_DISPLAY = {
    "": [
        "case", "run", "points", "last_step", "final", "best", "best_step", "plateau_step",
        "convergence_step",
    ],
    "cases": [
        "case", "runs", "final_step", "final_mean", "final_low", "final_high", "plateau_median",
    ],
}  # fmt: skip
_MEAN_COLUMNS = (
    ("case", object),
    ("step", np.int64),
    ("mean", float),
    ("std", float),
    ("low", float),
    ("high", float),
    ("count", np.int64),
)


def _case_curves(
    codes: np.ndarray,
    steps: np.ndarray,
    values: np.ndarray,
    case_of: np.ndarray,
    runs: list[dict[str, Any]],
    *,
    band: str,
    confidence: float,
    align: str,
) -> tuple[list[dict[str, Any]], Columns]:
    """Each case's mean curve across its runs: the JSON rows and the long table.

    One mean_curve call for every case: each case's steps (ranked, so no overflow) are
    moved into a block of their own, so cases never share a step.
    """
    cases_json: list[dict[str, Any]] = []
    parts: list[dict[str, np.ndarray]] = []
    if len(codes):
        case_names, case_code = _stats.group_codes(case_of)
        ustep, rank = np.unique(steps, return_inverse=True)
        width = len(ustep)
        mc = _curves.mean_curve(
            codes,
            case_code[codes].astype(np.int64) * width + rank.ravel(),
            values,
            band=band,
            confidence=confidence,
            align=align,
        )
        block = mc.steps // width
        step_of = ustep[mc.steps % width]
        cuts = np.flatnonzero(np.diff(block)) + 1
        plateaus: dict[str, list[int | None]] = {}
        for r in runs:
            plateaus.setdefault(r["case"], []).append(r["plateau_step"])
        bounds = zip(
            np.concatenate([[0], cuts]).tolist(), np.concatenate([cuts, [len(block)]]).tolist()
        )
        for lo, hi in bounds:
            case = case_names[int(block[lo])]
            cases_json.append(_case_json(case, plateaus[case], mc, step_of, lo, hi))
        parts.append(
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
            k: (np.concatenate([p[k] for p in parts]) if parts else np.empty(0, dt))
            for k, dt in _MEAN_COLUMNS
        },
        types={"case": "str"},
    )
    return cases_json, mean_cols


def _case_json(
    case: str, plateaus: list[int | None], mc: Any, step_of: np.ndarray, lo: int, hi: int
) -> dict[str, Any]:
    """One case's mean curve (rows ``lo:hi`` of the mean curves) as its JSON row."""
    known = [p for p in plateaus if p is not None]
    last = hi - 1
    return {
        "case": case,
        "runs": len(plateaus),
        "final_step": int(step_of[last]),
        "final_mean": float_or_none(mc.mean[last]),
        "final_low": float_or_none(mc.low[last]),
        "final_high": float_or_none(mc.high[last]),
        "plateau_median": float(np.median(known)) if known else None,
        "plateaued": len(known),
        "steps": step_of[lo:hi].tolist(),
        "mean": _list(mc.mean[lo:hi]),
        "std": _list(mc.std[lo:hi]),
        "low": _list(mc.low[lo:hi]),
        "high": _list(mc.high[lo:hi]),
        "count": mc.count[lo:hi].tolist(),
    }


def _series_columns(
    cols: Columns, codes: np.ndarray, steps: np.ndarray, values: np.ndarray, direction: str
) -> Columns:
    """Every run's series with its best so far, sorted by (run, step)."""
    best = (
        _curves.best_so_far(codes, steps, values, direction=direction)
        if len(codes)
        else np.empty(0)
    )
    order = np.lexsort((steps, codes))
    return Columns(
        {
            "run": cols["run"][codes[order]],
            "case": cols["case"][codes[order]],
            "step": steps[order],
            "value": values[order],
            "best": best[order],
        },
        types={"run": "str", "case": "str"},
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
    # the highest seq of each (run, step) is in force
    keep = in_force_rows(pos, np.zeros(len(pos), np.int64), step, seq)
    return pos[keep], step[keep].astype(np.int64), cols["value"][sel][keep].astype(np.float64)


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
