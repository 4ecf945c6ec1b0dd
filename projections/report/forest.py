"""Interval bars (a forest plot): one row per group, a point and its interval.

Shared by the statistics, ECO effects and failure views: each hands over rows of
(label, point, low, high) already computed by the analytics API; this module only
places them. Rows without an interval (one value) show the point alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from .chart import Box, frame
from .svg import LinearScale, make_scale, num

ROW = 22.0
LABEL_W = 190.0
PLOT_W = 380.0
MAX_LABEL = 30


class Bar(NamedTuple):
    label: str
    point: float | None
    low: float | None
    high: float | None
    note: str  # shown right of the row (n, verdict...)
    title: str  # the tooltip
    css: str = ""  # a class (e.g. a verdict) the stylesheet marks with a symbol too


def _f(x: float | None) -> float:
    return float("nan") if x is None else float(x)


def forest(
    bars: Sequence[Bar],
    xlabel: str,
    *,
    zero: bool = False,
    lo: float | None = None,
    hi: float | None = None,
) -> dict[str, Any]:
    """Template data for ``forest_chart``. ``zero`` draws the line at 0 (effects);
    ``lo``/``hi`` fix the axis (rates: 0 to 1)."""
    box = Box(LABEL_W, 8.0, LABEL_W + PLOT_W, 8.0 + ROW * max(len(bars), 1))
    width, height = LABEL_W + PLOT_W + 170.0, box.bottom + 44.0
    vals = np.array(
        [v for b in bars for v in (_f(b.point), _f(b.low), _f(b.high))] + ([0.0] if zero else []),
        np.float64,
    )
    if lo is not None and hi is not None:
        scale: LinearScale = LinearScale(lo, hi, box.left, box.right)
    else:
        scale = make_scale(vals, box.left, box.right, log=False)
    rows = []
    for i, b in enumerate(bars):
        y = box.top + ROW * i + ROW / 2
        row: dict[str, Any] = {
            "label": b.label if len(b.label) <= MAX_LABEL else b.label[: MAX_LABEL - 1] + "…",
            "full": b.label,
            "y": num(y),
            "ty": num(y + 4),
            "y0": num(y - 5),
            "y1": num(y + 5),
            "note": b.note,
            "title": b.title,
            "css": b.css,
            "point": None,
            "bar": None,
        }
        if b.point is not None and math.isfinite(b.point):
            row["point"] = num(scale.px(b.point))
        if b.low is not None and b.high is not None and math.isfinite(b.low + b.high):
            row["bar"] = (num(scale.px(b.low)), num(scale.px(b.high)))
        rows.append(row)
    out = {
        "frame": frame(box, width, height, scale, None, xlabel, ""),
        "rows": rows,
        "zero": num(scale.px(0.0)) if zero and scale.lo <= 0 <= scale.hi else None,
        "label_x": num(box.left - 8),
        "note_x": num(box.right + 10),
    }
    return out
