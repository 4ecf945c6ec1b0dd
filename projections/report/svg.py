"""Chart geometry for the report: scales, ticks, paths and the palette.

Everything here returns numbers already formatted as text, so that a chart's bytes
depend only on its data: coordinates are written with one decimal (``num``), never
with ``repr`` or ``str`` of a float, and ``-0.0`` is written ``0.0``. The templates put
these strings into SVG attributes; nothing here writes markup.

The palette is Okabe & Ito's (2008) eight colours, chosen to stay distinguishable
under the common forms of colour-blindness; series that share a colour also differ in
dash pattern, and every status mark also has a symbol and a word, so no meaning rests on
colour alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

__all__ = [
    "DASHES",
    "PALETTE",
    "Axis",
    "LinearScale",
    "LogScale",
    "Scale",
    "colour",
    "dash",
    "label",
    "make_scale",
    "num",
    "polyline",
]

# Okabe-Ito, black moved last (it is the text colour).
PALETTE = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#D55E00",  # vermillion
    "#F0E442",  # yellow
    "#000000",  # black
)
DASHES = ("", "6 3", "2 2", "8 3 2 3")


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def dash(i: int) -> str:
    """A dash pattern that changes once the palette wraps round."""
    return DASHES[(i // len(PALETTE)) % len(DASHES)]


def num(x: float) -> str:
    """A coordinate: one decimal, never ``-0.0`` (the same number, the same bytes)."""
    out = f"{x:.1f}"
    return "0.0" if out == "-0.0" else out


def label(x: float) -> str:
    """A tick or value label: up to 4 significant digits, no ``-0``."""
    if x == 0:
        return "0"
    out = f"{x:.4g}"
    return "0" if out in ("-0", "0") else out


def _nice_step(span: float, target: int) -> float:
    raw = span / max(target, 1)
    mag = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if raw <= m * mag:
            return m * mag
    return 10.0 * mag


class Axis(NamedTuple):
    """Tick positions (pixels, formatted) and their labels."""

    pos: list[str]
    text: list[str]


class LinearScale:
    """Maps data ``[lo, hi]`` onto pixels ``[p0, p1]``; ticks at 1-2-2.5-5 steps."""

    log = False

    def __init__(self, lo: float, hi: float, p0: float, p1: float) -> None:
        if not hi > lo:
            pad = abs(lo) * 0.05 or 0.5
            lo, hi = lo - pad, hi + pad
        self.lo, self.hi, self.p0, self.p1 = lo, hi, p0, p1

    def px(self, x: float) -> float:
        return self.p0 + (x - self.lo) / (self.hi - self.lo) * (self.p1 - self.p0)

    def px_array(self, x: np.ndarray) -> np.ndarray:
        return self.p0 + (x - self.lo) / (self.hi - self.lo) * (self.p1 - self.p0)

    def ticks(self, target: int = 5) -> Axis:
        step = _nice_step(self.hi - self.lo, target)
        first = math.ceil(self.lo / step - 1e-9)
        last = math.floor(self.hi / step + 1e-9)
        values = [k * step for k in range(first, last + 1)]
        return Axis([num(self.px(v)) for v in values], [label(v) for v in values])


class LogScale(LinearScale):
    """Base-10 log scale for positive data spanning decades; ticks at powers of ten."""

    log = True

    def __init__(self, lo: float, hi: float, p0: float, p1: float) -> None:
        super().__init__(math.log10(lo), math.log10(hi), p0, p1)

    def px(self, x: float) -> float:
        return super().px(math.log10(x))

    def px_array(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return super().px_array(np.log10(x))

    def ticks(self, target: int = 5) -> Axis:
        first, last = math.ceil(self.lo - 1e-9), math.floor(self.hi + 1e-9)
        stride = max(1, (last - first + 1) // max(target, 1))
        exps = list(range(first, last + 1, stride)) or [first]
        return Axis([num(super(LogScale, self).px(e)) for e in exps], [f"1e{e}" for e in exps])


Scale = LinearScale


def wants_log(values: np.ndarray) -> bool:
    """The rule for "log scale where it helps": every finite value is positive and the
    largest is at least 100 times the smallest (two decades or more)."""
    v = values[np.isfinite(values)]
    if v.size < 2 or (v <= 0).any():
        return False
    return float(v.max()) >= 100.0 * float(v.min())


def make_scale(values: np.ndarray, p0: float, p1: float, *, log: bool | None = None) -> LinearScale:
    """A scale over the finite ``values`` (log when ``wants_log`` and ``log`` is not
    False), padded by 4% so points do not sit on the frame."""
    v = values[np.isfinite(values)] if values.size else values
    if v.size == 0:
        return LinearScale(0.0, 1.0, p0, p1)
    lo, hi = float(v.min()), float(v.max())
    if log is None:
        log = wants_log(v)
    if log and lo > 0:
        span = math.log10(hi) - math.log10(lo)
        pad = 10 ** (span * 0.04) if span > 0 else 2.0
        return LogScale(lo / pad, hi * pad, p0, p1)
    pad = (hi - lo) * 0.04
    return LinearScale(lo - pad, hi + pad, p0, p1)


def polyline(xs: np.ndarray, ys: np.ndarray) -> str:
    """An SVG path ``d`` through the points (pixels), breaking at non-finite ones."""
    parts: list[str] = []
    move = True
    for x, y in zip(xs.tolist(), ys.tolist()):
        if not (math.isfinite(x) and math.isfinite(y)):
            move = True
            continue
        parts.append(("M" if move else "L") + num(x) + " " + num(y))
        move = False
    return "".join(parts)


def points(xs: Sequence[float], ys: Sequence[float]) -> list[tuple[str, str]]:
    return [(num(x), num(y)) for x, y in zip(xs, ys)]
