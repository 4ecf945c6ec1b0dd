"""describe/grouped against R's published output and hand computations."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.analytics.stats import AnalyticsError, describe, grouped, split_groups

# R's `sleep` data set (Cushny & Peebles 1905, Student 1908): extra hours of sleep,
# group 1 then group 2, patients ID 1..10 in each.
SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]
SLEEP = SLEEP_1 + SLEEP_2


def _type7(sorted_x, p):
    """Hyndman & Fan type 7 (R's default) written out: h = (n-1)p + 1 (1-based)."""
    n = len(sorted_x)
    h = (n - 1) * p + 1
    lo = math.floor(h)
    return sorted_x[lo - 1] + (h - lo) * (sorted_x[min(lo, n - 1)] - sorted_x[lo - 1])


def test_describe_sleep_matches_r_summary_and_t_test():
    s = describe(SLEEP, percentiles=(5, 25, 75, 95))
    # R: summary(sleep$extra): -1.600 -0.025 0.950 1.540 3.400 5.500; sd = 2.01792
    assert s.count == 20
    assert s.mean == pytest.approx(1.54, abs=1e-12)
    assert s.median == pytest.approx(0.95, abs=1e-12)
    assert s.min == -1.6 and s.max == 5.5
    assert s.std == pytest.approx(2.01792, abs=5e-6)
    assert s.percentiles["p25"] == pytest.approx(-0.025, abs=1e-12)
    assert s.percentiles["p75"] == pytest.approx(3.4, abs=1e-12)
    # R: quantile(sleep$extra, c(.05, .95)) by the type-7 definition
    xs = sorted(SLEEP)
    assert s.percentiles["p5"] == pytest.approx(_type7(xs, 0.05), abs=1e-12)
    assert s.percentiles["p5"] == pytest.approx(-1.22, abs=1e-12)
    assert s.percentiles["p95"] == pytest.approx(4.645, abs=1e-12)
    # R: t.test(sleep$extra): 95 percent confidence interval 0.5955845 2.4844155
    assert s.ci_low == pytest.approx(0.5955845, abs=5e-8)
    assert s.ci_high == pytest.approx(2.4844155, abs=5e-8)
    assert s.warnings == ()


def test_grouped_sleep_matches_r_t_test_per_group():
    g = grouped(SLEEP, ["1"] * 10 + ["2"] * 10)
    one, two = g.groups
    assert (one.group, two.group) == ("1", "2")
    # R: t.test(sleep$extra[1:10]) -> mean 0.75, CI -0.5297804 2.0297804
    assert one.mean == pytest.approx(0.75)
    assert (one.ci_low, one.ci_high) == (
        pytest.approx(-0.5297804, abs=5e-8),
        pytest.approx(2.0297804, abs=5e-8),
    )
    # R: t.test(sleep$extra[11:20]) -> mean 2.33, CI 0.8976775 3.7623225
    assert two.mean == pytest.approx(2.33)
    assert (two.ci_low, two.ci_high) == (
        pytest.approx(0.8976775, abs=5e-8),
        pytest.approx(3.7623225, abs=5e-8),
    )
    assert one.std == pytest.approx(1.7890097, abs=5e-8)
    assert two.std == pytest.approx(2.0022487, abs=5e-8)


def test_percentiles_match_r_type7_on_1_to_10():
    # R: quantile(1:10, c(.05, .25, .5, .75, .95)) -> 1.45 3.25 5.50 7.75 9.55
    s = describe(np.arange(1, 11), percentiles=(5, 25, 50, 75, 95))
    assert s.percentiles == {
        "p5": pytest.approx(1.45),
        "p25": pytest.approx(3.25),
        "p50": pytest.approx(5.5),
        "p75": pytest.approx(7.75),
        "p95": pytest.approx(9.55),
    }
    assert describe([1, 2, 3], percentiles=(97.5,)).percentiles == {"p97.5": pytest.approx(2.95)}


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9, max_value=1e9),
        min_size=1,
        max_size=30,
    ),
    st.lists(st.integers(0, 3), min_size=30, max_size=30),
)
def test_grouped_percentiles_equal_numpy_linear_exactly(values, labels):
    labels = labels[: len(values)]
    q = (0, 5, 25, 50, 75, 95, 100)
    res = grouped(values, labels, percentiles=q)
    x, lab = np.array(values), np.array(labels)
    for row in res.groups:
        part = x[lab == row.group]
        expect = np.percentile(part, q)
        got = [row.percentiles[f"p{p}"] for p in q]
        np.testing.assert_array_equal(got, expect)
        assert row.median == np.median(part)
        assert row.min == part.min() and row.max == part.max()


