"""Two-sample comparisons, effect sizes, Holm-adjusted pairwise matrices, rankings.

Every test is two-sided. Choices, so results can be checked against R:

- ``welch`` / ``student``: R's ``t.test(a, b)`` / ``t.test(a, b, var.equal = TRUE)``;
  the interval is for ``mean(a) - mean(b)``. Effect size: Hedges' g.
- ``mannwhitney``: the statistic is U of the first sample (R's ``W``); the method is
  scipy's default choice: exact when one sample has at most 8 values and there are no
  ties, otherwise the normal approximation with tie and continuity correction. (R is
  exact for both n < 50 without ties, so the two differ for 9 ≤ n < 50 without ties.)
  Effect size: Cliff's delta.
- ``paired_t``: R's ``t.test(a, b, paired = TRUE)``; effect size Cohen's d_z
  (mean difference over the sd of the differences).
- ``wilcoxon``: R's ``wilcox.test(a, b, paired = TRUE)``: zero differences dropped, the
  statistic is V = W+ (the rank sum of the positive differences), exact for n < 50
  with no ties and no zeros, otherwise the normal approximation with tie and continuity
  correction. (scipy's own default would use a permutation test for small samples with
  ties; R's rule is used so results match the published references.) Effect size: the
  matched-pairs rank-biserial correlation ``(W+ - W-) / (W+ + W-)``.
- ``hedges_g`` uses the exact small-sample correction
  ``J(df) = Γ(df/2) / (√(df/2) · Γ((df-1)/2))``, df = n_a + n_b - 2, not the
  ``1 - 3/(4df - 1)`` approximation (they differ by < 0.1% from df = 10 on).
- ``holm``: Holm (1979) step-down, monotone, capped at 1, NaN p-values left out of the
  count and returned as NaN (R's ``p.adjust(p, "holm")``).

NaN values are dropped (pairs with a NaN on either side for paired tests) and counted.
A test that is undefined (too few values, no variation) gives None with a warning.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from projections.numbers import float_or_none

from .stats import (
    AnalyticsError,
    Result,
    SortedGroups,
    as_values,
    check_confidence,
    group_codes,
    moments,
)

__all__ = [
    "Comparison",
    "PairRow",
    "Pairing",
    "PairwiseResult",
    "MeanRankRow",
    "RankingResult",
    "Unranked",
    "cliffs_delta",
    "cohen_d",
    "hedges_g",
    "hedges_j",
    "holm",
    "mannwhitney",
    "pair_by_seed",
    "paired_t",
    "pairwise",
    "rank_with_ci",
    "student",
    "welch",
    "wilcoxon",
]

TESTS = ("welch", "student", "mannwhitney")


class Comparison(Result, frozen=True, kw_only=True):
    """One two-sample (or paired) test. ``estimate`` is mean(a) - mean(b) (the mean
    difference for paired tests); ``ci_low``/``ci_high`` its t interval (t tests)."""

    test: str
    statistic: float | None
    p_value: float | None
    df: float | None = None
    method: str | None = None
    alternative: str = "two-sided"
    n_a: int
    n_b: int
    mean_a: float | None
    mean_b: float | None
    estimate: float | None = None
    confidence: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    effect_size: float | None = None
    effect_name: str | None = None
    nan_dropped_a: int = 0
    nan_dropped_b: int = 0
    warnings: tuple[str, ...] = ()


def _clean(values: Any, name: str) -> tuple[np.ndarray, int]:
    x = as_values(values, name)
    nan = np.isnan(x)
    return x[~nan], int(nan.sum())


def _mean(x: np.ndarray) -> float | None:
    return float(x.mean()) if x.size else None


def _nan_warnings(da: int, db: int) -> list[str]:
    out = []
    for side, k in (("a", da), ("b", db)):
        if k:
            out.append(f"{k} NaN value{'s' if k > 1 else ''} dropped from {side}")
    return out


# --------------------------------------------------------------------- effect sizes


def hedges_j(df: Any) -> Any:
    """Exact small-sample bias correction of Hedges (1981), via log-gamma for large df."""
    from scipy.special import gammaln

    d = np.asarray(df, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        j = np.exp(gammaln(d / 2.0) - gammaln((d - 1.0) / 2.0)) / np.sqrt(d / 2.0)
    j = np.where(d > 1, j, np.nan)
    return float(j) if j.ndim == 0 else j


def _pooled_sd(na, va, nb, vb):
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(((na - 1) * va + (nb - 1) * vb) / (na + nb - 2))


def cohen_d(a: Any, b: Any) -> float | None:
    """``(mean(a) - mean(b)) / pooled sd`` (pooled with ddof=1 per sample).

    None when either sample has fewer than 2 values or the pooled sd is 0 (all values
    equal): a standardised difference needs a spread to standardise by.
    """
    x, _ = _clean(a, "a")
    y, _ = _clean(b, "b")
    if x.size < 2 or y.size < 2:
        return None
    va = x.var(ddof=1)
    vb = y.var(ddof=1)
    sp = float(_pooled_sd(x.size, va, y.size, vb))
    if not sp > 0:
        return None
    return float((x.mean() - y.mean()) / sp)


def hedges_g(a: Any, b: Any) -> float | None:
    """Cohen's d times the exact correction ``J(n_a + n_b - 2)``; None as cohen_d."""
    d = cohen_d(a, b)
    if d is None:
        return None
    n = _clean(a, "a")[0].size + _clean(b, "b")[0].size
    return float_or_none(d * hedges_j(n - 2))


