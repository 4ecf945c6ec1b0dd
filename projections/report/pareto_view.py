"""Objectives against each other, with the Pareto front.

Each case's aggregate of each objective (the ranking's ``agg`` over its completed
runs) is one point; the fronts come from ``projections.rankings.pareto_fronts`` over
every objective at once (front 1 is the non-dominated set). With two objectives the
front is also drawn as the staircase that bounds what can be reached.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np

from projections.text import format_value

from .chart import Box, frame
from .context import Context
from .svg import make_scale, num

W, H = 460.0, 340.0
BOX = Box(64.0, 14.0, W - 16.0, H - 46.0)
MAX_PAIRS = 3


def build(ctx: Context) -> dict[str, Any]:
    if len(ctx.objectives) < 2:
        what = f"one objective ({ctx.objectives[0][0]})" if ctx.objectives else "no objectives"
        return {
            "empty": f"The study declares {what}: there is nothing to set against it, and "
            "no Pareto front."
        }
    ranking = ctx.fronts
    assert ranking is not None
    if not ranking.rows:
        return {"empty": "No case has a usable value of every objective yet."}
    keys = ranking.policy.keys
    scores = np.array([r.score for r in ranking.rows], np.float64)
    fronts = [r.front or 0 for r in ranking.rows]
    cases = [r.case for r in ranking.rows]
    charts = []
    for i, j in list(combinations(range(len(keys)), 2))[:MAX_PAIRS]:
        xs = make_scale(scores[:, i], BOX.left, BOX.right)
        ys = make_scale(scores[:, j], BOX.bottom, BOX.top)
        px, py = xs.px_array(scores[:, i]), ys.px_array(scores[:, j])
        points = []
        for k in np.lexsort((np.array(cases), -np.array(fronts))).tolist():
            points.append(
                {
                    "case": cases[k],
                    "x": num(px[k]),
                    "y": num(py[k]),
                    "front": fronts[k] == 1,
                    "title": f"{cases[k]}\n{keys[i].metric} {format_value(scores[k, i])}\n"
                    f"{keys[j].metric} {format_value(scores[k, j])}\nfront {fronts[k]}",
                }
            )
        stair = ""
        if len(keys) == 2:
            on = [k for k in range(len(cases)) if fronts[k] == 1]
            on.sort(key=lambda k: (scores[k, i], scores[k, j]))
            if len(on) > 1:
                parts = []
                for n, k in enumerate(on):
                    if n:
                        # the staircase: along the worse axis first, then the other
                        parts.append(f"L{num(px[k])} {num(py[on[n - 1]])}")
                    parts.append(("M" if not n else "L") + f"{num(px[k])} {num(py[k])}")
                stair = "".join(parts)
        charts.append(
            {
                "frame": frame(
                    BOX,
                    W,
                    H,
                    xs,
                    ys,
                    f"{keys[i].metric} ({'lower' if keys[i].direction == 'min' else 'higher'}"
                    " is better)",
                    f"{keys[j].metric} ({'lower' if keys[j].direction == 'min' else 'higher'}"
                    " is better)",
                ),
                "points": points,
                "stair": stair,
                "title": f"{keys[i].metric} against {keys[j].metric}",
            }
        )
    on_front = [c for c, f in zip(cases, fronts) if f == 1]
    return {
        "empty": None,
        "charts": charts,
        "front": on_front,
        "count": len(cases),
        "unranked": len(ranking.unranked),
        "several": len(keys) > 2,
    }
