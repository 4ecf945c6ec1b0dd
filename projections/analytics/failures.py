"""Failure analysis: rates with Wilson intervals, association with params, bursts over
time, and the most common error messages.

Why Wilson: the textbook ``p ± z·√(p(1-p)/n)`` interval collapses to a point at 0 or
n failures and undercovers for small n; Wilson's score interval (Wilson 1927, without
continuity correction, as recommended by Newcombe 1998 and Agresti & Coull 1998) stays
inside [0, 1] and is honest for 3 failures out of 5.

Association with a param, ranked by a strength that is comparable across kinds:

- categorical params (strings, bools, anything not numeric): the levels × {ok, failed}
  table; Fisher's exact test when it is 2×2 and an expected count is below 5, otherwise
  Pearson's chi-square test of independence (``scipy.stats.chi2_contingency``, with
  Yates' correction for 2×2 as R's ``chisq.test``). Strength: Cramér's V from the
  uncorrected chi-square. A missing value (None) is a level of its own.
- numeric params: the point-biserial correlation r between the param and the failure
  indicator (``scipy.stats.pointbiserialr``), strength |r|; rows without a value are
  dropped and counted.

With two outcomes Cramér's V equals |phi|, and phi is the Pearson correlation of two
0/1 indicators, so V and |r| are the same kind of number (a correlation with the
failure indicator, 0..1) and can be ranked together.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from ledger.numbers import is_number

from .stats import (
    AnalyticsError,
    Result,
    check_confidence,
    check_same_length,
    group_codes,
    param_float,
    param_int,
)

__all__ = [
    "Association",
    "AssociationResult",
    "Burst",
    "BurstResult",
    "ErrorGroup",
    "FailureRate",
    "FailureRates",
    "association",
    "bursts",
    "failure_rates",
    "normalise_message",
    "top_errors",
    "wilson",
    "wilson_arrays",
]


# --------------------------------------------------------------------------- Wilson


def _z(confidence: float) -> float:
    from scipy.special import ndtri

    return float(ndtri(0.5 + check_confidence(confidence) / 2.0))


def wilson_arrays(k: Any, n: Any, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised Wilson score interval; NaN where n = 0.

    Raises:
        AnalyticsError: counts not integers with 0 <= k <= n, bad confidence.
    """
    ka = np.asarray(k)
    na = np.asarray(n)
    for name, a in (("k", ka), ("n", na)):
        if a.dtype.kind not in "iub" and not (
            a.dtype.kind == "f" and np.all(np.isfinite(a)) and np.all(a == np.round(a))
        ):
            raise AnalyticsError(f"{name} must be whole counts, got {a!r}", argument=name)
    ka = ka.astype(np.float64)
    na = na.astype(np.float64)
    if np.any(ka < 0) or np.any(ka > na):
        raise AnalyticsError(
            "failure counts must satisfy 0 <= k <= n; check that k counts failures among "
            "the n runs",
            argument="k",
        )
    z = _z(confidence)
    z2 = z * z
    with np.errstate(invalid="ignore", divide="ignore"):
        p = ka / na
        denom = 1.0 + z2 / na
        center = (p + z2 / (2.0 * na)) / denom
        half = z * np.sqrt(p * (1.0 - p) / na + z2 / (4.0 * na * na)) / denom
        low = np.clip(center - half, 0.0, 1.0)
        high = np.clip(center + half, 0.0, 1.0)
    low = np.where(ka == 0, 0.0, low)
    high = np.where(ka == na, 1.0, high)
    empty = na == 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def wilson(k: int, n: int, confidence: float = 0.95) -> tuple[float | None, float | None]:
    """Wilson score interval for k failures out of n; ``(None, None)`` when n = 0.

    Raises:
        AnalyticsError: as :func:`wilson_arrays`.
    """
    lo, hi = wilson_arrays(k, n, confidence)
    if math.isnan(float(lo)):
        return None, None
    return float(lo), float(hi)


# --------------------------------------------------------------------- failure rates


class FailureRate(Result, frozen=True, kw_only=True):
    group: Any = None
    n: int
    failed: int
    rate: float | None
    ci_low: float | None
    ci_high: float | None


class FailureRates(Result, frozen=True, kw_only=True):
    confidence: float
    overall: FailureRate
    groups: tuple[FailureRate, ...]


def _as_mask(failed: Any) -> np.ndarray:
    m = np.asarray(failed)
    if m.ndim != 1:
        raise AnalyticsError(
            f"failed must be one-dimensional (one flag per run), got shape {m.shape}",
            argument="failed",
        )
    if m.dtype.kind == "b":
        return m
    if m.dtype.kind in "iu" and np.isin(m, (0, 1)).all():
        return m.astype(bool)
    raise AnalyticsError(
        f"failed must be booleans (True = the run failed), got {m.dtype}; "
        "derive it e.g. as status != 'completed'",
        argument="failed",
    )


