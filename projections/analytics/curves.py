"""Training curves: best so far, plateau and convergence steps, mean curve with a band.

Input is what a columnar metric-series projection holds for one metric: three flat
columns ``runs`` (run id or index per point), ``steps`` and ``values``, in any order,
one value per (run, step) — the value in force. Everything is computed for all runs at
once: one ``lexsort`` by (run, step), then segment-wise operations; running extrema are
``np.fmin/fmax.accumulate`` over a (runs × longest run) padded matrix when that is not
much larger than the data, per run otherwise.

Definitions (``direction`` "min" for losses, "max" for accuracies):

- best so far: the running best, ignoring NaN (a diverged step does not erase the
  best); NaN until the first non-NaN value.
- plateau step: the first step s such that the whole window (s, s + window] lies inside
  the run, holds at least one point, and the best so far improves by at most
  ``min_delta`` over it. Improvements
  are cumulative over the window, so a slow creep of many tiny gains still counts. None
  when no such step exists (the run is still improving, or is shorter than a window).
- convergence step: the first step where the best so far is within
  ``tolerance × (initial best - final best)`` of the final best, i.e. the step that had
  already achieved (1 - tolerance) of the run's total improvement.
- mean curve: per step, the mean of the runs' values with a band (mean ± sd, or the t
  interval of the mean) and the number of runs contributing. ``align="exact"`` uses the
  runs that logged that very step; ``align="ffill"`` carries each run's last value
  forward to every step of the union between its first and last step, for runs that log
  on different schedules.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .stats import (
    AnalyticsError,
    Result,
    SortedGroups,
    as_values,
    check_confidence,
    check_same_length,
    group_codes,
    moments,
    param_float,
    param_int,
)

__all__ = [
    "MeanCurve",
    "RunCurve",
    "RunCurves",
    "best_so_far",
    "convergence_step",
    "mean_curve",
    "plateau_step",
    "run_curves",
]


def _direction(direction: str) -> float:
    if direction not in ("min", "max"):
        raise AnalyticsError(
            f"direction must be 'min' or 'max', got {direction!r}", argument="direction"
        )
    return 1.0 if direction == "min" else -1.0


def _as_steps(steps: Any) -> np.ndarray:
    s = np.asarray(steps)
    if s.ndim != 1:
        raise AnalyticsError(
            f"steps must be one-dimensional, got shape {s.shape}", argument="steps"
        )
    if s.dtype.kind in "iu":
        return s.astype(np.int64, copy=False)
    if s.dtype.kind == "f" and np.all(np.isfinite(s)) and np.all(s == np.round(s)):
        return s.astype(np.int64)
    raise AnalyticsError(
        f"steps must be whole numbers, got {s.dtype}; drop final results (no step) first",
        argument="steps",
    )


class _Series:
    """Points sorted by (run, step) with segment bookkeeping; ``order`` maps back."""

    def __init__(self, runs: Any, steps: Any, values: Any) -> None:
        v = as_values(values)
        s = _as_steps(steps)
        if runs is None:
            names = [None] if v.shape[0] else []
            codes = np.zeros(v.shape[0], dtype=np.intp)
        else:
            names, codes = group_codes(runs, name="runs")
        check_same_length(v, s, "values", "steps")
        check_same_length(v, codes, "values", "runs")
        order = np.lexsort((s, codes))
        self.names = names
        self.order = order
        self.codes = codes[order]
        self.steps = s[order]
        self.values = v[order]
        dup = (np.diff(self.codes) == 0) & (np.diff(self.steps) == 0)
        if dup.any():
            i = int(np.flatnonzero(dup)[0])
            raise AnalyticsError(
                f"run {names[self.codes[i]]!r} has two values at step {int(self.steps[i])}; "
                "pass one value per (run, step): the value in force",
                argument="steps",
            )
        self.counts = np.bincount(self.codes, minlength=len(names))
        self.starts = (np.cumsum(self.counts) - self.counts).astype(np.intp)
        self.ends = self.starts + self.counts - 1  # inclusive; every run has a point
        self.row = self.codes
        self.pos = np.arange(self.values.shape[0]) - self.starts[self.codes]

    def running(self, ufunc: np.ufunc, v: np.ndarray) -> np.ndarray:
        """``ufunc.accumulate`` restarted at every run, in sorted order."""
        n = v.shape[0]
        if n == 0:
            return v.copy()
        rows, width = self.counts.shape[0], int(self.counts.max())
        if rows * width <= max(4 * n, 1 << 16):
            pad = np.full((rows, width), np.nan)
            pad[self.row, self.pos] = v
            return ufunc.accumulate(pad, axis=1)[self.row, self.pos]
        out = np.empty_like(v)
        for s, c in zip(self.starts.tolist(), self.counts.tolist()):
            out[s : s + c] = ufunc.accumulate(v[s : s + c])
        return out

    def adjusted_steps(self, gap: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Steps shifted so runs occupy disjoint, increasing ranges ``gap`` apart, which
        turns a per-run ``searchsorted`` into one global call."""
        first = self.steps[self.starts]
        last = self.steps[self.ends]
        span = last - first + 1 + gap
        offset = np.cumsum(span) - span
        return self.steps - first[self.codes] + offset[self.codes], first, offset

    def first_per_run(self, mask: np.ndarray) -> np.ndarray:
        """Index (sorted order) of the first True per run, -1 where none."""
        big = np.iinfo(np.int64).max
        idx = np.where(mask, np.arange(mask.shape[0]), big)
        first = np.minimum.reduceat(idx, self.starts) if idx.size else idx
        return np.where(first == big, -1, first)