def test_grouped_row_equals_describe_of_that_group_including_bootstrap():
    rng = np.random.default_rng(7)
    x = rng.normal(size=300)
    x[rng.integers(0, 300, 20)] = np.nan
    labels = rng.choice(["b", "a", "c"], size=300)
    g = grouped(x, labels, bootstrap=500, seed=3)
    assert [r.group for r in g.groups] == ["a", "b", "c"]
    for row in g.groups:
        alone = describe(x[labels == row.group], bootstrap=500, seed=3).to_dict()
        got = row.to_dict()
        assert got.pop("group") == row.group
        alone.pop("group")
        assert got.keys() == alone.keys()
        for key, val in alone.items():
            if isinstance(val, float):
                assert got[key] == pytest.approx(val, rel=1e-12), key
            elif isinstance(val, dict):
                assert got[key] == pytest.approx(val, rel=1e-12), key
            else:
                assert got[key] == val, key


def test_n0_n1_and_all_nan_group():
    empty = describe([])
    assert empty.count == 0 and empty.mean is None and empty.std is None
    assert empty.ci_low is None and empty.percentiles["p5"] is None
    assert empty.warnings == ("no values: nothing to describe",)

    one = describe([4.2])
    assert one.count == 1 and one.mean == 4.2 and one.median == 4.2
    assert one.std is None and one.sem is None
    assert one.ci_low is None and one.ci_high is None  # no interval, not NaN
    assert one.warnings == ("n=1: no confidence interval",)
    assert describe([4.2], bootstrap=100).boot_low is None

    g = grouped([1.0, np.nan, np.nan, 2.0, 3.0], ["a", "b", "b", "a", "a"])
    b = g.groups[1]
    assert (b.group, b.count, b.nan_dropped, b.mean) == ("b", 0, 2, None)
    assert b.warnings == ("2 NaN values dropped", "no values: nothing to describe")


def test_nan_values_are_dropped_and_counted():
    s = describe([1.0, np.nan, 3.0, None, 5.0])
    assert s.count == 3 and s.nan_dropped == 2
    assert s.mean == 3.0 and s.std == 2.0
    assert s.warnings[0] == "2 NaN values dropped"


def test_all_equal_values_give_std_zero_and_a_zero_width_interval():
    s = describe([2.5] * 6, bootstrap=200)
    assert s.std == 0.0 and s.sem == 0.0
    assert s.ci_low == s.ci_high == 2.5
    assert s.boot_low == s.boot_high == 2.5
    assert "all values equal: std 0, the interval has zero width" in s.warnings


def test_small_sample_warning_uses_min_n():
    assert describe([1.0, 2.0]).warnings == (
        "small sample (n=2 < min_n=3): the interval is unreliable",
    )
    assert describe([1.0, 2.0], min_n=2).warnings == ()


def test_infinite_values_are_kept_and_flagged():
    s = describe([1.0, 2.0, np.inf])
    assert s.count == 3 and s.max == math.inf and s.mean == math.inf
    assert s.std is None and s.ci_low is None
    assert s.median == 2.0
    assert "1 infinite value: mean, std and intervals are not finite" in s.warnings


def test_bootstrap_is_repeatable_and_seed_dependent():
    rng = np.random.default_rng(1)
    x = rng.exponential(size=40)
    a = describe(x, bootstrap=2000, seed=11)
    b = describe(x, bootstrap=2000, seed=11)
    c = describe(x, bootstrap=2000, seed=12)
    assert (a.boot_low, a.boot_high) == (b.boot_low, b.boot_high)
    assert (a.boot_low, a.boot_high) != (c.boot_low, c.boot_high)
    # resampled from the sorted sample: the row order of the input does not matter
    d = describe(x[::-1], bootstrap=2000, seed=11)
    assert (d.boot_low, d.boot_high) == (a.boot_low, a.boot_high)
    # the percentile interval brackets the mean and is near the t interval here
    assert a.boot_low < a.mean < a.boot_high
    assert a.boot_low == pytest.approx(a.ci_low, rel=0.15)
    assert a.boot_high == pytest.approx(a.ci_high, rel=0.15)


