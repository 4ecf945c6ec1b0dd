"""Training curves: vectorised results against per-run loops and hand-worked curves."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from projections.analytics import curves as cv
from projections.analytics.stats import AnalyticsError


def _random_runs(seed=0, runs=7, lengths=(1, 3, 40, 200)):
    rng = np.random.default_rng(seed)
    ids, steps, vals = [], [], []
    for r in range(runs):
        n = int(rng.choice(lengths))
        s = np.sort(rng.choice(np.arange(5 * n + 5), size=n, replace=False))
        v = np.exp(-s / 50) + rng.normal(0, 0.05, n)
        v[rng.random(n) < 0.1] = np.nan
        ids += [f"run-{r}"] * n
        steps += s.tolist()
        vals += v.tolist()
    perm = rng.permutation(len(ids))
    return np.array(ids)[perm], np.array(steps)[perm], np.array(vals)[perm]


def _loop_best(ids, steps, vals, direction):
    out = np.empty_like(vals)
    acc = np.fmin if direction == "min" else np.fmax
    for r in np.unique(ids):
        idx = np.flatnonzero(ids == r)
        idx = idx[np.argsort(steps[idx])]
        out[idx] = acc.accumulate(vals[idx])
    return out


@pytest.mark.parametrize("direction", ["min", "max"])
def test_best_so_far_equals_a_per_run_loop_in_input_order(direction):
    ids, steps, vals = _random_runs()
    got = cv.best_so_far(ids, steps, vals, direction=direction)
    np.testing.assert_array_equal(got, _loop_best(ids, steps, vals, direction))


def test_best_so_far_ragged_runs_take_the_per_run_path_with_the_same_result():
    # one long run and many one-point runs: the padded matrix would be huge
    ids = np.array(["long"] * 5000 + [f"s{i}" for i in range(300)])
    steps = np.concatenate([np.arange(5000), np.zeros(300, dtype=int)])
    vals = np.random.default_rng(1).normal(size=5300)
    got = cv.best_so_far(ids, steps, vals)
    np.testing.assert_array_equal(got, _loop_best(ids, steps, vals, "min"))


def test_nan_does_not_erase_the_best():
    got = cv.best_so_far(None, [0, 1, 2, 3], [np.nan, 3.0, np.nan, 4.0])
    np.testing.assert_array_equal(got, [np.nan, 3.0, 3.0, 3.0])


def test_plateau_and_convergence_on_a_hand_worked_curve():
    steps = [0, 1, 2, 3, 4, 5, 6, 7]
    loss = [10.0, 8.0, 6.0, 5.0, 5.0, 5.0, 5.0, 4.99]
    # s=2: best over (2, 5] goes 6 -> 5, gain 1 > 0.05; s=3: (3, 6] gains 0 -> plateau
    assert cv.plateau_step(steps, loss, window=3, min_delta=0.05) == 3
    # with min_delta 0 the gain 0.01 over (4, 7] does not matter for s=3 either
    assert cv.plateau_step(steps, loss, window=3) == 3
    # a window longer than what is left after every candidate: no verdict
    assert cv.plateau_step(steps, loss, window=8) is None
    # total gain 10 - 4.99 = 5.01; within 1%: best <= 4.99 + 0.0501 -> step 3 (5.0)
    assert cv.convergence_step(steps, loss, tolerance=0.01) == 3
    assert cv.convergence_step(steps, loss, tolerance=0.0) == 7
    acc = [0.1, 0.5, 0.8, 0.9, 0.9, 0.9]
    assert cv.plateau_step(range(6), acc, direction="max", window=2) == 3
    assert cv.convergence_step(range(6), acc, direction="max", tolerance=0.2) == 2


def test_slow_creep_is_not_a_plateau():
    # 0.01 per step: each step is below min_delta but the window's total is not
    steps = np.arange(100)
    loss = 5.0 - 0.01 * steps
    assert cv.plateau_step(steps, loss, window=10, min_delta=0.05) is None
    assert cv.plateau_step(steps, loss, window=10, min_delta=0.2) == 0


def test_plateau_uses_step_units_not_point_counts():
    steps = [0, 10, 20, 30, 40, 50]
    loss = [5.0, 4.0, 3.0, 3.0, 3.0, 3.0]
    assert cv.plateau_step(steps, loss, window=20) == 20
    # windows of 2 steps never hold a point when logging every 10: no evidence, no plateau
    assert cv.plateau_step(steps, loss, window=2) is None


def test_run_curves_equal_single_run_functions():
    ids, steps, vals = _random_runs(seed=3)
    res = cv.run_curves(ids, steps, vals, window=15, min_delta=0.01, tolerance=0.05)
    assert [r.run for r in res.runs] == sorted(set(ids.tolist()))
    for row in res.runs:
        m = ids == row.run
        s, v = steps[m], vals[m]
        o = np.argsort(s)
        assert row.points == m.sum() and row.nan_values == int(np.isnan(v).sum())
        assert (row.first_step, row.last_step) == (s.min(), s.max())
        assert row.plateau_step == cv.plateau_step(s, v, window=15, min_delta=0.01)
        assert row.convergence_step == cv.convergence_step(s, v, tolerance=0.05)
        fin = v[o][-1]
        assert row.final == (None if math.isnan(fin) else fin)
        if np.isnan(v).all():
            assert row.best is None and row.best_step is None
        else:
            assert row.best == np.nanmin(v)
            assert row.best_step == s[o][np.flatnonzero(v[o] == np.nanmin(v))[0]]
    json.dumps(res.to_dict(), allow_nan=False)


def test_mean_curve_exact_alignment_by_hand():
    ids = ["a", "a", "a", "b", "b", "c"]
    steps = [0, 1, 2, 0, 2, 2]
    vals = [1.0, 2.0, 3.0, 3.0, 5.0, np.nan]
    m = cv.mean_curve(ids, steps, vals)
    assert m.steps.tolist() == [0, 1, 2]
    assert m.mean.tolist() == [2.0, 2.0, 4.0]
    assert m.count.tolist() == [2, 1, 2]  # c's NaN does not count
    sd = math.sqrt(2.0)
    np.testing.assert_allclose(m.low, [2 - sd, np.nan, 4 - sd])
    np.testing.assert_allclose(m.high, [2 + sd, np.nan, 4 + sd])
    ci = cv.mean_curve(ids, steps, vals, band="ci", confidence=0.95)
    t975_1 = math.tan(math.pi * 0.475)  # t with 1 df is Cauchy: tables give 12.706
    assert ci.high[0] == pytest.approx(2 + t975_1 * sd / math.sqrt(2), rel=1e-9)
    d = ci.to_dict()
    assert d["low"][1] is None and d["count"] == [2, 1, 2]
    json.dumps(d, allow_nan=False)


def test_mean_curve_ffill_carries_values_within_each_run():
    ids = ["a", "a", "b", "b", "b"]
    steps = [0, 10, 0, 5, 20]
    vals = [1.0, 3.0, 2.0, 4.0, 6.0]
    m = cv.mean_curve(ids, steps, vals, align="ffill")
    assert m.steps.tolist() == [0, 5, 10, 20]
    # a: 1 (0), 1 (5, carried), 3 (10), - (20, after its last step)
    # b: 2 (0), 4 (5), 4 (10, carried), 6 (20)
    assert m.mean.tolist() == [1.5, 2.5, 3.5, 6.0]
    assert m.count.tolist() == [2, 2, 2, 1]


def test_input_errors():
    with pytest.raises(
        AnalyticsError, match=r"run 'a' has two values at step 3; pass one value per \(run, step\)"
    ):
        cv.best_so_far(["a", "a"], [3, 3], [1.0, 2.0])
    with pytest.raises(AnalyticsError, match=r"steps must be whole numbers, got float64"):
        cv.best_so_far(None, [0.5, 1.0], [1.0, 2.0])
    with pytest.raises(AnalyticsError, match=r"direction must be 'min' or 'max', got 'down'"):
        cv.best_so_far(None, [0], [1.0], direction="down")
    with pytest.raises(AnalyticsError, match=r"window must be a whole number >= 1, got 0"):
        cv.run_curves(None, [0], [1.0], window=0)
    with pytest.raises(
        AnalyticsError, match=r"values and steps must have the same length, got 2 and 1"
    ):
        cv.best_so_far(None, [0], [1.0, 2.0])
    assert cv.best_so_far(None, [], []).size == 0
    assert cv.run_curves(None, [], []).runs == ()