def _rates(
    names: list[Any], n: np.ndarray, k: np.ndarray, confidence: float
) -> tuple[FailureRate, ...]:
    lo, hi = wilson_arrays(k, n, confidence)
    out = []
    for g, name in enumerate(names):
        ng, kg = int(n[g]), int(k[g])
        out.append(
            FailureRate(
                group=name,
                n=ng,
                failed=kg,
                rate=kg / ng if ng else None,
                ci_low=None if ng == 0 else float(lo[g]),
                ci_high=None if ng == 0 else float(hi[g]),
            )
        )
    return tuple(out)


def failure_rates(labels: Any, failed: Any, *, confidence: float = 0.95) -> FailureRates:
    """Failure rate per group (stage, ECO, host, a param value...) with Wilson intervals.

    Raises:
        AnalyticsError: lengths differ, failed not boolean, labels not comparable.
    """
    c = check_confidence(confidence)
    mask = _as_mask(failed)
    names, codes = group_codes(labels)
    check_same_length(mask, codes, "failed", "labels")
    g = len(names)
    n = np.bincount(codes, minlength=g)
    k = np.bincount(codes[mask], minlength=g)
    overall = _rates([None], np.array([mask.size]), np.array([int(mask.sum())]), c)[0]
    return FailureRates(confidence=c, overall=overall, groups=_rates(names, n, k, c))


# ----------------------------------------------------------------------- association


class Association(Result, frozen=True, kw_only=True):
    """How strongly one param goes with failure. ``strength`` is Cramér's V or |r|
    (None when the test is undefined, with the reason in ``warnings``)."""

    param: str
    kind: str
    test: str | None
    statistic: float | None
    df: float | None
    p_value: float | None
    strength: float | None
    strength_name: str
    n: int
    missing: int = 0
    levels: tuple[FailureRate, ...] = ()
    mean_failed: float | None = None
    mean_ok: float | None = None
    warnings: tuple[str, ...] = ()


class AssociationResult(Result, frozen=True, kw_only=True):
    """Params ranked by strength (strongest first; undefined last; ties by name)."""

    n: int
    failed: int
    params: tuple[Association, ...]


def _numeric_column(col: np.ndarray) -> np.ndarray | None:
    """The column as floats if it is numeric (bools are categorical), else None."""
    if col.dtype.kind in "iuf":
        return col.astype(np.float64)
    if col.dtype.kind == "O":
        items = col.tolist()
        if all(v is None or is_number(v) for v in items) and any(v is not None for v in items):
            return np.array([math.nan if v is None else v for v in items], dtype=np.float64)
    return None


def _categorical(name: str, col: np.ndarray, mask: np.ndarray, confidence: float) -> Association:
    from scipy import stats as sps

    names, codes = group_codes(col, name=f"params[{name!r}]")
    g = len(names)
    n = np.bincount(codes, minlength=g)
    k = np.bincount(codes[mask], minlength=g)
    levels = _rates(names, n, k, confidence)
    total, fails = int(n.sum()), int(k.sum())
    warns: list[str] = []
    test = stat = df = p = strength = None
    if g < 2:
        warns.append("only one level: no association can be measured")
    elif fails == 0 or fails == total:
        warns.append("no failures" if fails == 0 else "every run failed")
    else:
        table = np.stack([k, n - k], axis=1)  # [failed, ok]: odds ratio > 1 = level 1 fails more
        expected = n[:, None] * table.sum(axis=0)[None, :] / total
        chi2_plain = float(((table - expected) ** 2 / expected).sum())
        strength = math.sqrt(chi2_plain / (total * (min(g, 2) - 1)))
        if g == 2 and expected.min() < 5:
            test = "fisher"
            res = sps.fisher_exact(table, alternative="two-sided")
            stat, p = float(res.statistic), float(res.pvalue)
        else:
            test = "chi2"
            res = sps.chi2_contingency(table)
            stat, p, df = float(res.statistic), float(res.pvalue), float(res.dof)
            if expected.min() < 5:
                warns.append(
                    f"expected counts below 5 (min {expected.min():.3g}): chi-square "
                    "p-value is approximate"
                )
    return Association(
        param=name,
        kind="categorical",
        test=test,
        statistic=None if stat is None or math.isnan(stat) else stat,
        df=df,
        p_value=p,
        strength=strength,
        strength_name="cramers_v",
        n=total,
        levels=levels,
        warnings=tuple(warns),
    )


