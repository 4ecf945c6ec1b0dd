"""Comparisons against R's t.test / wilcox.test output and hand computations."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from projections.analytics import compare as cmp
from projections.analytics.stats import AnalyticsError, describe

# R's `sleep` data (Student 1908): extra hours, group 1 and group 2, patient ID 1..10
SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]

# ?wilcox.test, Hollander & Wolfe (1973) p. 69: permeability constants, term (x) and
# 12-26 weeks (y); R: wilcox.test(x, y, alternative = "g") -> W = 35, p-value = 0.1272
HW_X = [0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46]
HW_Y = [1.15, 0.88, 0.90, 0.74, 1.21]

# ?wilcox.test, Hollander & Wolfe (1973) p. 29: Hamilton depression scale, first (x)
# and second (y) visit; R: wilcox.test(x, y, paired = TRUE, alternative = "greater")
# -> V = 40, p-value = 0.01953
HD_X = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30]
HD_Y = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29]


def _phi_upper(z):
    """P(Z > z) for a standard normal, by erfc (no scipy)."""
    return 0.5 * math.erfc(z / math.sqrt(2))


# ------------------------------------------------------------------------- t tests


def test_welch_matches_r_t_test_on_sleep():
    # R: t.test(extra ~ group, data = sleep)
    # t = -1.8608, df = 17.776, p-value = 0.07939; CI -3.3654832 0.2054832
    r = cmp.welch(SLEEP_1, SLEEP_2)
    assert r.statistic == pytest.approx(-1.8608, abs=5e-5)
    assert r.df == pytest.approx(17.776, abs=5e-4)
    assert r.p_value == pytest.approx(0.07939, abs=5e-6)
    assert r.ci_low == pytest.approx(-3.3654832, abs=5e-8)
    assert r.ci_high == pytest.approx(0.2054832, abs=5e-8)
    assert (r.mean_a, r.mean_b) == (pytest.approx(0.75), pytest.approx(2.33))
    assert r.estimate == pytest.approx(-1.58)
    assert r.effect_name == "hedges_g" and r.effect_size == pytest.approx(
        cmp.hedges_g(SLEEP_1, SLEEP_2)
    )


def test_student_matches_r_t_test_var_equal_on_sleep():
    # R: t.test(extra ~ group, data = sleep, var.equal = TRUE)
    # t = -1.8608, df = 18, p-value = 0.07919; CI -3.363874 0.203874
    r = cmp.student(SLEEP_1, SLEEP_2)
    assert r.statistic == pytest.approx(-1.8608, abs=5e-5)
    assert r.df == 18
    assert r.p_value == pytest.approx(0.07919, abs=5e-6)
    assert r.ci_low == pytest.approx(-3.363874, abs=5e-7)
    assert r.ci_high == pytest.approx(0.203874, abs=5e-7)


def test_paired_t_matches_r_on_sleep():
    # R: t.test(sleep$extra[1:10], sleep$extra[11:20], paired = TRUE)
    # t = -4.0621, df = 9, p-value = 0.002833; CI -2.4598858 -0.7001142; mean diff -1.58
    r = cmp.paired_t(SLEEP_1, SLEEP_2)
    assert r.statistic == pytest.approx(-4.0621, abs=5e-5)
    assert r.df == 9
    assert r.p_value == pytest.approx(0.002833, abs=5e-7)
    assert r.ci_low == pytest.approx(-2.4598858, abs=5e-8)
    assert r.ci_high == pytest.approx(-0.7001142, abs=5e-8)
    assert r.estimate == pytest.approx(-1.58)
    d = np.subtract(SLEEP_1, SLEEP_2)
    assert r.effect_size == pytest.approx(d.mean() / d.std(ddof=1))


def test_t_tests_with_too_few_or_constant_values_give_none_not_nan():
    r = cmp.welch([1.0], [2.0, 3.0])
    assert r.statistic is None and r.p_value is None and r.ci_low is None
    assert r.warnings == ("need at least 2 values in each sample (got 1 and 2)",)
    r = cmp.student([1.0, 1.0], [2.0, 2.0])
    assert r.p_value is None and r.warnings == ("both samples are constant: t is undefined",)
    r = cmp.paired_t([1.0, 2.0, 3.0], [0.0, 1.0, 2.0])
    assert r.p_value is None and r.warnings == ("all differences are equal: t is undefined",)
    json.dumps(r.to_dict(), allow_nan=False)


def test_nan_values_are_dropped_and_counted():
    r = cmp.welch(SLEEP_1 + [math.nan], [math.nan] + SLEEP_2)
    assert (r.n_a, r.n_b, r.nan_dropped_a, r.nan_dropped_b) == (10, 10, 1, 1)
    assert r.p_value == pytest.approx(cmp.welch(SLEEP_1, SLEEP_2).p_value, rel=1e-12)
    assert r.warnings == ("1 NaN value dropped from a", "1 NaN value dropped from b")
    p = cmp.paired_t(SLEEP_1 + [1.0], SLEEP_2 + [math.nan])
    assert p.n_a == 10 and p.nan_dropped_a == 1
    assert p.p_value == pytest.approx(cmp.paired_t(SLEEP_1, SLEEP_2).p_value)


# ---------------------------------------------------------------------- rank tests


def test_mannwhitney_exact_matches_r_and_enumeration():
    r = cmp.mannwhitney(HW_X, HW_Y)
    assert r.statistic == 35  # R: W = 35 (U of the first sample)
    assert r.method == "exact"
    # exact null distribution by enumeration of the C(15, 10) rank sets of x
    n1, n2 = len(HW_X), len(HW_Y)
    u = [sum(c) - n1 * (n1 + 1) // 2 for c in itertools.combinations(range(1, 16), n1)]
    upper = sum(1 for v in u if v >= 35) / len(u)
    assert upper == pytest.approx(0.1272, abs=5e-5)  # R's one-sided p-value
    assert r.p_value == pytest.approx(2 * upper, rel=1e-12)
    # Cliff's delta = 2U/(n1 n2) - 1
    assert r.effect_size == pytest.approx(2 * 35 / (n1 * n2) - 1)
    assert r.effect_size == pytest.approx(cmp.cliffs_delta(HW_X, HW_Y))


def test_mannwhitney_with_ties_matches_r_on_sleep():
    # R: wilcox.test(extra ~ group, data = sleep) -> W = 25.5, p-value = 0.06933
    # (normal approximation with continuity and tie correction)
    r = cmp.mannwhitney(SLEEP_1, SLEEP_2)
    u = sum((a > b) + 0.5 * (a == b) for a in SLEEP_1 for b in SLEEP_2)
    assert r.statistic == u == 25.5
    assert r.method == "asymptotic"
    assert r.p_value == pytest.approx(0.06933, abs=5e-6)
    # and by hand: sigma^2 = n1 n2 / 12 * ((N + 1) - sum(t^3 - t) / (N (N - 1)))
    allv = SLEEP_1 + SLEEP_2
    ties = [allv.count(v) for v in set(allv)]
    n1 = n2 = 10
    big_n = 20
    var = n1 * n2 / 12 * ((big_n + 1) - sum(t**3 - t for t in ties) / (big_n * (big_n - 1)))
    z = (abs(u - n1 * n2 / 2) - 0.5) / math.sqrt(var)
    assert r.p_value == pytest.approx(2 * _phi_upper(z), rel=1e-10)


def test_wilcoxon_signed_rank_exact_matches_r_and_enumeration():
    r = cmp.wilcoxon(HD_X, HD_Y)
    assert r.statistic == 40  # R: V = 40
    assert r.method == "exact"
    dist = [
        sum(k for k, s in zip(range(1, 10), signs) if s)
        for signs in itertools.product((0, 1), repeat=9)
    ]
    upper = sum(1 for w in dist if w >= 40) / 512
    assert upper == pytest.approx(0.01953, abs=5e-6)  # R's one-sided p-value
    assert r.p_value == pytest.approx(2 * upper, rel=1e-12) == 0.0390625
    assert r.effect_size == pytest.approx((40 - 5) / 45)


def test_wilcoxon_with_zero_and_ties_matches_r_on_sleep():
    # R: wilcox.test(sleep$extra[1:10], sleep$extra[11:20], paired = TRUE)
    # -> V = 0, p-value = 0.009091 (one zero difference dropped, one tie)
    r = cmp.wilcoxon(SLEEP_1, SLEEP_2)
    assert r.statistic == 0
    assert r.method == "asymptotic"
    assert r.p_value == pytest.approx(0.009091, abs=5e-7)
    n = 9
    var = n * (n + 1) * (2 * n + 1) / 24 - (2**3 - 2) / 48
    z = (abs(0 - n * (n + 1) / 4) - 0.5) / math.sqrt(var)
    assert r.p_value == pytest.approx(2 * _phi_upper(z), rel=1e-10)
    assert r.warnings == (
        "1 zero difference dropped",
        "ties or zeros: normal approximation with continuity correction",
    )


def test_rank_tests_on_empty_input():
    assert cmp.mannwhitney([], [1.0]).p_value is None
    r = cmp.wilcoxon([1.0, 2.0], [1.0, 2.0])
    assert r.p_value is None and "no non-zero differences: the test is undefined" in r.warnings


# --------------------------------------------------------------------- effect sizes


def test_cohen_d_and_hedges_g_by_hand():
    a, b = [1, 2, 3, 4], [3, 4, 5, 6, 7]
    va, vb = 5 / 3, 2.5  # sample variances
    sp = math.sqrt((3 * va + 4 * vb) / 7)
    d = (2.5 - 5) / sp
    assert cmp.cohen_d(a, b) == pytest.approx(d, rel=1e-12)
    j = math.gamma(3.5) / (math.sqrt(3.5) * math.gamma(3.0))  # df = 7
    assert cmp.hedges_j(7) == pytest.approx(j, rel=1e-12)
    assert cmp.hedges_g(a, b) == pytest.approx(d * j, rel=1e-12)
    # the approximation 1 - 3/(4 df - 1) is close but not what we use
    assert j == pytest.approx(1 - 3 / (4 * 7 - 1), rel=2e-3)
    assert j != pytest.approx(1 - 3 / (4 * 7 - 1), rel=1e-6)


def test_hedges_j_closed_forms():
    assert cmp.hedges_j(2) == pytest.approx(1 / math.sqrt(math.pi), rel=1e-12)
    assert cmp.hedges_j(3) == pytest.approx((math.sqrt(math.pi) / 2) / math.sqrt(1.5), rel=1e-12)
    assert cmp.hedges_j(10_000) == pytest.approx(1 - 3 / (4 * 10_000 - 1), rel=1e-9)
    assert math.isnan(cmp.hedges_j(1))


def test_effect_sizes_undefined_cases():
    assert cmp.cohen_d([1.0], [2.0, 3.0]) is None
    assert cmp.cohen_d([1.0, 1.0], [2.0, 2.0]) is None
    assert cmp.cliffs_delta([], [1.0]) is None


def test_cliffs_delta_by_hand_and_brute_force():
    # pairs: (1,2)< (1,4)< (2,2)= (2,4)< (3,2)> (3,4)< -> (1 - 4) / 6
    assert cmp.cliffs_delta([1, 2, 3], [2, 4]) == -0.5
    rng = np.random.default_rng(3)
    a = rng.integers(0, 6, 40).astype(float)
    b = rng.integers(0, 6, 30).astype(float)
    brute = (np.sign(a[:, None] - b[None, :])).sum() / (a.size * b.size)
    assert cmp.cliffs_delta(a, b) == pytest.approx(brute, rel=1e-12)


# ---------------------------------------------------------------------------- Holm


def test_holm_by_hand():
    # sorted: .005*4 = .02, .01*3 = .03, .03*2 = .06, .04*1 = .04 -> cummax .06
    got = cmp.holm([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(got, [0.03, 0.06, 0.06, 0.02], rtol=1e-12)
    # R: p.adjust(c(.01, .02, .03, .04, .05), "holm") -> 0.05 0.08 0.09 0.09 0.09
    np.testing.assert_allclose(
        cmp.holm([0.01, 0.02, 0.03, 0.04, 0.05]), [0.05, 0.08, 0.09, 0.09, 0.09], rtol=1e-12
    )


def test_holm_caps_at_one_keeps_nan_out_of_m_and_is_monotone():
    np.testing.assert_allclose(cmp.holm([0.5, 0.6, 0.9]), [1.0, 1.0, 1.0])
    got = cmp.holm([0.01, math.nan, 0.02])  # m = 2, as R's p.adjust
    assert got[0] == pytest.approx(0.02) and math.isnan(got[1]) and got[2] == pytest.approx(0.02)
    rng = np.random.default_rng(0)
    p = rng.random(50) ** 3
    adj = cmp.holm(p)
    order = np.argsort(p)
    assert (np.diff(adj[order]) >= 0).all() and (adj >= p).all() and (adj <= 1).all()
    assert cmp.holm([]).size == 0
    with pytest.raises(AnalyticsError, match=r"p-values must lie in \[0, 1\], got 1.5"):
        cmp.holm([0.1, 1.5])


# ------------------------------------------------------------------------ pairwise


def _groups():
    rng = np.random.default_rng(42)
    g = {
        "c2": rng.normal(1.0, 1.0, 6),
        "a": rng.normal(0.0, 1.0, 5),
        "B": rng.integers(0, 3, 9).astype(float),  # ties
        "b": rng.normal(0.5, 2.0, 12),
        "one": np.array([1.0]),
    }
    g["a"][2] = math.nan
    return g


@pytest.mark.parametrize("test", ["welch", "student", "mannwhitney"])
def test_pairwise_rows_equal_the_two_sample_functions(test):
    groups = _groups()
    res = cmp.pairwise(groups, test=test)
    names = sorted(groups)
    assert list(res.groups) == names
    assert [(r.a, r.b) for r in res.pairs] == list(itertools.combinations(names, 2))
    fn = getattr(cmp, test)
    for row in res.pairs:
        single = fn(groups[row.a], groups[row.b])
        assert row.n_a == single.n_a and row.n_b == single.n_b
        if single.p_value is None:
            assert row.p_value is None and row.p_adjusted is None
            continue
        assert row.statistic == pytest.approx(single.statistic, rel=1e-9)
        assert row.p_value == pytest.approx(single.p_value, rel=1e-9)
        assert row.effect_size == pytest.approx(single.effect_size, rel=1e-9, abs=1e-12)
        if test == "mannwhitney":
            assert row.method == single.method and row.df is None
        else:
            assert row.df == pytest.approx(single.df, rel=1e-9)
    ps = [r.p_value if r.p_value is not None else math.nan for r in res.pairs]
    adj = cmp.holm(ps)
    for row, a in zip(res.pairs, adj):
        assert (row.p_adjusted is None) == math.isnan(a)
        if row.p_adjusted is not None:
            assert row.p_adjusted == pytest.approx(a, rel=1e-12)
    json.dumps(res.to_dict(), allow_nan=False)


def test_pairwise_small_groups_are_reported():
    res = cmp.pairwise({"x": [1.0], "y": [1.0, 2.0, 3.0]})
    assert res.pairs[0].p_value is None
    assert res.warnings == ("groups with fewer than 2 values get no p-value: x",)
    with pytest.raises(
        AnalyticsError, match=r"test must be one of welch, student, mannwhitney, got 'anova'"
    ):
        cmp.pairwise({"x": [1.0]}, test="anova")


# ------------------------------------------------------------------------ pairing


def test_pair_by_seed_matches_r_paired_sleep():
    ids = np.arange(1, 11)
    perm = np.random.default_rng(5).permutation(10)
    p = cmp.pair_by_seed(ids[perm], np.array(SLEEP_1)[perm], ids, SLEEP_2)
    assert p.seeds.tolist() == list(range(1, 11))
    np.testing.assert_array_equal(p.a, SLEEP_1)
    np.testing.assert_array_equal(p.b, SLEEP_2)
    assert cmp.paired_t(p.a, p.b).p_value == pytest.approx(0.002833, abs=5e-7)


def test_pair_by_seed_counts_unpaired_and_refuses_duplicates():
    p = cmp.pair_by_seed(
        np.array([3, 1, None, 7], dtype=object),
        [30.0, 10.0, 99.0, 70.0],
        [1, 2, 3],
        [1.5, 2.5, 3.5],
    )
    assert p.seeds.tolist() == [1, 3]
    assert p.a.tolist() == [10.0, 30.0] and p.b.tolist() == [1.5, 3.5]
    assert (p.unpaired_a, p.unpaired_b) == (2, 1)
    with pytest.raises(
        AnalyticsError, match=r"seed 1 appears 2 times in seeds_b; pass one run per seed"
    ):
        cmp.pair_by_seed([1, 2], [0.0, 0.0], [1, 1], [0.0, 0.0])
    with pytest.raises(
        AnalyticsError, match=r"paired samples must have the same length, got 2 and 3"
    ):
        cmp.paired_t([1.0, 2.0], [1.0, 2.0, 3.0])


# ------------------------------------------------------------------------ ranking


def test_rank_with_ci_orders_by_mean_with_t_intervals():
    groups = {"s2": SLEEP_2, "s1": SLEEP_1, "tie": SLEEP_1, "none": [], "single": [5.0]}
    r = cmp.rank_with_ci(groups, direction="min")
    assert [row.group for row in r.ranking] == ["s1", "tie", "s2", "single"]
    assert [row.rank for row in r.ranking] == [1, 2, 3, 4]
    s1 = r.ranking[0]
    ref = describe(SLEEP_1)
    assert (s1.ci_low, s1.ci_high) == (pytest.approx(ref.ci_low), pytest.approx(ref.ci_high))
    assert r.ranking[3].ci_low is None  # n=1: ranked, no interval
    assert [u.to_dict() for u in r.unranked] == [{"group": "none", "reason": "no values"}]
    r = cmp.rank_with_ci(groups, direction="max")
    assert [row.group for row in r.ranking] == ["single", "s2", "s1", "tie"]
    with pytest.raises(AnalyticsError, match=r"direction must be 'min' or 'max', got 'up'"):
        cmp.rank_with_ci(groups, direction="up")
