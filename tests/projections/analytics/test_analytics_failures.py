"""Failure analysis against published values (Newcombe 1998, Agresti, Fisher's tea
tasting) and hand computations."""

from __future__ import annotations

import json
import math
from statistics import NormalDist

import numpy as np
import pytest

from projections.analytics import failures as fl
from projections.analytics.stats import AnalyticsError

Z95 = NormalDist().inv_cdf(0.975)


def _wilson_by_hand(k, n, z=Z95):
    """Wilson (1927): the roots p of (p̂ - p)^2 = z^2 p (1 - p) / n."""
    p = k / n
    # (1 + z²/n) p² - (2p̂ + z²/n) p + p̂² = 0
    a = 1 + z * z / n
    b = -(2 * p + z * z / n)
    c = p * p
    disc = math.sqrt(b * b - 4 * a * c)
    return (-b - disc) / (2 * a), (-b + disc) / (2 * a)


@pytest.mark.parametrize(
    "k, n, low, high",
    [
        # Newcombe (1998), Stat Med 17:857, Table I, method 3 (score, no correction)
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0000, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_matches_newcombe_1998(k, n, low, high):
    lo, hi = fl.wilson(k, n)
    assert lo == pytest.approx(low, abs=5e-5)
    assert hi == pytest.approx(high, abs=5e-5)
    by_hand = _wilson_by_hand(k, n)
    assert lo == pytest.approx(max(0.0, by_hand[0]), abs=1e-12)
    assert hi == pytest.approx(by_hand[1], rel=1e-12)


def test_wilson_edges():
    n = 12
    lo, hi = fl.wilson(n, n)
    assert hi == 1.0 and lo == pytest.approx(n / (n + Z95**2), rel=1e-12)
    lo, hi = fl.wilson(0, n)
    assert lo == 0.0 and hi == pytest.approx(Z95**2 / (n + Z95**2), rel=1e-12)
    assert fl.wilson(0, 0) == (None, None)
    z90 = NormalDist().inv_cdf(0.95)
    assert fl.wilson(3, 10, 0.90)[0] == pytest.approx(_wilson_by_hand(3, 10, z90)[0], rel=1e-12)
    lo, hi = fl.wilson_arrays(np.array([0, 5, 3]), np.array([0, 10, 3]))
    assert math.isnan(lo[0]) and hi[2] == 1.0
    with pytest.raises(AnalyticsError, match=r"failure counts must satisfy 0 <= k <= n"):
        fl.wilson(5, 3)
    with pytest.raises(AnalyticsError, match=r"k must be whole counts"):
        fl.wilson(1.5, 3)


def test_failure_rates_by_group_including_a_group_that_only_fails():
    labels = ["eco_a"] * 4 + ["eco_b"] * 6 + ["eco_c"] * 3
    failed = [True, True, True, True] + [True, False, False, False, False, False] + [False] * 3
    r = fl.failure_rates(labels, failed)
    a, b, c = r.groups
    assert (a.group, a.n, a.failed, a.rate, a.ci_high) == ("eco_a", 4, 4, 1.0, 1.0)
    assert a.ci_low == pytest.approx(4 / (4 + Z95**2), rel=1e-12)
    assert (b.failed, b.rate) == (1, pytest.approx(1 / 6))
    assert (b.ci_low, b.ci_high) == pytest.approx(_wilson_by_hand(1, 6), rel=1e-12)
    assert (c.rate, c.ci_low) == (0.0, 0.0)
    assert (r.overall.n, r.overall.failed) == (13, 5)
    json.dumps(r.to_dict(), allow_nan=False)
    with pytest.raises(AnalyticsError, match=r"failed must be booleans \(True = the run failed\)"):
        fl.failure_rates(["a"], ["failed"])


def _agresti_party_table():
    # Agresti (2007), An Introduction to Categorical Data Analysis, 2nd ed., table 2.5;
    # the example of R's ?chisq.test: X-squared = 30.07, df = 2, p-value = 2.954e-07
    counts = {("F", "Democrat"): 762, ("F", "Independent"): 327, ("F", "Republican"): 468,
              ("M", "Democrat"): 484, ("M", "Independent"): 239, ("M", "Republican"): 477}  # fmt: skip
    party, male = [], []
    for (gender, p), k in counts.items():
        party += [p] * k
        male += [gender == "M"] * k
    return np.array(party), np.array(male), counts


def test_chi_square_association_matches_r_and_hand_computation():
    party, male, counts = _agresti_party_table()
    res = fl.association({"party": party}, male)
    row = res.params[0]
    assert (row.kind, row.test, row.df) == ("categorical", "chi2", 2.0)
    assert row.statistic == pytest.approx(30.07, abs=5e-3)
    assert row.p_value == pytest.approx(2.954e-07, rel=5e-4)
    # hand: sum (O - E)^2 / E, V = sqrt(X² / (n (min(r, c) - 1)))
    n = sum(counts.values())
    rows = {g: sum(v for (gg, _), v in counts.items() if gg == g) for g in "FM"}
    cols = {p: sum(v for (_, pp), v in counts.items() if pp == p) for p in set(party.tolist())}
    x2 = sum(
        (o - rows[g] * cols[p] / n) ** 2 / (rows[g] * cols[p] / n) for (g, p), o in counts.items()
    )
    assert row.statistic == pytest.approx(x2, rel=1e-12)
    assert row.strength == pytest.approx(math.sqrt(x2 / n), rel=1e-12)
    assert [lv.group for lv in row.levels] == ["Democrat", "Independent", "Republican"]
    assert row.levels[2].failed == 477 and row.levels[2].n == 945


def test_fisher_exact_on_the_tea_tasting_table():
    # Fisher (1935): 8 cups, 4 milk-first; the lady called 3 of the 4 right.
    # R: fisher.test(matrix(c(3, 1, 1, 3), 2)) -> p-value = 0.4857
    poured = np.array(["milk"] * 4 + ["tea"] * 4)
    said_milk = np.array([True, True, True, False, True, False, False, False])
    row = fl.association({"poured": poured}, said_milk).params[0]
    assert row.test == "fisher"
    assert row.p_value == pytest.approx(0.4857, abs=5e-5)
    # hand: hypergeometric, P(3) = P(1) = 16/70, P(4) = P(0) = 1/70; two-sided sums
    # the tables at most as likely as the observed one
    assert row.p_value == pytest.approx(34 / 70, rel=1e-12)
    assert row.statistic == pytest.approx(9.0)  # sample odds ratio (3·3)/(1·1)
    assert row.strength == pytest.approx(0.5)  # |phi| = (9 - 1)/sqrt(4^4)


def test_point_biserial_by_hand_and_ranking_across_kinds():
    util = np.array([0.5, 0.55, 0.6, 0.62, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95])
    failed = np.array([0, 0, 0, 1, 0, 0, 1, 1, 1, 1], dtype=bool)
    host = np.array(["h1", "h2"] * 5)
    flat = np.full(10, 3)
    res = fl.association({"util": util, "host": host, "const": flat}, failed)
    assert [r.param for r in res.params] == ["util", "host", "const"]
    u = res.params[0]
    m1, m0 = util[failed].mean(), util[~failed].mean()
    p = failed.mean()
    r_hand = (m1 - m0) / util.std(ddof=0) * math.sqrt(p * (1 - p))
    assert u.statistic == pytest.approx(r_hand, rel=1e-12)
    assert u.strength == pytest.approx(abs(r_hand)) and u.test == "point_biserial"
    assert (u.mean_failed, u.mean_ok) == (pytest.approx(m1), pytest.approx(m0))
    assert res.params[2].strength is None
    assert res.params[2].warnings == ("the param has one value: no association can be measured",)
    assert (res.n, res.failed) == (10, 5)


def test_cramers_v_equals_abs_r_for_a_binary_param():
    rng = np.random.default_rng(4)
    flag = rng.random(200) < 0.4
    failed = np.where(flag, rng.random(200) < 0.5, rng.random(200) < 0.2)
    res = fl.association({"as_cat": flag.astype(str), "as_num": flag.astype(float)}, failed)
    by = {r.param: r for r in res.params}
    assert by["as_cat"].strength == pytest.approx(by["as_num"].strength, rel=1e-12)


def test_association_edge_cases():
    failed = np.array([False] * 6)
    res = fl.association({"x": [1, 2, 3, 4, 5, 6], "c": list("aabbcc")}, failed)
    assert all(r.strength is None for r in res.params)
    assert res.params[0].warnings == ("no failures",)
    # missing numeric values are dropped and counted; None is a level of a category
    res = fl.association(
        {
            "lr": np.array([0.1, None, 0.3, 0.4, 0.5, 0.6], dtype=object),
            "opt": np.array(["sgd", None, "adam", "sgd", None, "adam"], dtype=object),
        },
        np.array([True, False, False, True, False, True]),
    )
    by = {r.param: r for r in res.params}
    assert by["lr"].kind == "numeric" and (by["lr"].n, by["lr"].missing) == (5, 1)
    assert [lv.group for lv in by["opt"].levels] == ["adam", "sgd", None]
    forced = fl.association(
        {"layers": [1, 2, 3, 1, 2, 3]}, [1, 0, 0, 1, 0, 1], kinds={"layers": "categorical"}
    )
    assert forced.params[0].kind == "categorical"
    with pytest.raises(AnalyticsError, match=r"kinds names params that are not given: nope"):
        fl.association({"a": [1, 2]}, [True, False], kinds={"nope": "numeric"})
    with pytest.raises(
        AnalyticsError, match=r"failed and params\['a'\] must have the same length, got 2 and 3"
    ):
        fl.association({"a": [1, 2, 3]}, [True, False])


def test_bursts_find_a_cluster_and_nothing_in_noise():
    rng = np.random.default_rng(0)
    failed = rng.random(1000) < 0.05
    failed[500:530] = rng.random(30) < 0.7
    positions = np.arange(1000) * 2 + 1
    perm = rng.permutation(1000)  # order of the input does not matter
    res = fl.bursts(positions[perm], failed[perm], window=20)
    assert len(res.bursts) == 1
    b = res.bursts[0]
    inside = np.flatnonzero(failed[500:530]) + 500
    assert (b.start, b.end) == (positions[inside[0]], positions[inside[-1]])
    assert b.failed == int(failed[inside[0] : inside[-1] + 1].sum())
    assert b.n == inside[-1] - inside[0] + 1 and b.rate == pytest.approx(b.failed / b.n)
    assert b.ratio > 5 and b.p_value < 1e-10
    assert res.threshold == pytest.approx(0.01 / 50)

    noise = fl.bursts(np.arange(1000), rng.random(1000) < 0.1, window=20)
    assert noise.bursts == ()
    none = fl.bursts(np.arange(50), np.zeros(50, dtype=bool))
    assert none.bursts == () and none.warnings == ("no failures",)
    short = fl.bursts(np.arange(5), np.ones(5, dtype=bool), window=20)
    assert short.warnings == ("only 5 runs: fewer than one window of 20",)
    with pytest.raises(AnalyticsError, match=r"window must be a whole number >= 2, got 1"):
        fl.bursts([1, 2], [True, False], window=1)


def test_top_errors_group_messages_that_differ_in_numbers_paths_and_hex():
    msgs = [
        "CUDA out of memory at 0x7f3a2c in /home/u/run1/train.py:120",
        "CUDA out of memory at 0x9b0000 in /home/u/run7/train.py:88",
        None,
        "loss is nan at step 1200",
        "loss is nan at step 80",
        "loss is nan at step 3",
        "timeout after 3600.5 s (job 5f1c9a3e-1b2c-4d5e-8f90-a1b2c3d4e5f6)",
    ]
    top = fl.top_errors(msgs, k=3)
    assert [(g.pattern, g.count) for g in top] == [
        ("loss is nan at step <num>", 3),
        ("CUDA out of memory at <hex> in <path>:<num>", 2),
        ("(no message)", 1),
    ]
    assert top[0].example == "loss is nan at step 1200" and top[0].first_index == 3
    assert top[1].share == pytest.approx(2 / 7)
    assert fl.normalise_message(msgs[-1]) == "timeout after <num> s (job <uuid>)"
    assert fl.normalise_message("sha deadbeef01 vs C:\\tmp\\x.log") == "sha <hex> vs <path>"
    assert fl.top_errors([]) == ()
    with pytest.raises(AnalyticsError, match=r"k must be a whole number >= 1, got 0"):
        fl.top_errors(["x"], k=0)
