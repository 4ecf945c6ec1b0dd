"""Outlier rules that explain themselves: every excluded value carries its reason.

A reason states the value and the fence it crossed in the data's own units, e.g.
``lat=50.0 above Q3+1.5·IQR=13.5``, so a reader can check it without knowing the rule.
The decision is made against that same fence (``x > fence``), so the reason and the
decision can never disagree.

Numbers in reasons: the observed value is printed exactly, as the shortest string that
round-trips (``repr(float)``); a computed fence is first rounded to 12 significant
digits and then printed the same way, so ``13.500000000000002`` reads ``13.5``.

Rules (each optionally per group, e.g. per case, with ``labels``):

- ``iqr``: outside ``[Q1 - k·IQR, Q3 + k·IQR]`` (Tukey); quartiles by numpy's default
  linear method (Hyndman & Fan type 7, R's default).
- ``zscore``: outside ``mean ± t·sd`` with the sample sd (ddof=1). In a sample of n no
  value can be further than ``(n-1)/√n`` sd from the mean, so with n ≤ 10 a threshold of
  3 can never fire; a warning says so.
- ``modified_z``: Iglewicz & Hoaglin (1993), ``M = 0.6745·(x - median)/MAD`` with
  ``|M| > t``, i.e. outside ``median ± t·MAD/0.6745``. When MAD is 0 (more than half
  the values equal) the scale falls back to ``1.253314·meanAD`` (the mean absolute
  deviation from the median, scaled to estimate sd under normality), with a warning;
  when that is 0 too, nothing is excluded.
- ``bounds``: outside fixed ``[low, high]`` (inclusive bounds are kept).

NaN values are never kept: they cannot be compared with a fence, so they are excluded
with the reason ``lat=nan is not a number``. Fences are computed from the other values.
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
    check_same_length,
    group_codes,
    lerp_sorted,
    median_sorted,
    moments,
    param_float,
)

__all__ = [
    "Fence",
    "OutlierResult",
    "bounds",
    "fmt_exact",
    "fmt_derived",
    "iqr",
    "modified_z",
    "zscore",
]

MEANAD_SCALE = 1.253314  # sqrt(pi/2): meanAD -> sd under normality (fallback when MAD = 0)
MAD_SCALE = 0.6745  # Iglewicz & Hoaglin's constant, the 0.75 normal quantile, rounded


def fmt_exact(x: float) -> str:
    """Shortest round-trip form of an observed value: ``50.0``, ``0.1``, ``nan``."""
    return repr(float(x))


def fmt_derived(x: float) -> str:
    """A computed threshold rounded to 12 significant digits, then shortest form."""
    x = float(x)
    if not math.isfinite(x):
        return repr(x)
    return repr(float(f"{x:.12g}"))


class Fence(Result, frozen=True, kw_only=True):
    """The interval a group's values had to stay in; ``None`` bounds are open.

    ``center``/``scale`` per rule: iqr — (None, IQR); zscore — (mean, sd);
    modified_z — (median, MAD/0.6745, or 1.253314·meanAD when MAD is 0); bounds — None.
    """

    group: Any = None
    n: int
    low: float | None
    high: float | None
    center: float | None = None
    scale: float | None = None


class OutlierResult(Result, frozen=True, kw_only=True, eq=False):
    """What was kept and what was excluded, and why.

    ``kept`` is a boolean mask over the input rows; ``excluded`` the excluded row
    indices in ascending order, ``reasons[i]`` and ``excluded_values[i]`` belong to
    ``excluded[i]``.
    """

    method: str
    metric: str
    params: dict[str, float | None]
    n: int
    kept_count: int
    kept: np.ndarray
    excluded: np.ndarray
    excluded_values: tuple[float, ...]
    reasons: tuple[str, ...]
    fences: tuple[Fence, ...]
    warnings: tuple[str, ...] = ()


def _prepare(values: Any, labels: Any) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    x = as_values(values)
    if labels is None:
        return x, np.zeros(x.shape[0], dtype=np.intp), [None]
    names, codes = group_codes(labels)
    check_same_length(x, codes, "values", "labels")
    return x, codes, names


def _finish(
    method: str,
    metric: str,
    params: dict[str, float | None],
    x: np.ndarray,
    codes: np.ndarray,
    names: list[Any],
    lo: np.ndarray,
    hi: np.ndarray,
    lo_text: str,
    hi_text: str,
    counts: np.ndarray,
    warnings: list[str],
    center: np.ndarray | None = None,
    scale: np.ndarray | None = None,
    grouped: bool = False,
    exact_fences: bool = False,
) -> OutlierResult:
    fmt_fence = fmt_exact if exact_fences else fmt_derived
    row_lo = lo[codes]
    row_hi = hi[codes]
    nan = np.isnan(x)
    below = x < row_lo
    above = x > row_hi
    kept = ~(nan | below | above)
    excluded = np.flatnonzero(~kept)
    reasons = []
    for i in excluded.tolist():
        v = x[i]
        head = f"{metric}={fmt_exact(v)}"
        if math.isnan(v):
            text = f"{head} is not a number"
        elif above[i]:
            text = f"{head} above {hi_text}={fmt_fence(row_hi[i])}"
        else:
            text = f"{head} below {lo_text}={fmt_fence(row_lo[i])}"
        if grouped:
            text += f" (group {names[codes[i]]})"
        reasons.append(text)

    def opt(a: np.ndarray | None, g: int) -> float | None:
        if a is None or math.isnan(a[g]):
            return None
        return float(a[g])

    fences = tuple(
        Fence(
            group=name,
            n=int(counts[g]),
            low=opt(lo, g) if math.isfinite(lo[g]) else None,
            high=opt(hi, g) if math.isfinite(hi[g]) else None,
            center=opt(center, g),
            scale=opt(scale, g),
        )
        for g, name in enumerate(names)
    )
    return OutlierResult(
        method=method,
        metric=metric,
        params=params,
        n=int(x.shape[0]),
        kept_count=int(kept.sum()),
        kept=kept,
        excluded=excluded.astype(np.int64),
        excluded_values=tuple(float(v) for v in x[excluded]),
        reasons=tuple(reasons),
        fences=fences,
        warnings=tuple(warnings),
    )


def _nan_warning(x: np.ndarray, metric: str) -> list[str]:
    k = int(np.isnan(x).sum())
    return [f"{k} NaN value{'s' if k > 1 else ''} of {metric} excluded"] if k else []


def _check_positive(value: float, name: str) -> float:
    v = param_float(value, name)
    if not (math.isfinite(v) and v > 0):
        raise AnalyticsError(f"{name} must be a positive number, got {value!r}", argument=name)
    return v


def _group_tag(names: list[Any], g: int, grouped: bool) -> str:
    return f"group {names[g]}: " if grouped else ""


def iqr(
    values: Any, *, factor: float = 1.5, metric: str = "value", labels: Any = None
) -> OutlierResult:
    """Tukey's fences: exclude values outside ``[Q1 - factor·IQR, Q3 + factor·IQR]``.

    Raises:
        AnalyticsError: bad values or labels, factor not positive.
    """
    f = _check_positive(factor, "factor")
    x, codes, names = _prepare(values, labels)
    sg = SortedGroups(x, codes, len(names))
    g = len(names)
    q1 = np.full(g, np.nan)
    q3 = np.full(g, np.nan)
    ne = sg.counts > 0
    if ne.any():
        q = lerp_sorted(sg.values, sg.starts[ne], sg.counts[ne], np.array([0.25, 0.75]))
        q1[ne], q3[ne] = q[:, 0], q[:, 1]
    with np.errstate(invalid="ignore"):
        spread = q3 - q1
        lo = q1 - f * spread
        hi = q3 + f * spread
    ft = fmt_exact(f)
    return _finish(
        "iqr",
        metric,
        {"factor": f},
        x,
        codes,
        names,
        lo,
        hi,
        f"Q1-{ft}·IQR",
        f"Q3+{ft}·IQR",
        sg.counts,
        _nan_warning(x, metric),
        scale=spread,
        grouped=labels is not None,
    )


def zscore(
    values: Any, *, threshold: float = 3.0, metric: str = "value", labels: Any = None
) -> OutlierResult:
    """Exclude values more than ``threshold`` sample sds (ddof=1) from the mean.

    Raises:
        AnalyticsError: bad values or labels, threshold not positive.
    """
    t = _check_positive(threshold, "threshold")
    x, codes, names = _prepare(values, labels)
    sg = SortedGroups(x, codes, len(names))
    mean, var = moments(sg)
    sd = np.sqrt(var)
    with np.errstate(invalid="ignore"):
        lo = mean - t * sd
        hi = mean + t * sd
    grouped = labels is not None
    warnings = _nan_warning(x, metric)
    for gi, n in enumerate(sg.counts.tolist()):
        if n < 2:
            if n:
                warnings.append(f"{_group_tag(names, gi, grouped)}n={n}: no sd, nothing excluded")
            continue
        reach = (n - 1) / math.sqrt(n)
        if reach <= t:
            warnings.append(
                f"{_group_tag(names, gi, grouped)}n={n}: no value can be more than "
                f"(n-1)/√n={fmt_derived(round(reach, 3))} sd from the mean, so a threshold "
                f"of {fmt_exact(t)} cannot fire; use iqr or modified_z for small samples"
            )
    ts = fmt_exact(t)
    return _finish(
        "zscore",
        metric,
        {"threshold": t},
        x,
        codes,
        names,
        lo,
        hi,
        f"mean-{ts}·sd",
        f"mean+{ts}·sd",
        sg.counts,
        warnings,
        center=mean,
        scale=sd,
        grouped=grouped,
    )


def modified_z(
    values: Any, *, threshold: float = 3.5, metric: str = "value", labels: Any = None
) -> OutlierResult:
    """Iglewicz & Hoaglin: exclude ``|0.6745·(x - median)/MAD| > threshold``.

    Raises:
        AnalyticsError: bad values or labels, threshold not positive.
    """
    t = _check_positive(threshold, "threshold")
    x, codes, names = _prepare(values, labels)
    g = len(names)
    grouped = labels is not None
    sg = SortedGroups(x, codes, g)
    ne = sg.counts > 0
    med = np.full(g, np.nan)
    if ne.any():
        med[ne] = median_sorted(sg.values, sg.starts[ne], sg.counts[ne])
    finite = ~np.isnan(x)
    with np.errstate(invalid="ignore"):
        dev = np.abs(x - med[codes])
    dg = SortedGroups(dev, codes, g)
    mad = np.full(g, np.nan)
    if ne.any():
        mad[ne] = median_sorted(dg.values, dg.starts[ne], dg.counts[ne])
    cnt = np.maximum(sg.counts, 1)
    mean_ad = np.bincount(codes[finite], weights=dev[finite], minlength=g) / cnt
    scale = mad / MAD_SCALE
    fallback = ne & (mad == 0)
    scale[fallback] = MEANAD_SCALE * mean_ad[fallback]
    warnings = _nan_warning(x, metric)
    for gi in np.flatnonzero(fallback).tolist():
        tag = _group_tag(names, gi, grouped)
        if scale[gi] == 0:
            warnings.append(f"{tag}all values equal: MAD 0, nothing excluded")
        else:
            warnings.append(
                f"{tag}MAD=0 (more than half the values equal the median): "
                f"scale falls back to {MEANAD_SCALE}·meanAD"
            )
    with np.errstate(invalid="ignore"):
        lo = med - t * scale
        hi = med + t * scale
    # zero scale: every other value would be infinitely far; exclude nothing instead
    zero = scale == 0
    lo[zero] = -np.inf
    hi[zero] = np.inf
    ts = fmt_exact(t)
    lo_text = f"median-{ts}·MAD/{MAD_SCALE}"
    hi_text = f"median+{ts}·MAD/{MAD_SCALE}"
    if fallback.any():
        if fallback.all():
            lo_text = f"median-{ts}·{MEANAD_SCALE}·meanAD"
            hi_text = f"median+{ts}·{MEANAD_SCALE}·meanAD"
        else:
            lo_text = f"median-{ts}·scale"
            hi_text = f"median+{ts}·scale"
    return _finish(
        "modified_z",
        metric,
        {"threshold": t},
        x,
        codes,
        names,
        lo,
        hi,
        lo_text,
        hi_text,
        sg.counts,
        warnings,
        center=med,
        scale=scale,
        grouped=grouped,
    )


def bounds(
    values: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    metric: str = "value",
) -> OutlierResult:
    """Exclude values outside fixed ``[low, high]``; a None bound is open.

    Raises:
        AnalyticsError: bad values, a NaN bound, or ``low > high``.
    """
    for name, b in (("low", low), ("high", high)):
        if b is not None and math.isnan(param_float(b, name)):
            raise AnalyticsError(f"{name} must be a number or None, got NaN", argument=name)
    if low is not None and high is not None and float(low) > float(high):
        raise AnalyticsError(f"low ({low!r}) is above high ({high!r}); swap them", argument="low")
    x = as_values(values)
    codes = np.zeros(x.shape[0], dtype=np.intp)
    lo = np.array([-np.inf if low is None else float(low)])
    hi = np.array([np.inf if high is None else float(high)])
    counts = np.array([int((~np.isnan(x)).sum())])
    return _finish(
        "bounds",
        metric,
        {"low": None if low is None else float(low), "high": None if high is None else float(high)},
        x,
        codes,
        [None],
        lo,
        hi,
        "low",
        "high",
        counts,
        _nan_warning(x, metric),
        exact_fences=True,
    )