def cliffs_delta(a: Any, b: Any) -> float | None:
    """``P(a > b) - P(a < b)`` over all pairs, by sorting (O(n log n)), None if empty."""
    x, _ = _clean(a, "a")
    y, _ = _clean(b, "b")
    if x.size == 0 or y.size == 0:
        return None
    ys = np.sort(y)
    greater = np.searchsorted(ys, x, side="left").sum()
    less = (y.size - np.searchsorted(ys, x, side="right")).sum()
    return float((int(greater) - int(less)) / (x.size * y.size))


# -------------------------------------------------------------------------- t tests


def _t_arrays(na, ma, va, nb, mb, vb, equal_var: bool):
    """Vectorised t, df and standard error of the difference from per-sample moments."""
    na = np.asarray(na, dtype=np.float64)
    nb = np.asarray(nb, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        if equal_var:
            df = na + nb - 2.0
            sp2 = ((na - 1) * va + (nb - 1) * vb) / df
            se = np.sqrt(sp2 * (1.0 / na + 1.0 / nb))
        else:
            wa = va / na
            wb = vb / nb
            se = np.sqrt(wa + wb)
            df = (wa + wb) ** 2 / (wa**2 / (na - 1) + wb**2 / (nb - 1))
        t = (ma - mb) / se
    bad = ~(se > 0) | (na < 2) | (nb < 2)
    return np.where(bad, np.nan, t), np.where(bad, np.nan, df), se


def _t_p(t, df):
    from scipy.special import stdtr

    with np.errstate(invalid="ignore"):
        return np.where(np.isnan(t), np.nan, 2.0 * stdtr(df, -np.abs(t)))


def _two_sample_t(a: Any, b: Any, confidence: float, equal_var: bool) -> Comparison:
    from scipy.special import stdtrit

    c = check_confidence(confidence)
    x, da = _clean(a, "a")
    y, db = _clean(b, "b")
    warns = _nan_warnings(da, db)
    name = "student" if equal_var else "welch"
    va = float(x.var(ddof=1)) if x.size > 1 else math.nan
    vb = float(y.var(ddof=1)) if y.size > 1 else math.nan
    ma, mb = _mean(x), _mean(y)
    stat = df = p = lo = hi = None
    if x.size < 2 or y.size < 2:
        warns.append(f"need at least 2 values in each sample (got {x.size} and {y.size})")
    elif va == 0 and vb == 0:
        warns.append("both samples are constant: t is undefined")
    else:
        assert ma is not None and mb is not None  # each sample holds 2 values or more
        t, d, se = _t_arrays(x.size, ma, va, y.size, mb, vb, equal_var)
        stat, df = float(t), float(d)
        p = float(_t_p(t, d))
        half = float(stdtrit(d, 0.5 + c / 2.0) * se)
        lo, hi = ma - mb - half, ma - mb + half
    return Comparison(
        test=name,
        statistic=stat,
        p_value=p,
        df=df,
        n_a=int(x.size),
        n_b=int(y.size),
        mean_a=ma,
        mean_b=mb,
        estimate=None if ma is None or mb is None else ma - mb,
        confidence=c,
        ci_low=lo,
        ci_high=hi,
        effect_size=hedges_g(x, y),
        effect_name="hedges_g",
        nan_dropped_a=da,
        nan_dropped_b=db,
        warnings=tuple(warns),
    )


def welch(a: Any, b: Any, *, confidence: float = 0.95) -> Comparison:
    """Welch's unequal-variance t test of mean(a) = mean(b) (R's default ``t.test``).

    Raises:
        AnalyticsError: values not numbers, confidence outside (0, 1).
    """
    return _two_sample_t(a, b, confidence, equal_var=False)


def student(a: Any, b: Any, *, confidence: float = 0.95) -> Comparison:
    """Student's pooled-variance t test (``t.test(var.equal = TRUE)``).

    Raises:
        AnalyticsError: values not numbers, confidence outside (0, 1).
    """
    return _two_sample_t(a, b, confidence, equal_var=True)


# -------------------------------------------------------------------- rank tests


def _mwu_method(na: int, nb: int, ties: bool) -> str:
    # scipy's own rule (scipy.stats._mannwhitneyu._mwu_choose_method), stated here so
    # the result can say which method it used.
    if (na > 8 and nb > 8) or ties:
        return "asymptotic"
    return "exact"


def mannwhitney(a: Any, b: Any) -> Comparison:
    """Mann-Whitney U (Wilcoxon rank-sum) test; statistic = U of ``a``.

    Raises:
        AnalyticsError: values not numbers.
    """
    x, da = _clean(a, "a")
    y, db = _clean(b, "b")
    warns = _nan_warnings(da, db)
    stat = p = method = None
    if x.size == 0 or y.size == 0:
        warns.append(f"need at least 1 value in each sample (got {x.size} and {y.size})")
    else:
        from scipy import stats as sps

        both = np.sort(np.concatenate([x, y]))
        ties = bool((np.diff(both) == 0).any())
        method = _mwu_method(x.size, y.size, ties)
        res = sps.mannwhitneyu(x, y, alternative="two-sided", method=method)
        stat, p = float(res.statistic), float(res.pvalue)
        if ties and method == "asymptotic" and min(x.size, y.size) <= 8:
            warns.append("ties: normal approximation used instead of the exact test")
    ma, mb = _mean(x), _mean(y)
    return Comparison(
        test="mannwhitney",
        statistic=stat,
        p_value=p,
        df=None,
        method=method,
        n_a=int(x.size),
        n_b=int(y.size),
        mean_a=ma,
        mean_b=mb,
        estimate=None if ma is None or mb is None else ma - mb,
        effect_size=None if stat is None else 2.0 * stat / (x.size * y.size) - 1.0,
        effect_name="cliffs_delta",
        nan_dropped_a=da,
        nan_dropped_b=db,
        warnings=tuple(warns),
    )


# ------------------------------------------------------------------- paired tests


class Pairing(Result, frozen=True, kw_only=True, eq=False):
    """Runs of two cases matched by seed: ``a[i]`` and ``b[i]`` share ``seeds[i]``
    (seeds ascending). Runs without a partner (or without a seed) are counted."""

    seeds: np.ndarray
    a: np.ndarray
    b: np.ndarray
    unpaired_a: int
    unpaired_b: int


def _seed_side(seeds: Any, values: Any, side: str) -> tuple[np.ndarray, np.ndarray, int]:
    s = np.asarray(seeds)
    v = as_values(values, f"values_{side}")
    if s.ndim != 1 or s.shape[0] != v.shape[0]:
        raise AnalyticsError(
            f"seeds_{side} and values_{side} must be 1-D of the same length, got "
            f"{s.shape} and {v.shape}",
            argument=f"seeds_{side}",
        )
    if s.dtype.kind == "O":
        missing = np.fromiter(
            (x is None or (isinstance(x, float) and x != x) for x in s.tolist()),
            dtype=bool,
            count=s.shape[0],
        )
    elif s.dtype.kind == "f":
        missing = np.isnan(s)
    else:
        missing = np.zeros(s.shape[0], dtype=bool)
    s, v = s[~missing], v[~missing]
    uniq, counts = np.unique(s, return_counts=True)
    if (counts > 1).any():
        dup = uniq[counts > 1].tolist()[0]
        raise AnalyticsError(
            f"seed {dup!r} appears {int(counts[counts > 1][0])} times in seeds_{side}; "
            "pass one run per seed (e.g. the latest completed attempt)",
            argument=f"seeds_{side}",
        )
    return s, v, int(missing.sum())


def pair_by_seed(seeds_a: Any, values_a: Any, seeds_b: Any, values_b: Any) -> Pairing:
    """Match two cases' runs on their seed, for paired tests.

    Raises:
        AnalyticsError: lengths differ, a seed repeats within one side, or seeds of the
            two sides do not compare.
    """
    sa, va, ma = _seed_side(seeds_a, values_a, "a")
    sb, vb, mb = _seed_side(seeds_b, values_b, "b")
    try:
        common, ia, ib = np.intersect1d(sa, sb, assume_unique=True, return_indices=True)
    except TypeError:
        raise AnalyticsError(
            "seeds_a and seeds_b have types that do not compare; pass seeds of one type",
            argument="seeds_b",
        ) from None
    return Pairing(
        seeds=common,
        a=va[ia],
        b=vb[ib],
        unpaired_a=int(sa.shape[0] - common.shape[0] + ma),
        unpaired_b=int(sb.shape[0] - common.shape[0] + mb),
    )


def _paired_diffs(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray, int]:
    x = as_values(a, "a")
    y = as_values(b, "b")
    if x.shape != y.shape:
        raise AnalyticsError(
            f"paired samples must have the same length, got {x.shape[0]} and {y.shape[0]}; "
            "match runs first with pair_by_seed",
            argument="b",
        )
    bad = np.isnan(x) | np.isnan(y)
    return x[~bad], y[~bad], int(bad.sum())


def paired_t(a: Any, b: Any, *, confidence: float = 0.95) -> Comparison:
    """Paired t test on ``a[i] - b[i]`` (R's ``t.test(a, b, paired = TRUE)``).

    Raises:
        AnalyticsError: lengths differ, values not numbers, bad confidence.
    """
    from scipy.special import stdtr, stdtrit

    c = check_confidence(confidence)
    x, y, dropped = _paired_diffs(a, b)
    d = x - y
    n = int(d.size)
    warns = [f"{dropped} pair{'s' if dropped > 1 else ''} with NaN dropped"] if dropped else []
    stat = df = p = lo = hi = eff = None
    md = float(d.mean()) if n else None
    if n < 2:
        warns.append(f"need at least 2 pairs (got {n})")
    else:
        assert md is not None  # n >= 2
        sd = float(d.std(ddof=1))
        if sd == 0:
            warns.append("all differences are equal: t is undefined")
        else:
            se = sd / math.sqrt(n)
            stat = md / se
            df = float(n - 1)
            p = float(2.0 * stdtr(df, -abs(stat)))
            half = float(stdtrit(df, 0.5 + c / 2.0)) * se
            lo, hi = md - half, md + half
            eff = md / sd
    return Comparison(
        test="paired_t",
        statistic=stat,
        p_value=p,
        df=df,
        n_a=n,
        n_b=n,
        mean_a=_mean(x),
        mean_b=_mean(y),
        estimate=md,
        confidence=c,
        ci_low=lo,
        ci_high=hi,
        effect_size=eff,
        effect_name="cohen_dz",
        nan_dropped_a=dropped,
        nan_dropped_b=dropped,
        warnings=tuple(warns),
    )


def wilcoxon(a: Any, b: Any) -> Comparison:
    """Wilcoxon signed-rank test on paired samples; statistic V = W+ as in R.

    Raises:
        AnalyticsError: lengths differ, values not numbers.
    """
    x, y, dropped = _paired_diffs(a, b)
    d = x - y
    warns = [f"{dropped} pair{'s' if dropped > 1 else ''} with NaN dropped"] if dropped else []
    zeros = int((d == 0).sum())
    nz = d[d != 0]
    n = int(nz.size)
    stat = p = method = eff = None
    if zeros:
        warns.append(f"{zeros} zero difference{'s' if zeros > 1 else ''} dropped")
    if n == 0:
        warns.append("no non-zero differences: the test is undefined")
    else:
        from scipy import stats as sps

        ranks = sps.rankdata(np.abs(nz))
        w_plus = float(ranks[nz > 0].sum())
        w_minus = float(ranks[nz < 0].sum())
        ties = bool((np.diff(np.sort(np.abs(nz))) == 0).any())
        method = "exact" if (n < 50 and not ties and not zeros) else "asymptotic"
        res = sps.wilcoxon(
            nz, zero_method="wilcox", correction=True, alternative="two-sided", method=method
        )
        stat, p = w_plus, float(res.pvalue)
        eff = (w_plus - w_minus) / (w_plus + w_minus)
        if method == "asymptotic" and n < 50:
            warns.append("ties or zeros: normal approximation with continuity correction")
    return Comparison(
        test="wilcoxon",
        statistic=stat,
        p_value=p,
        df=None,
        method=method,
        n_a=int(x.size),
        n_b=int(y.size),
        mean_a=_mean(x),
        mean_b=_mean(y),
        estimate=float(d.mean()) if d.size else None,
        effect_size=eff,
        effect_name="rank_biserial",
        nan_dropped_a=dropped,
        nan_dropped_b=dropped,
        warnings=tuple(warns),
    )


# ------------------------------------------------------------------ multiple tests


def holm(p_values: Any) -> np.ndarray:
    """Holm's step-down adjustment: ``min(1, cummax((m - i) · p_(i)))`` in p order.

    NaN p-values stay NaN and are not counted in m (as R's ``p.adjust``).

    Raises:
        AnalyticsError: p-values outside [0, 1] or not 1-D.
    """
    p = as_values(p_values, "p_values")
    ok = ~np.isnan(p)
    pv = p[ok]
    if pv.size and (pv.min() < 0 or pv.max() > 1):
        raise AnalyticsError(
            f"p-values must lie in [0, 1], got {float(pv[(pv < 0) | (pv > 1)][0])!r}",
            argument="p_values",
        )
    m = pv.size
    order = np.argsort(pv, kind="stable")
    adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * pv[order]))
    res = np.empty(m)
    res[order] = adj
    out = np.full(p.shape, np.nan)
    out[ok] = res
    return out


