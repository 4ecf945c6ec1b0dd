"""Outlier rules against hand-computed fences; every exclusion carries its reason."""

from __future__ import annotations

import json
import math
import statistics

import numpy as np
import pytest

from projections.analytics.outliers import (
    bounds,
    fmt_derived,
    fmt_exact,
    iqr,
    modified_z,
    zscore,
)
from projections.analytics.stats import AnalyticsError


def test_iqr_reason_has_the_documented_shape():
    # n=5, type 7: Q1 = x[1] = 1, Q3 = x[3] = 6, IQR = 5, Q3 + 1.5*IQR = 13.5
    r = iqr([0, 1, 3, 6, 50], metric="lat")
    assert r.reasons == ("lat=50.0 above Q3+1.5·IQR=13.5",)
    assert r.excluded.tolist() == [4]
    assert r.kept.tolist() == [True, True, True, True, False]
    assert r.kept_count == 4 and r.excluded_values == (50.0,)
    assert (r.fences[0].low, r.fences[0].high) == (-6.5, 13.5)


def test_iqr_matches_r_quartiles_and_flags_both_sides():
    # R: quantile(c(-20, 1:9, 100), c(.25, .75)) -> 2.5 7.5 (type 7); IQR = 5
    x = [-20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 100]
    r = iqr(x, metric="x")
    assert (r.fences[0].low, r.fences[0].high) == (2.5 - 7.5, 7.5 + 7.5)
    assert r.fences[0].scale == 5.0
    assert r.reasons == ("x=-20.0 below Q1-1.5·IQR=-5.0", "x=100.0 above Q3+1.5·IQR=15.0")
    assert r.excluded.tolist() == [0, 10]
    r3 = iqr(x, factor=3, metric="x")
    assert r3.reasons == ("x=-20.0 below Q1-3.0·IQR=-12.5", "x=100.0 above Q3+3.0·IQR=22.5")


def test_values_on_the_fence_are_kept():
    r = iqr([0, 1, 3, 6, 13.5])  # 13.5 equals Q3 + 1.5·IQR exactly
    assert r.kept.all() and r.reasons == ()


def test_zscore_against_hand_mean_and_sd():
    x = [10.0] * 5 + [11.0] * 5 + [12.0] * 5 + [9.0] * 5 + [60.0]
    mean = statistics.fmean(x)
    sd = statistics.stdev(x)  # ddof=1
    r = zscore(x, threshold=3.0, metric="loss")
    assert r.fences[0].center == pytest.approx(mean)
    assert r.fences[0].scale == pytest.approx(sd)
    assert r.excluded.tolist() == [20]
    assert abs(60.0 - mean) / sd > 3
    assert r.reasons == (f"loss=60.0 above mean+3.0·sd={fmt_derived(mean + 3 * sd)}",)
    assert r.warnings == ()


def test_zscore_warns_when_the_threshold_cannot_fire():
    r = zscore([1, 2, 3, 100])
    assert r.reasons == ()
    assert r.warnings == (
        "n=4: no value can be more than (n-1)/√n=1.5 sd from the mean, so a threshold of "
        "3.0 cannot fire; use iqr or modified_z for small samples",
    )
    assert zscore([5.0]).warnings == ("n=1: no sd, nothing excluded",)


def test_modified_z_iglewicz_hoaglin_by_hand():
    x = [2.1, 2.2, 2.3, 2.4, 2.5, 9.0]
    med = statistics.median(x)  # 2.35
    mad = statistics.median([abs(v - med) for v in x])  # 0.15
    m_scores = [0.6745 * (v - med) / mad for v in x]
    expect_out = [i for i, m in enumerate(m_scores) if abs(m) > 3.5]
    assert expect_out == [5]
    r = modified_z(x, metric="t")
    assert r.excluded.tolist() == expect_out
    high = med + 3.5 * mad / 0.6745
    assert r.fences[0].high == pytest.approx(high, rel=1e-12)
    assert r.reasons == (f"t=9.0 above median+3.5·MAD/0.6745={fmt_derived(high)}",)
    assert r.fences[0].center == pytest.approx(med)