def _best_sorted(ser: _Series, sign: float) -> np.ndarray:
    """Running best in "min space" (values times sign), sorted order."""
    return ser.running(np.fmin, ser.values * sign)


def best_so_far(runs: Any, steps: Any, values: Any, *, direction: str = "min") -> np.ndarray:
    """The running best of each run, aligned with the input rows.

    Raises:
        AnalyticsError: columns of different lengths, non-integral steps, a repeated
            (run, step), a bad direction.
    """
    sign = _direction(direction)
    ser = _Series(runs, steps, values)
    best = _best_sorted(ser, sign) * sign
    out = np.empty_like(best)
    out[ser.order] = best
    return out


def _plateau_idx(ser: _Series, best: np.ndarray, window: int, min_delta: float) -> np.ndarray:
    adj, _, _ = ser.adjusted_steps(window)
    j = np.searchsorted(adj, adj + window, side="right") - 1
    observed = ser.steps + window <= ser.steps[ser.ends][ser.codes]
    inside = j > np.arange(j.shape[0])  # at least one point in the window: evidence
    with np.errstate(invalid="ignore"):
        flat = observed & inside & ~np.isnan(best) & (best - best[j] <= min_delta)
    return ser.first_per_run(flat)


def _convergence_idx(ser: _Series, best: np.ndarray, tolerance: float) -> np.ndarray:
    final = best[ser.ends]
    finite = ~np.isnan(best)
    first_idx = ser.first_per_run(finite)
    initial = np.where(first_idx >= 0, best[np.maximum(first_idx, 0)], np.nan)
    with np.errstate(invalid="ignore"):
        tol = tolerance * (initial - final)
        tol = np.where(np.isnan(tol), np.inf, tol)  # ±inf values: converge at once
        hit = finite & (best <= (final + tol)[ser.codes])
    return ser.first_per_run(hit)


def _check_window(window: Any) -> int:
    return param_int(window, "window", 1)


def _check_nonneg(x: Any, name: str, upper: float = math.inf) -> float:
    v = param_float(x, name)
    if not (0.0 <= v <= upper):
        raise AnalyticsError(f"{name} must be in [0, {upper}], got {x!r}", argument=name)
    return v


class RunCurve(Result, frozen=True, kw_only=True):
    run: Any
    points: int
    nan_values: int
    first_step: int
    last_step: int
    final: float | None
    best: float | None
    best_step: int | None
    plateau_step: int | None
    convergence_step: int | None


class RunCurves(Result, frozen=True, kw_only=True):
    direction: str
    window: int
    min_delta: float
    tolerance: float
    runs: tuple[RunCurve, ...]


def run_curves(
    runs: Any,
    steps: Any,
    values: Any,
    *,
    direction: str = "min",
    window: int = 10,
    min_delta: float = 0.0,
    tolerance: float = 0.01,
) -> RunCurves:
    """Per run: points, final value, best value and its (first) step, plateau step and
    convergence step, runs in label order.

    Raises:
        AnalyticsError: as :func:`best_so_far`, plus window < 1, min_delta < 0,
            tolerance outside [0, 1].
    """
    sign = _direction(direction)
    w = _check_window(window)
    md = _check_nonneg(min_delta, "min_delta")
    tol = _check_nonneg(tolerance, "tolerance", 1.0)
    ser = _Series(runs, steps, values)
    best = _best_sorted(ser, sign)
    plateau = _plateau_idx(ser, best, w, md)
    conv = _convergence_idx(ser, best, tol)
    final_best = best[ser.ends]
    with np.errstate(invalid="ignore"):
        best_idx = ser.first_per_run(best == final_best[ser.codes])
    nan_counts = np.bincount(ser.codes[np.isnan(ser.values)], minlength=len(ser.names))

    def step_at(i: int) -> int | None:
        return None if i < 0 else int(ser.steps[i])

    def num(x: float) -> float | None:
        return None if math.isnan(x) else float(x)

    rows = tuple(
        RunCurve(
            run=name,
            points=int(ser.counts[r]),
            nan_values=int(nan_counts[r]),
            first_step=int(ser.steps[ser.starts[r]]),
            last_step=int(ser.steps[ser.ends[r]]),
            final=num(ser.values[ser.ends[r]]),
            best=num(final_best[r] * sign),
            best_step=step_at(int(best_idx[r])),
            plateau_step=step_at(int(plateau[r])),
            convergence_step=step_at(int(conv[r])),
        )
        for r, name in enumerate(ser.names)
        if ser.counts[r]
    )
    return RunCurves(direction=direction, window=w, min_delta=md, tolerance=tol, runs=rows)