def _from_mapping(groups: Mapping[Any, Any]) -> tuple[list[Any], np.ndarray, np.ndarray]:
    """Flatten ``{label: values}`` into sorted labels, one value column and codes."""
    if not isinstance(groups, Mapping):
        raise AnalyticsError(
            f"groups must be a mapping label -> values, got {type(groups).__name__}",
            argument="groups",
        )
    keys = list(groups.keys())
    karr = np.empty(len(keys), dtype=object)
    karr[:] = [k.item() if isinstance(k, np.generic) else k for k in keys]
    names, kcodes = group_codes(karr, name="group labels")
    arrays = [as_values(groups[k], f"groups[{karr[i]!r}]") for i, k in enumerate(keys)]
    x = np.concatenate(arrays) if arrays else np.empty(0)
    codes = np.repeat(kcodes, [a.shape[0] for a in arrays]).astype(np.intp)
    return names, x, codes


class PairRow(Result, frozen=True, kw_only=True):
    a: Any
    b: Any
    n_a: int
    n_b: int
    mean_a: float | None
    mean_b: float | None
    statistic: float | None
    df: float | None
    p_value: float | None
    p_adjusted: float | None
    effect_size: float | None
    method: str | None = None


class PairwiseResult(Result, frozen=True, kw_only=True):
    """All pairs (a < b in label order) with raw and Holm-adjusted p-values."""

    test: str
    adjustment: str
    effect_name: str
    groups: tuple[Any, ...]
    pairs: tuple[PairRow, ...]
    warnings: tuple[str, ...] = ()