def test_modified_z_falls_back_to_mean_ad_when_mad_is_zero():
    x = [5, 5, 5, 5, 5, 5, 1000]
    mean_ad = sum(abs(v - 5) for v in x) / len(x)
    scale = 1.253314 * mean_ad
    r = modified_z(x)
    assert r.excluded.tolist() == [6]
    assert r.fences[0].scale == pytest.approx(scale)
    assert r.reasons == (
        f"value=1000.0 above median+3.5·1.253314·meanAD={fmt_derived(5 + 3.5 * scale)}",
    )
    assert r.warnings == (
        "MAD=0 (more than half the values equal the median): scale falls back to 1.253314·meanAD",
    )


def test_all_equal_values_exclude_nothing():
    for r in (iqr([3.0] * 5), zscore([3.0] * 12), modified_z([3.0] * 5)):
        assert r.kept.all() and r.reasons == (), r.method
    assert modified_z([3.0] * 5).warnings == ("all values equal: MAD 0, nothing excluded",)


def test_nan_values_are_excluded_with_their_reason():
    r = iqr([1.0, np.nan, 2.0, 3.0], metric="lat")
    assert r.excluded.tolist() == [1]
    assert r.reasons == ("lat=nan is not a number",)
    assert r.warnings == ("1 NaN value of lat excluded",)
    assert r.fences[0].n == 3


def test_empty_and_single_value():
    r = iqr([])
    assert r.n == 0 and r.kept_count == 0 and r.excluded.tolist() == []
    assert r.fences[0].low is None
    assert iqr([7.0]).kept.tolist() == [True]


def test_bounds_are_inclusive_and_open_when_none():
    r = bounds([-1.0, 0.0, 5.0, 10.0, 10.5], low=0, high=10, metric="wns")
    assert r.excluded.tolist() == [0, 4]
    assert r.reasons == ("wns=-1.0 below low=0.0", "wns=10.5 above high=10.0")
    assert bounds([1e300, -1e300], high=None, low=None).kept.all()
    assert bounds([1.0, 2.0], high=1.5).reasons == ("value=2.0 above high=1.5",)
    with pytest.raises(AnalyticsError, match=r"low \(5\) is above high \(1\); swap them"):
        bounds([1.0], low=5, high=1)


def test_grouped_fences_are_per_group():
    values = [1, 2, 3, 4, 50, 100, 101, 102, 103, 104]
    labels = ["a"] * 5 + ["b"] * 5
    r = iqr(values, labels=labels, metric="m")
    # 50 is an outlier among a (Q1=2, Q3=4) but 100..104 are normal among b
    assert r.excluded.tolist() == [4]
    assert r.reasons == ("m=50.0 above Q3+1.5·IQR=7.0 (group a)",)
    assert [f.group for f in r.fences] == ["a", "b"]
    ungrouped = iqr(values)
    assert ungrouped.excluded.tolist() == []


def test_number_formatting_rules():
    assert fmt_exact(50) == "50.0"
    assert fmt_exact(0.1 + 0.2) == "0.30000000000000004"  # observed values: exact
    assert fmt_derived(13.500000000000002) == "13.5"  # fences: 12 significant digits
    assert fmt_derived(1 / 3) == "0.333333333333"
    assert fmt_derived(1e-7) == "1e-07"
    assert fmt_derived(math.inf) == "inf"
    assert fmt_exact(math.nan) == "nan"


def test_to_dict_is_json_ready():
    d = iqr([0, 1, 3, 6, 50, np.nan], metric="lat").to_dict()
    text = json.dumps(d, allow_nan=False)
    assert d["excluded"] == [4, 5] and d["excluded_values"] == [50.0, None]
    assert d["kept"] == [True, True, True, True, False, False]
    assert json.loads(text)["reasons"] == [
        "lat=50.0 above Q3+1.5·IQR=13.5",
        "lat=nan is not a number",
    ]


def test_bad_parameters():
    with pytest.raises(AnalyticsError, match=r"factor must be a positive number, got -1"):
        iqr([1, 2], factor=-1)
    with pytest.raises(AnalyticsError, match=r"threshold must be a positive number, got 0"):
        zscore([1, 2], threshold=0)