def plateau_step(
    steps: Any, values: Any, *, direction: str = "min", window: int = 10, min_delta: float = 0.0
) -> int | None:
    """:func:`run_curves`' plateau step for a single run."""
    sign = _direction(direction)
    ser = _Series(None, steps, values)
    if not ser.values.size:
        return None
    i = int(
        _plateau_idx(
            ser,
            _best_sorted(ser, sign),
            _check_window(window),
            _check_nonneg(min_delta, "min_delta"),
        )[0]
    )
    return None if i < 0 else int(ser.steps[i])


def convergence_step(
    steps: Any, values: Any, *, direction: str = "min", tolerance: float = 0.01
) -> int | None:
    """:func:`run_curves`' convergence step for a single run."""
    sign = _direction(direction)
    ser = _Series(None, steps, values)
    if not ser.values.size:
        return None
    i = int(
        _convergence_idx(ser, _best_sorted(ser, sign), _check_nonneg(tolerance, "tolerance", 1.0))[
            0
        ]
    )
    return None if i < 0 else int(ser.steps[i])


class MeanCurve(Result, frozen=True, kw_only=True, eq=False):
    """Columns over the union of steps: mean, band (low/high), sd and run count.

    ``low``/``high`` are NaN (None in ``to_dict``) where fewer than 2 runs contribute.
    """

    band: str
    align: str
    confidence: float | None
    steps: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    low: np.ndarray
    high: np.ndarray
    count: np.ndarray


def mean_curve(
    runs: Any,
    steps: Any,
    values: Any,
    *,
    band: str = "std",
    confidence: float = 0.95,
    align: str = "exact",
) -> MeanCurve:
    """Mean across runs at every step of the union, with a band ("std": mean ± sd,
    "ci": the t interval of the mean) and the count of runs per step.

    Raises:
        AnalyticsError: as :func:`best_so_far`, plus an unknown band or align.
    """
    if band not in ("std", "ci"):
        raise AnalyticsError(f"band must be 'std' or 'ci', got {band!r}", argument="band")
    if align not in ("exact", "ffill"):
        raise AnalyticsError(f"align must be 'exact' or 'ffill', got {align!r}", argument="align")
    c = check_confidence(confidence)
    ser = _Series(runs, steps, values)
    union, step_code = np.unique(ser.steps, return_inverse=True)
    if align == "exact":
        vals, codes = ser.values, step_code.ravel()
    else:
        adj, first, offset = ser.adjusted_steps(0)
        lo = np.searchsorted(union, first)
        hi = np.searchsorted(union, ser.steps[ser.ends], side="right")
        per_run = hi - lo
        run_of = np.repeat(np.arange(per_run.shape[0]), per_run)
        base = np.cumsum(per_run) - per_run
        codes = np.arange(run_of.shape[0]) - np.repeat(base, per_run) + np.repeat(lo, per_run)
        target = union[codes] - first[run_of] + offset[run_of]
        vals = ser.values[np.searchsorted(adj, target, side="right") - 1]
    sg = SortedGroups(vals, codes.astype(np.intp), union.shape[0])
    mean, var = moments(sg)
    sd = np.sqrt(var)
    if band == "std":
        low, high = mean - sd, mean + sd
    else:
        from scipy.special import stdtrit

        n = sg.counts
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.where(n >= 2, stdtrit(np.maximum(n - 1, 1), 0.5 + c / 2.0), np.nan)
            half = np.where(sd == 0, 0.0, t * sd / np.sqrt(n))
        low, high = mean - half, mean + half
    return MeanCurve(
        band=band,
        align=align,
        confidence=c if band == "ci" else None,
        steps=union,
        mean=mean,
        std=sd,
        low=low,
        high=high,
        count=sg.counts.astype(np.int64),
    )
