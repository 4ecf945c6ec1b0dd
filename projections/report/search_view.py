"""For searches: the optimisation history and parameter importance.

History: the first objective's final value of each completed run, in the order the
runs started (their ``run_started`` seq), with the best so far
(``analytics.curves.best_so_far``) — how fast the search found what it found.
Importance: ``importance.param_importance`` over the same runs and their cases' params.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from projections.analytics.curves import best_so_far

from .chart import Box, frame
from .context import Context
from .importance import param_importance
from .svg import LinearScale, make_scale, num

W, H = 640.0, 280.0
BOX = Box(64.0, 12.0, W - 16.0, H - 44.0)
BAR_W = 300.0


def _history(ctx: Context) -> tuple[str, str, list[Any], np.ndarray]:
    metric, direction = ctx.objectives[0]
    view = ctx.view
    runs = sorted((r for r in view.runs.runs.values() if r.counts), key=lambda r: r.seq)
    finals = view.finals_by_metric([metric], [r.run for r in runs]).get(metric)
    values = np.full(len(runs), np.nan)
    has = np.zeros(len(runs), bool)
    if finals is not None:
        pos, vals, _ = finals
        values[pos] = vals
        has[pos] = True
    keep = np.flatnonzero(has)
    return metric, direction, [runs[i] for i in keep.tolist()], values[keep]


def build(ctx: Context) -> dict[str, Any]:
    if not ctx.objectives:
        return {
            "empty": "The study declares no objectives: there is no objective whose history "
            "or parameter importance could be shown."
        }
    metric, direction, runs, values = _history(ctx)
    if len(runs) < 2:
        return {
            "empty": f"Fewer than two completed runs have a final {metric}: no history to draw yet."
        }
    n = len(values)
    order = np.arange(n, dtype=np.int64)
    best = best_so_far(np.zeros(n, np.int64), order, values, direction=direction)
    xs = LinearScale(0.0, float(n + 1), BOX.left, BOX.right)
    ys = make_scale(np.concatenate([values, best]), BOX.bottom, BOX.top)
    px = xs.px_array(order.astype(np.float64) + 1)
    py = ys.px_array(values)
    by = ys.px_array(best)
    dots = "".join(
        f"M{num(x)} {num(y)}h0" for x, y in zip(px.tolist(), py.tolist()) if np.isfinite(y)
    )
    # the best so far as a step line, with a vertex only where it changes
    parts: list[str] = []
    prev = None
    for x, y in zip(px.tolist(), by.tolist()):
        if not np.isfinite(y):
            continue
        if prev is None:
            parts.append(f"M{num(x)} {num(y)}")
        elif y != prev:
            parts.append(f"H{num(x)}V{num(y)}")
        prev = y
    if prev is not None:
        parts.append(f"H{num(px[-1])}")
    i_best = int(np.nanargmin(values) if direction == "min" else np.nanargmax(values))
    params = [ctx.view.dag.nodes[r.case].params or {} for r in runs]
    imp = param_importance(params, values)
    top = max((i.share for i in imp), default=0.0)
    bars = [
        {
            "param": i.param,
            "w": num(BAR_W * i.share / top) if top > 0 else "0.0",
            "share": f"{i.share:.3f}",
            "title": f"{i.param} ({i.kind}, {i.groups} groups): ω² {i.omega2:.4f}, "
            f"share {i.share:.3f}",
        }
        for i in imp
    ]
    return {
        "empty": None,
        "metric": metric,
        "direction": direction,
        "frame": frame(
            BOX,
            W,
            H,
            xs,
            ys,
            "completed run, in the order the runs started",
            f"{metric} ({'lower' if direction == 'min' else 'higher'} is better)",
        ),
        "dots": dots,
        "best": "".join(parts),
        "n": n,
        "best_run": runs[i_best].run,
        "best_case": runs[i_best].case,
        "best_value": values[i_best],
        "bars": bars,
        "bar_w": num(BAR_W),
        "importance_empty": None
        if bars
        else "No param varies across these runs' cases: no importance to measure.",
    }