def _numeric(name: str, x: np.ndarray, mask: np.ndarray) -> Association:
    from scipy import stats as sps

    ok = ~np.isnan(x)
    missing = int((~ok).sum())
    x, m = x[ok], mask[ok]
    warns: list[str] = []
    if missing:
        warns.append(f"{missing} run{'s' if missing > 1 else ''} without a value dropped")
    stat = p = strength = None
    fails = int(m.sum())
    if fails == 0 or fails == x.size:
        warns.append("no failures" if fails == 0 else "every run failed")
    elif np.all(x == x[0]):
        warns.append("the param has one value: no association can be measured")
    else:
        res = sps.pointbiserialr(m, x)
        stat, p = float(res.statistic), float(res.pvalue)
        strength = abs(stat)
    return Association(
        param=name,
        kind="numeric",
        test=None if stat is None else "point_biserial",
        statistic=stat,
        df=None if stat is None else float(x.size - 2),
        p_value=p,
        strength=strength,
        strength_name="abs_r",
        n=int(x.size),
        missing=missing,
        mean_failed=float(x[m].mean()) if fails else None,
        mean_ok=float(x[~m].mean()) if fails < x.size else None,
        warnings=tuple(warns),
    )


def association(
    params: Mapping[str, Any],
    failed: Any,
    *,
    kinds: Mapping[str, str] | None = None,
    confidence: float = 0.95,
) -> AssociationResult:
    """Test each param column for association with failure and rank them by strength.

    ``kinds`` forces "categorical" or "numeric" for a param (e.g. an int param with
    three values you want per level); otherwise numeric dtypes are numeric.

    Raises:
        AnalyticsError: a column of another length, failed not boolean, a bad kind.
    """
    c = check_confidence(confidence)
    mask = _as_mask(failed)
    kinds = dict(kinds or {})
    rows = []
    for name in sorted(params):
        col = np.asarray(params[name])
        if col.ndim != 1:
            raise AnalyticsError(
                f"params[{name!r}] must be one-dimensional, got shape {col.shape}",
                argument="params",
            )
        check_same_length(mask, col, "failed", f"params[{name!r}]")
        kind = kinds.pop(name, None)
        if kind not in (None, "categorical", "numeric"):
            raise AnalyticsError(
                f"kinds[{name!r}] must be 'categorical' or 'numeric', got {kind!r}",
                argument="kinds",
            )
        numeric = _numeric_column(col) if kind != "categorical" else None
        if kind == "numeric" and numeric is None:
            raise AnalyticsError(
                f"params[{name!r}] is not numeric ({col.dtype}); drop kinds[{name!r}] to "
                "treat it as categorical",
                argument="kinds",
            )
        if numeric is not None:
            rows.append(_numeric(name, numeric, mask))
        else:
            rows.append(_categorical(name, col, mask, c))
    if kinds:
        raise AnalyticsError(
            f"kinds names params that are not given: {', '.join(sorted(kinds))}",
            argument="kinds",
        )
    rows.sort(key=lambda r: (r.strength is None, -(r.strength or 0.0), r.param))
    return AssociationResult(n=int(mask.size), failed=int(mask.sum()), params=tuple(rows))


# ----------------------------------------------------------------------------- bursts


class Burst(Result, frozen=True, kw_only=True):
    """A stretch of runs (by event position) that failed far more than usual."""

    start: Any
    end: Any
    n: int
    failed: int
    rate: float
    ratio: float
    p_value: float


class BurstResult(Result, frozen=True, kw_only=True):
    window: int
    alpha: float
    threshold: float
    overall_rate: float | None
    n: int
    failed: int
    bursts: tuple[Burst, ...]
    warnings: tuple[str, ...] = ()


