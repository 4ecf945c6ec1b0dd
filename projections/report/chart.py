"""The frame every chart shares: plot box, ticks and axis titles, as template data."""

from __future__ import annotations

from typing import Any, NamedTuple

from .svg import LinearScale, num


class Box(NamedTuple):
    left: float
    top: float
    right: float
    bottom: float

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top


def frame(
    box: Box,
    width: float,
    height: float,
    x: LinearScale | None,
    y: LinearScale | None,
    xlabel: str = "",
    ylabel: str = "",
    *,
    xticks: int = 5,
    yticks: int = 5,
) -> dict[str, Any]:
    """Template data for ``chart_frame``: the box, tick marks with labels, titles."""
    out: dict[str, Any] = {
        "width": num(width),
        "height": num(height),
        "box": {
            "x": num(box.left),
            "y": num(box.top),
            "w": num(box.width),
            "h": num(box.height),
            "right": num(box.right),
            "bottom": num(box.bottom),
        },
        "xticks": [],
        "yticks": [],
        "xtick_y": num(box.bottom + 14),
        "ytick_x": num(box.left - 4),
        "xlabel": xlabel,
        "ylabel": ylabel,
        "xlabel_x": num(box.left + box.width / 2),
        "xlabel_y": num(box.bottom + 30),
        "ylabel_x": num(12),
        "ylabel_y": num(box.top + box.height / 2),
        "xlog": bool(x is not None and x.log),
        "ylog": bool(y is not None and y.log),
    }
    if x is not None:
        ax = x.ticks(xticks)
        out["xticks"] = [
            {"pos": p, "text": t}
            for p, t in zip(ax.pos, ax.text)
            if box.left - 0.5 <= float(p) <= box.right + 0.5
        ]
    if y is not None:
        ay = y.ticks(yticks)
        out["yticks"] = [
            {"pos": p, "text": t, "ty": num(float(p) + 4)}
            for p, t in zip(ay.pos, ay.text)
            if box.top - 0.5 <= float(p) <= box.bottom + 0.5
        ]
    return out