def test_bootstrap_chunking_does_not_change_the_result():
    # 5000 values -> 209 resamples per chunk; the stream must equal one big draw
    rng = np.random.default_rng(2)
    x = np.sort(rng.normal(size=5000))
    s = describe(x, bootstrap=300, seed=5)
    gen = np.random.Generator(np.random.PCG64(5))
    means = np.concatenate(
        [x[gen.integers(0, 5000, size=(m, 5000))].mean(axis=1) for m in (209, 91)]
    )
    lo, hi = np.percentile(means, [2.5, 97.5])
    assert (s.boot_low, s.boot_high) == (pytest.approx(lo, rel=1e-12), pytest.approx(hi, rel=1e-12))


@pytest.mark.parametrize(("n", "statistic"), [(7, "mean"), (40, "median"), (5000, "mean")])
def test_bootstrap_resamples_are_scipys(n, statistic):
    """Ours draws exactly scipy.stats.bootstrap's resamples (same generator, same
    batches); the interval is the percentiles of that distribution."""
    import warnings

    from scipy import stats

    x = np.sort(np.random.default_rng(n).normal(size=n))
    s = describe(x, bootstrap=300, seed=5, statistic=statistic)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.bootstrap(
            (x,),
            np.mean if statistic == "mean" else np.median,
            n_resamples=300,
            batch=max(1, (1 << 20) // n),
            vectorized=True,
            method="percentile",
            confidence_level=0.95,
            rng=np.random.Generator(np.random.PCG64(5)),
        )
    alpha = 1.0 - 0.95  # the levels as describe() spells them: 2.5000000000000022, ...
    lo, hi = np.percentile(res.bootstrap_distribution, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    assert (s.boot_low, s.boot_high) == (lo, hi)


def test_bootstrap_median_statistic():
    s = describe([1, 2, 3, 4, 100], bootstrap=500, statistic="median")
    assert 1 <= s.boot_low <= 3 <= s.boot_high <= 100


def test_group_order_is_code_point_order_and_missing_last():
    g = grouped([1, 2, 3, 4, 5, 6], np.array(["b", "B", "a", "é", "Z", None], dtype=object))
    assert [r.group for r in g.groups] == ["B", "Z", "a", "b", "é", None]
    g = grouped([1, 2, 3, 4], [10.0, np.nan, 2.0, 10.0])
    assert [(r.group, r.count) for r in g.groups] == [(2.0, 1), (10.0, 2), (None, 1)]


def test_to_dict_is_json_without_nan():
    g = grouped([1.0, np.nan, 2.0], ["a", "b", "a"], bootstrap=10)
    text = json.dumps(g.to_dict(), allow_nan=False)
    assert '"mean": null' in text and '"ci_low": null' in text


def test_split_groups_keeps_order_within_groups():
    parts = split_groups([5, 1, 4, 2, np.nan], ["y", "x", "y", "x", "x"])
    assert list(parts) == ["x", "y"]
    np.testing.assert_array_equal(parts["x"], [1, 2, np.nan])
    np.testing.assert_array_equal(parts["y"], [5, 4])


def test_errors_name_the_argument_and_the_fix():
    with pytest.raises(
        AnalyticsError,
        match=r"confidence must be between 0 and 1 \(exclusive\), got 1.5; use e.g. 0.95",
    ):
        describe([1, 2], confidence=1.5)
    with pytest.raises(
        AnalyticsError,
        match=r"values must be one-dimensional \(one value per run\), got shape \(2, 2\)",
    ):
        describe([[1, 2], [3, 4]])
    with pytest.raises(
        AnalyticsError,
        match=r"values must be numbers, got <U1 \(e.g. 'a'\); convert the column to floats",
    ):
        describe(["a", "b"])
    with pytest.raises(
        AnalyticsError,
        match=r"labels mix types that do not compare \(int, str\); convert the labels to one type",
    ):
        grouped([1, 2], np.array([1, "a"], dtype=object))
    with pytest.raises(
        AnalyticsError, match=r"values and labels must have the same length, got 2 and 3"
    ):
        grouped([1, 2], ["a", "b", "c"])
    with pytest.raises(AnalyticsError, match=r"percentiles must lie in \[0, 100\]"):
        describe([1, 2], percentiles=(50, 101))
    with pytest.raises(AnalyticsError, match=r"bootstrap must be a positive number of resamples"):
        describe([1, 2], bootstrap=0)
    err = pytest.raises(AnalyticsError, describe, [1], statistic="mode")
    assert err.value.argument == "statistic"