def _mwu_pairs(
    sg: SortedGroups, ia: np.ndarray, ib: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    """U and p for many pairs: one scipy call per (n_a, n_b, method) bucket."""
    from scipy import stats as sps

    k = ia.shape[0]
    u = np.full(k, np.nan)
    p = np.full(k, np.nan)
    methods: list[str | None] = [None] * k
    counts = sg.counts
    width = int(counts.max()) if counts.size else 0
    pad = np.full((counts.size, max(width, 1)), np.nan)
    if sg.values.size:
        pos = np.arange(sg.values.size) - np.repeat(sg.starts, counts)
        pad[np.repeat(np.arange(counts.size), counts), pos] = sg.values
    na, nb = counts[ia], counts[ib]
    ok = (na > 0) & (nb > 0)
    if not ok.any():
        return u, p, methods
    # ties within a pair: both samples are sorted, so merge-sort the concatenation
    keys = np.stack([na, nb], axis=1)[ok]
    idx_ok = np.flatnonzero(ok)
    for sa, sb in np.unique(keys, axis=0).tolist():
        sel = idx_ok[(keys[:, 0] == sa) & (keys[:, 1] == sb)]
        xa = pad[ia[sel], :sa]
        xb = pad[ib[sel], :sb]
        merged = np.sort(np.concatenate([xa, xb], axis=1), axis=1)
        ties = (np.diff(merged, axis=1) == 0).any(axis=1)
        for tie_flag in (False, True):
            part = ties == tie_flag
            if not part.any():
                continue
            method = _mwu_method(sa, sb, tie_flag)
            res = sps.mannwhitneyu(
                xa[part], xb[part], alternative="two-sided", method=method, axis=1
            )
            rows = sel[part]
            u[rows] = res.statistic
            p[rows] = res.pvalue
            for r in rows.tolist():
                methods[r] = method
    return u, p, methods


def pairwise(groups: Mapping[Any, Any], *, test: str = "welch") -> PairwiseResult:
    """Every pair of groups compared with ``test`` (welch, student, mannwhitney), pairs
    in label order, Holm's correction over the pairs that have a p-value.

    Vectorised: t tests from per-group moments in one pass; Mann-Whitney with one scipy
    call per bucket of pairs of equal sizes. Each row equals the two-sample function's
    result on that pair.

    Raises:
        AnalyticsError: unknown test, groups not a mapping of numeric arrays.
    """
    if test not in TESTS:
        raise AnalyticsError(
            f"test must be one of {', '.join(TESTS)}, got {test!r}", argument="test"
        )
    names, x, codes = _from_mapping(groups)
    sg = SortedGroups(x, codes, len(names))
    mean, var = moments(sg)
    ia, ib = np.triu_indices(len(names), 1)
    na, nb = sg.counts[ia], sg.counts[ib]
    warns: list[str] = []
    dropped = int(sg.nan_dropped.sum())
    if dropped:
        warns.append(f"{dropped} NaN value{'s' if dropped > 1 else ''} dropped")
    methods: list[str | None] = [None] * ia.shape[0]
    if test == "mannwhitney":
        stat, p, methods = _mwu_pairs(sg, ia, ib)
        df = np.full(ia.shape[0], np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            eff = 2.0 * stat / (na * nb) - 1.0
        effect_name = "cliffs_delta"
    else:
        stat, df, _ = _t_arrays(na, mean[ia], var[ia], nb, mean[ib], var[ib], test == "student")
        p = _t_p(stat, df)
        n = (na + nb).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            sp = _pooled_sd(na, var[ia], nb, var[ib])
            eff = np.where(sp > 0, (mean[ia] - mean[ib]) / sp, np.nan) * hedges_j(n - 2)
        effect_name = "hedges_g"
    adj = holm(p)
    small = [str(names[g]) for g in np.flatnonzero(sg.counts < 2).tolist()]
    if small and test != "mannwhitney":
        warns.append(f"groups with fewer than 2 values get no p-value: {', '.join(small)}")
    rows = tuple(
        PairRow(
            a=names[i],
            b=names[j],
            n_a=int(sg.counts[i]),
            n_b=int(sg.counts[j]),
            mean_a=float_or_none(mean[i]),
            mean_b=float_or_none(mean[j]),
            statistic=float_or_none(stat[k]),
            df=float_or_none(df[k]),
            p_value=float_or_none(p[k]),
            p_adjusted=float_or_none(adj[k]),
            effect_size=float_or_none(eff[k]),
            method=methods[k],
        )
        for k, (i, j) in enumerate(zip(ia.tolist(), ib.tolist()))
    )
    return PairwiseResult(
        test=test,
        adjustment="holm",
        effect_name=effect_name,
        groups=tuple(names),
        pairs=rows,
        warnings=tuple(warns),
    )


# ------------------------------------------------------------------------- ranking


class MeanRankRow(Result, frozen=True, kw_only=True):
    rank: int
    group: Any
    n: int
    mean: float
    std: float | None
    ci_low: float | None
    ci_high: float | None


class Unranked(Result, frozen=True, kw_only=True):
    group: Any
    reason: str


class RankingResult(Result, frozen=True, kw_only=True):
    """Groups ordered best first by mean, with the t interval of each mean."""

    direction: str
    confidence: float
    ranking: tuple[MeanRankRow, ...]
    unranked: tuple[Unranked, ...] = ()


def rank_with_ci(
    groups: Mapping[Any, Any], *, direction: str = "min", confidence: float = 0.95
) -> RankingResult:
    """Rank groups (cases) by mean, best first; ties keep label order. A group with no
    values or a NaN mean is listed as unranked with its reason; n=1 is ranked without
    an interval.

    Raises:
        AnalyticsError: direction not min/max, bad confidence, bad groups.
    """
    if direction not in ("min", "max"):
        raise AnalyticsError(
            f"direction must be 'min' or 'max', got {direction!r}", argument="direction"
        )
    c = check_confidence(confidence)
    names, x, codes = _from_mapping(groups)
    sg = SortedGroups(x, codes, len(names))
    mean, var = moments(sg)
    n = sg.counts
    sd = np.sqrt(var)
    lo = np.full(len(names), np.nan)
    hi = np.full(len(names), np.nan)
    two = n >= 2
    if two.any():
        from scipy.special import stdtrit

        with np.errstate(invalid="ignore"):
            half = stdtrit(n[two] - 1, 0.5 + c / 2.0) * sd[two] / np.sqrt(n[two])
            half = np.where(sd[two] == 0, 0.0, half)
        lo[two] = mean[two] - half
        hi[two] = mean[two] + half
    rankable = ~np.isnan(mean)
    idx = np.flatnonzero(rankable)
    key = mean[idx] if direction == "min" else -mean[idx]
    idx = idx[np.argsort(key, kind="stable")]
    ranking = tuple(
        MeanRankRow(
            rank=r + 1,
            group=names[g],
            n=int(n[g]),
            mean=float(mean[g]),
            std=float_or_none(sd[g]),
            ci_low=float_or_none(lo[g]),
            ci_high=float_or_none(hi[g]),
        )
        for r, g in enumerate(idx.tolist())
    )
    unranked = tuple(
        Unranked(
            group=names[g],
            reason="no values" if n[g] == 0 else "mean is NaN (+inf and -inf values)",
        )
        for g in np.flatnonzero(~rankable).tolist()
    )
    return RankingResult(direction=direction, confidence=c, ranking=ranking, unranked=unranked)
