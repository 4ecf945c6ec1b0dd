"""Curves of stepped metrics, per run, grouped by case, with the best so far.

Which curves: the stepped metrics (objectives first, then the others by name, at most
``curve_metrics``) of the best-ranked cases (at most ``curve_cases``; by case id when
the study has no objectives), one panel per case, one line per run (invalidated runs
left out). Each metric's panels share their scales, so panels compare at a glance; the
y axis is logarithmic when every value is positive and they span two decades or more.

Only the values in force are drawn (a corrected step replaces the earlier value), read
from the metrics projection's columns in one pass for all the chosen runs. Each line is
downsampled with M4 (``downsample.m4``), which keeps every bucket's extremes. The best
so far (``analytics.curves.best_so_far``, ignoring NaN) is drawn dashed for metrics
whose direction is known (the objectives); a non-finite value cannot be drawn and is
counted under the panel.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from projections.analytics.curves import best_so_far
from projections.metrics import in_force_rows

from .chart import Box, frame
from .context import Context
from .downsample import m4
from .svg import LinearScale, colour, dash, make_scale, polyline

W, H = 330.0, 190.0
BOX = Box(52.0, 10.0, W - 10.0, H - 40.0)


def _stepped_rows(ctx: Context) -> tuple[dict[str, Any], np.ndarray, dict[tuple[str, str], int]]:
    metrics = ctx.view.metrics
    cols = metrics.stepped.arrays()
    keys = metrics.run_keys()
    index = {k: i for i, k in enumerate(keys)}
    mine = np.fromiter((s == ctx.study for s, _ in keys), bool, len(keys))
    sel = mine[cols["run"]] if len(cols["run"]) else np.zeros(0, bool)
    return cols, sel, index


def _chosen_metrics(ctx: Context, names: list[str], present: set[int]) -> list[str]:
    objectives = [m for m, _ in ctx.objectives]
    have = [n for i, n in enumerate(names) if i in present]
    ordered = [m for m in objectives if m in have] + sorted(m for m in have if m not in objectives)
    return ordered[: ctx.options.curve_metrics]


def build(ctx: Context) -> dict[str, Any]:
    cols, sel, index = _stepped_rows(ctx)
    names = ctx.view.final_table().metrics
    present = set(np.unique(cols["metric"][sel]).tolist()) if sel.any() else set()
    if not present:
        return {
            "empty": "No run of the study recorded a stepped metric (a value with a step), "
            "so there are no curves to draw."
        }
    chosen = _chosen_metrics(ctx, names, present)
    metric_idx = {names.index(m): m for m in chosen}
    with_steps = set(np.unique(cols["run"][sel]).tolist())
    runs_of: dict[str, list[tuple[str, int]]] = {}
    for case in ctx.ranked_cases():
        runs = [
            (r.run, index[(ctx.study, r.run)])
            for r in ctx.view.runs.of_case(case)
            if r.invalidated is None and index.get((ctx.study, r.run)) in with_steps
        ]
        if runs:
            runs_of[case] = runs
        if len(runs_of) >= ctx.options.curve_cases:
            break
    run_idx = np.array([i for runs in runs_of.values() for _, i in runs], np.int64)
    rows = np.flatnonzero(
        sel & np.isin(cols["run"], run_idx) & np.isin(cols["metric"], list(metric_idx))
    )
    r, m, s, v, q = (cols[c][rows] for c in ("run", "metric", "step", "value", "seq"))
    keep = in_force_rows(r, m, s, q)
    r, m, s, v = r[keep], m[keep], s[keep].astype(np.int64), v[keep].astype(np.float64)
    series: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    cuts = np.flatnonzero((np.diff(r) != 0) | (np.diff(m) != 0)) + 1
    for lo, hi in zip([0, *cuts.tolist()], [*cuts.tolist(), len(r)]):
        if hi > lo:
            series[(int(r[lo]), int(m[lo]))] = (s[lo:hi], v[lo:hi])
    total_cases = len(ctx.view.dag.nodes)
    return {
        "empty": None,
        "metrics": [
            _metric(ctx, mi, name, runs_of, series)
            for mi, name in sorted(metric_idx.items(), key=lambda t: chosen.index(t[1]))
        ],
        "shown": len(runs_of),
        "total": total_cases,
        "others": sorted(n for i, n in enumerate(names) if i in present and n not in chosen),
    }


def _metric(
    ctx: Context,
    mi: int,
    name: str,
    runs_of: dict[str, list[tuple[str, int]]],
    series: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]],
) -> dict[str, Any]:
    direction = dict(ctx.objectives).get(name)
    mine = {k: v for k, v in series.items() if k[1] == mi}
    if not mine:
        return {"name": name, "empty": f"None of the runs shown recorded {name} with steps."}
    all_s = np.concatenate([s for s, _ in mine.values()])
    all_v = np.concatenate([v for _, v in mine.values()])
    xs = LinearScale(0.0, float(max(all_s.max(), 1)), BOX.left, BOX.right)
    ys = make_scale(all_v, BOX.bottom, BOX.top)
    buckets = ctx.options.buckets
    panels = []
    for case, runs in runs_of.items():
        lines = []
        for k, (run, ri) in enumerate(runs):
            got = mine.get((ri, mi))
            if got is None:
                continue
            steps, values = got
            d = m4(steps, values, buckets)
            line: dict[str, Any] = {
                "run": run,
                "colour": colour(k),
                "dash": dash(k),
                "d": polyline(xs.px_array(d.steps.astype(np.float64)), ys.px_array(d.values)),
                "best": "",
                "points": d.total,
                "nonfinite": d.nonfinite,
            }
            if direction is not None:
                best = best_so_far(
                    np.zeros(len(steps), np.int64), steps, values, direction=direction
                )
                b = m4(steps, best, buckets)
                line["best"] = polyline(
                    xs.px_array(b.steps.astype(np.float64)), ys.px_array(b.values)
                )
            lines.append(line)
        panels.append(
            {
                "case": case,
                "mark": ctx.marks.get(case, "ranked"),
                "frame": frame(BOX, W, H, xs, ys, "step", "", yticks=4, xticks=4),
                "lines": lines,
                "nonfinite": sum(ln["nonfinite"] for ln in lines),
            }
        )
    return {
        "name": name,
        "empty": None,
        "direction": direction,
        "log": ys.log,
        "panels": panels,
    }