def bursts(positions: Any, failed: Any, *, window: int = 20, alpha: float = 0.01) -> BurstResult:
    """Find stretches where failures cluster in time.

    Runs are ordered by ``positions`` (e.g. the seq of their ``run_finished``). Every
    ``window`` consecutive runs form a window; under "failures are independent with the
    overall rate p0" a window's failures are Binomial(window, p0), and a window is
    flagged when P(X >= k) is below ``alpha / ⌊n/window⌋`` (Bonferroni over the disjoint
    windows; overlapping windows are strongly correlated, so this is approximate).
    Overlapping flagged windows merge into one burst, trimmed to its first and last
    failure; its p-value is recomputed on the trimmed stretch and is descriptive (the
    stretch was chosen because it looked bad).

    Raises:
        AnalyticsError: lengths differ, window < 2, alpha outside (0, 1).
    """
    from scipy import stats as sps

    window = param_int(window, "window", 2)
    alpha = param_float(alpha, "alpha")
    if not 0.0 < alpha < 1.0:
        raise AnalyticsError(f"alpha must be in (0, 1), got {alpha!r}", argument="alpha")
    mask = _as_mask(failed)
    pos = np.asarray(positions)
    if pos.ndim != 1 or pos.dtype.kind not in "iuf":
        raise AnalyticsError(
            f"positions must be a 1-D numeric column (event seqs), got {pos.dtype} {pos.shape}",
            argument="positions",
        )
    check_same_length(mask, pos, "failed", "positions")
    order = np.argsort(pos, kind="stable")
    pos, f = pos[order], mask[order].astype(np.int64)
    n = int(f.size)
    fails = int(f.sum())
    threshold = float(alpha) / max(1, n // window)
    warns: list[str] = []
    p0 = fails / n if n else None
    found: list[Burst] = []
    if n < window:
        warns.append(f"only {n} runs: fewer than one window of {window}")
    elif fails == 0 or fails == n:
        warns.append("no failures" if fails == 0 else "every run failed: no burst stands out")
    else:
        assert p0 is not None  # 0 < fails < n here
        c = np.concatenate(([0], np.cumsum(f)))
        k = c[window:] - c[:-window]
        pval = sps.binom.sf(k - 1, window, p0)
        flagged = np.flatnonzero(pval < threshold)
        if flagged.size:
            cover = np.zeros(n + 1, dtype=np.int64)
            np.add.at(cover, flagged, 1)
            np.add.at(cover, flagged + window, -1)
            covered = np.cumsum(cover[:-1]) > 0
            edges = np.diff(np.concatenate(([0], covered.astype(np.int8), [0])))
            starts = np.flatnonzero(edges == 1)
            ends = np.flatnonzero(edges == -1)  # exclusive
            fail_idx = np.flatnonzero(f)
            for s, e in zip(starts.tolist(), ends.tolist()):
                inside = fail_idx[(fail_idx >= s) & (fail_idx < e)]
                a, b = int(inside[0]), int(inside[-1])
                kk, nn = int(c[b + 1] - c[a]), b - a + 1
                found.append(
                    Burst(
                        start=pos[a].item(),
                        end=pos[b].item(),
                        n=nn,
                        failed=kk,
                        rate=kk / nn,
                        ratio=(kk / nn) / p0,
                        p_value=float(sps.binom.sf(kk - 1, nn, p0)),
                    )
                )
    return BurstResult(
        window=window,
        alpha=float(alpha),
        threshold=threshold,
        overall_rate=p0,
        n=n,
        failed=fails,
        bursts=tuple(found),
        warnings=tuple(warns),
    )


# ------------------------------------------------------------------------ top errors

_NORMALISERS = (
    (
        re.compile(
            r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
        ),
        "<uuid>",
    ),
    (re.compile(r"(?:\b[A-Za-z]:[\\/]|~?/|\.{1,2}/)[^\s:'\",()\[\]{}<>]*"), "<path>"),
    (re.compile(r"\b0[xX][0-9a-fA-F]+\b"), "<hex>"),
    (re.compile(r"\b(?=[0-9a-fA-F]*[0-9])(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b"), "<hex>"),
    (re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"), "<num>"),
    (re.compile(r"\s+"), " "),
)

NO_MESSAGE = "(no message)"


def normalise_message(message: str | None) -> str:
    """The message with UUIDs, paths, hex and numbers replaced by placeholders, so
    ``OOM at 0x7f3a in /tmp/r1/a.py:12`` and ``OOM at 0x9b00 in /tmp/r7/a.py:40`` are
    one error: ``OOM at <hex> in <path>:<num>``."""
    if message is None:
        return NO_MESSAGE
    text = str(message)
    for pattern, repl in _NORMALISERS:
        text = pattern.sub(repl, text)
    text = text.strip()
    return text or NO_MESSAGE


class ErrorGroup(Result, frozen=True, kw_only=True):
    pattern: str
    count: int
    share: float
    example: str | None
    first_index: int


def top_errors(messages: Any, k: int = 10) -> tuple[ErrorGroup, ...]:
    """The ``k`` most common normalised error messages, most common first (ties by
    pattern in code-point order), each with the first original message as example.

    Raises:
        AnalyticsError: k < 1 or messages not one-dimensional.
    """
    k = param_int(k, "k", 1)
    arr = np.asarray(messages, dtype=object)
    if arr.ndim != 1:
        raise AnalyticsError(
            f"messages must be one-dimensional, got shape {arr.shape}", argument="messages"
        )
    if arr.size == 0:
        return ()
    norm = np.array([normalise_message(m) for m in arr.tolist()], dtype=object)
    patterns, first, counts = np.unique(norm, return_index=True, return_counts=True)
    order = np.argsort(-counts, kind="stable")[: int(k)]  # ties keep pattern order
    total = arr.size
    return tuple(
        ErrorGroup(
            pattern=str(patterns[i]),
            count=int(counts[i]),
            share=int(counts[i]) / total,
            example=None if arr[first[i]] is None else str(arr[first[i]]),
            first_index=int(first[i]),
        )
        for i in order.tolist()
    )
