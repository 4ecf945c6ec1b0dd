"""The analyses over hand-built ledgers, held against hand computations.

Critical values and p-values come from closed forms, not from scipy: the t quantile
with 1 df is tan(π(p - ½)) (Cauchy), with 2 df (2p - 1)/√(2p(1 - p)); the two-sided
t p-value with 2 df is 1 - |t|/√(2 + t²), with 4 df 1 - sinθ(1 + cos²θ/2) for
θ = atan(|t|/2); the exact Mann-Whitney and Wilcoxon p-values count arrangements.
"""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
from test_query import Events, chip_events

from ledger import Ledger
from projections.analytics import api
from projections.analytics.config import (
    AnalyticsConfig,
    ConfigError,
    find_config,
    load_config,
    parse_config,
)
from projections.analytics.query import Query, QueryError
from projections.analytics.stats import AnalyticsError

Z95 = 1.959963984540054  # the 0.975 normal quantile (textbook)


def t1(p: float = 0.975) -> float:
    return math.tan(math.pi * (p - 0.5))


def t2(p: float = 0.975) -> float:
    return (2 * p - 1) / math.sqrt(2 * p * (1 - p))


def p_t2(t: float) -> float:
    return 1 - abs(t) / math.sqrt(2 + t * t)


def p_t4(t: float) -> float:
    th = math.atan(abs(t) / 2)
    return 1 - math.sin(th) * (1 + math.cos(th) ** 2 / 2)


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def holm(p: list[float]) -> list[float]:
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    out = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


@pytest.fixture
def chip(tmp_path):
    with Ledger(str(tmp_path / "chip.ledger")) as led:
        led.append(chip_events().events)
        yield led


def ledger_of(tmp_path, events: Events, name: str = "x"):
    led = Ledger(str(tmp_path / f"{name}.ledger"))
    led.append(events.events)
    return led


def by(groups: list[dict], key: str = "group") -> dict:
    return {g[key]: g for g in groups}


# ----------------------------------------------------------------------------- stats


def test_stats_by_case_against_hand_values(chip):
    r = api.stats(Query(chip).study("chip").metric("wns"))
    g = by(r.data["groups"])
    assert list(g) == ["base", "s1-buf", "s1-up", "s2-up"]  # s2-dead: no completed run
    base = g["base"]
    assert (base["count"], base["mean"], base["median"], base["std"]) == (3, -11.0, -11.0, 1.0)
    assert (base["min"], base["max"]) == (-12.0, -10.0)
    half = t2() * 1.0 / math.sqrt(3)
    assert base["ci_low"] == pytest.approx(-11 - half, rel=1e-12)
    assert base["ci_high"] == pytest.approx(-11 + half, rel=1e-12)
    buf = g["s1-buf"]
    assert buf["std"] == pytest.approx(math.sqrt(0.5), rel=1e-15)
    assert buf["ci_low"] == pytest.approx(-14.5 - t1() * 0.5, rel=1e-12)
    assert g["s2-up"]["ci_high"] == pytest.approx(-2 + t1(), rel=1e-12)
    assert buf["warnings"] == ["small sample (n=2 < min_n=3): the interval is unreliable"]
    reasons = {e.run: e.reason for e in r.exclusions}
    assert reasons["f3"].endswith("bad host")
    assert reasons["d1"] == "status failed, not completed"
    assert reasons["d3"] == "status timeout, not completed"
    assert sorted(r.rows.column("run").to_pylist()) == sorted(
        ["b1", "b2", "b3", "f1", "f2", "u1", "u2", "u3", "v1", "v2"]
    )
    assert r.table.column("group").to_pylist() == ["base", "s1-buf", "s1-up", "s2-up"]
    assert r.as_of == chip.head.seq and r.query.spec.statuses == ("completed",)


@pytest.mark.parametrize(
    ("group_by", "want"),
    [
        ("stage", {0: (3, -11.0), 1: (5, -8.8), 2: (2, -2.0)}),
        ("param:lib", {"a": (6, -8.0), "b": (4, -8.25)}),
        ("eco_class", {"buffering": (2, -14.5), "sizing": (5, -3.8), None: (3, -11.0)}),
        ("eco", {"buffer": (2, -14.5), "upsize": (5, -3.8), None: (3, -11.0)}),
        ("host", {"h1": (6, -9.5), "h2": (4, -6.0)}),
        ("all", {"all": (10, -8.1)}),
    ],
)
def test_stats_grouped_by(chip, group_by, want):
    r = api.stats(Query(chip).study("chip"), metric="wns", by=group_by)
    got = {g["group"]: (g["count"], g["mean"]) for g in r.data["groups"]}
    assert list(got) == list(want)
    for k, (n, mean) in want.items():
        assert got[k][0] == n and got[k][1] == pytest.approx(mean, rel=1e-12)


def test_stats_of_case_scores_by_stage(chip):
    r = api.stats(Query(chip).study("chip"), metric="wns", agg="mean", by="stage")
    g = by(r.data["groups"])
    assert g[1]["count"] == 2 and g[1]["mean"] == pytest.approx((-5 - 14.5) / 2)
    assert r.title == "stats of mean wns per case by stage"
    assert ("s2-dead", None) in {(e.case, e.run) for e in r.exclusions}


def test_stats_n1_gives_no_interval(chip):
    r = api.stats(Query(chip).study("chip").runs(status="completed", host="h2"), metric="wns")
    base = by(r.data["groups"])["base"]
    assert base["count"] == 1 and base["mean"] == -11.0 and base["std"] is None
    assert base["ci_low"] is None and base["ci_high"] is None
    assert "group base: n=1: no confidence interval" in r.warnings


def test_stats_nan_value_left_out_with_reason(tmp_path):
    e = Events("n").add("study_created").add("case_created", case="a")
    for i, v in enumerate([1.0, 2.0, float("nan"), 3.0]):
        e.run("a", f"r{i}", {"m": v})
    with ledger_of(tmp_path, e) as led:
        r = api.stats(Query(led), metric="m")
    (g,) = r.data["groups"]
    assert g["count"] == 3 and g["mean"] == 2.0 and g["nan_dropped"] == 0
    assert [(x.run, x.reason) for x in r.exclusions] == [("r2", "m is NaN")]


def test_bootstrap_repeatable_with_seed(tmp_path):
    rng = np.random.default_rng(5)
    e = Events("boot").add("study_created")
    for case in ("a", "b"):
        e.add("case_created", case=case)
        for i, v in enumerate(rng.normal(0, 1, 15)):
            e.run(case, f"{case}{i:02d}", {"m": float(v)})
    with ledger_of(tmp_path, e) as led:
        q = Query(led).metric("m")
        one = api.stats(q, bootstrap=400, seed=11).data["groups"]
        two = api.stats(q, bootstrap=400, seed=11).data["groups"]
        other = api.stats(q, bootstrap=400, seed=12).data["groups"]
        # the row order of the log does not matter either: the same values, reversed
        values = q.table().column("m").to_pylist()
    pairs = [(g["boot_low"], g["boot_high"]) for g in one]
    assert pairs == [(g["boot_low"], g["boot_high"]) for g in two]
    assert pairs != [(g["boot_low"], g["boot_high"]) for g in other]
    a = by(one)["a"]
    assert min(values[:15]) < a["boot_low"] < a["mean"] < a["boot_high"] < max(values[:15])
    assert a["bootstrap"] == 400 and a["seed"] == 11
    e2 = Events("boot").add("study_created").add("case_created", case="a")
    for i, v in reversed(list(enumerate(values[:15]))):
        e2.run("a", f"x{i:02d}", {"m": v})
    with ledger_of(tmp_path, e2, "rev") as led:
        again = api.stats(Query(led).metric("m"), bootstrap=400, seed=11).data["groups"][0]
    assert (again["boot_low"], again["boot_high"]) == (a["boot_low"], a["boot_high"])


def test_config_defaults_and_argument_override(chip):
    cfg = AnalyticsConfig(confidence=0.9, min_n=2)
    q = Query(chip).study("chip").metric("wns")
    base = by(api.stats(q, config=cfg).data["groups"])["base"]
    assert base["ci_high"] == pytest.approx(-11 + t2(0.95) / math.sqrt(3), rel=1e-12)
    assert by(api.stats(q, config=cfg).data["groups"])["s1-buf"]["warnings"] == []
    flag = by(api.stats(q, config=cfg, confidence=0.95).data["groups"])["base"]
    assert flag["ci_high"] == pytest.approx(-11 + t2(0.975) / math.sqrt(3), rel=1e-12)


def test_unknown_group_and_metric(chip):
    q = Query(chip).study("chip")
    with pytest.raises(QueryError, match=r"cannot group by 'colour'; use one of case, stage"):
        api.stats(q, metric="wns", by="colour")
    with pytest.raises(
        QueryError, match=r"no selected case sets the param 'x' \(params: lib, util\)"
    ):
        api.stats(q, metric="wns", by="param:x")
    with pytest.raises(QueryError, match="has no metric 'nope'"):
        api.stats(q, metric="nope")
    with pytest.raises(QueryError, match="cannot group by 'host' with one row per case"):
        api.stats(q, metric="wns", agg="mean", by="host")


def test_metric_defaults_to_the_only_objective(chip):
    assert api.stats(Query(chip)).data["metric"] == "wns"


def test_metric_needed_without_single_objective(tmp_path):
    e = Events("o").add("study_created").add("case_created", case="a").run("a", "r", {"m": 1.0})
    with ledger_of(tmp_path, e) as led:
        with pytest.raises(QueryError) as err:
            api.stats(Query(led))
    assert str(err.value) == "name a metric (--metric): study 'o' has no objectives; its metrics: m"


# -------------------------------------------------------------------------- outliers


@pytest.fixture
def lat(tmp_path):
    e = Events("lat").add("study_created").add("case_created", case="c")
    for i, v in enumerate([0.0, 1.0, 3.0, 6.0, 50.0]):
        e.run("c", f"r{i}", {"lat": v})
    e.add("case_created", case="d")
    e.run("d", "n1", {"lat": float("nan")})
    with ledger_of(tmp_path, e, "lat") as led:
        yield led


def test_outliers_iqr_reason_and_kept(lat):
    r = api.outliers(Query(lat).cases("c"), metric="lat")
    assert r.data["outliers"] == [
        {"run": "r4", "case": "c", "value": 50.0, "reason": "lat=50.0 above Q3+1.5·IQR=13.5"}
    ]
    assert r.data["kept"] == 4 and r.data["method"] == "iqr"
    assert r.rows.column("kept").to_pylist() == [True, True, True, True, False]
    assert r.data["fences"][0]["high"] == 13.5 and r.data["fences"][0]["low"] == -6.5


def test_outliers_modified_z_bounds_and_nan(lat):
    mz = api.outliers(Query(lat), metric="lat", method="modified-z")
    fence = 3 + 3.5 * 3 / 0.6745  # median 3, MAD 3
    assert [o["reason"] for o in mz.data["outliers"]] == [
        f"lat=50.0 above median+3.5·MAD/0.6745={float(f'{fence:.12g}')!r}",
        "lat=nan is not a number",
    ]
    assert mz.data["kept"] == 4
    out = json.loads(mz.to_json())
    assert out["outliers"][1]["value"] == "NaN"  # the spelling of docs/architecture.md, Events
    b = api.outliers(Query(lat).cases("c"), metric="lat", method="bounds", low=0.5, high=10)
    assert [(o["run"], o["reason"]) for o in b.data["outliers"]] == [
        ("r0", "lat=0.0 below low=0.5"),
        ("r4", "lat=50.0 above high=10.0"),
    ]
    with pytest.raises(AnalyticsError, match="the bounds method needs a low and/or a high"):
        api.outliers(Query(lat), metric="lat", method="bounds")


def test_outliers_per_group_and_config(lat):
    cfg = AnalyticsConfig(outlier_method="iqr", outlier_factor=20.0)
    assert api.outliers(Query(lat).cases("c"), metric="lat", config=cfg).data["outliers"] == []
    # a flag naming another method drops the file's factor (meant for IQR)
    r = api.outliers(Query(lat).cases("c"), metric="lat", config=cfg, method="zscore")
    assert r.data["params"] == {"threshold": 3.0}
    g = api.outliers(Query(lat).cases("c"), metric="lat", by="case")
    assert g.data["outliers"][0]["reason"] == "lat=50.0 above Q3+1.5·IQR=13.5 (group c)"


# --------------------------------------------------------------------------- compare


def test_welch_student_against_closed_forms(chip):
    q = Query(chip).study("chip").metric("wns")
    t = -6 / math.sqrt(2 / 3)
    for test in ("welch", "student"):
        d = api.compare(q, a="base", b="s1-up", test=test).data
        assert (d["n_a"], d["n_b"], d["mean_a"], d["mean_b"]) == (3, 3, -11.0, -5.0)
        assert d["statistic"] == pytest.approx(t, rel=1e-12)
        assert d["df"] == pytest.approx(4.0, rel=1e-12)
        assert d["p_value"] == pytest.approx(p_t4(t), rel=1e-9)
        j = 2 / math.sqrt(2 * math.pi)  # Hedges' J at df 4: Γ(2)/(√2·Γ(3/2))
        assert d["effect_size"] == pytest.approx(-6 * j, rel=1e-12)
        assert d["test"] == test and d["a"] == "base" and d["b"] == "s1-up"


def test_mannwhitney_exact(chip):
    d = api.compare(Query(chip), metric="wns", a="base", b="s1-up", test="mannwhitney").data
    assert d["statistic"] == 0.0 and d["df"] is None
    assert d["p_value"] == pytest.approx(2 / math.comb(6, 3), rel=1e-12)
    assert d["effect_size"] == -1.0 and d["effect_name"] == "cliffs_delta"


def test_paired_by_seed(chip):
    q = Query(chip).study("chip")
    d = api.compare(q, metric="wns", a="base", b="s1-up", paired=True).data
    t = -6 / (1 / math.sqrt(3))  # differences -5, -6, -7
    assert d["test"] == "paired_t" and d["seeds"] == [1, 2, 3]
    assert d["statistic"] == pytest.approx(t, rel=1e-12) and d["df"] == 2.0
    assert d["p_value"] == pytest.approx(p_t2(t), rel=1e-9)
    assert d["effect_size"] == pytest.approx(-6.0)
    w = api.compare(q, metric="wns", a="base", b="s1-up", paired=True, test="mannwhitney").data
    assert w["test"] == "wilcoxon" and w["statistic"] == 0.0
    assert w["p_value"] == pytest.approx(2 / 2**3, rel=1e-12)
    # s2-up has seeds 1, 2 (3 failed): one base run has no partner
    r = api.compare(q, metric="wns", a="base", b="s2-up", paired=True)
    assert r.data["unpaired_a"] == 1 and r.data["n_a"] == 2
    assert "runs without a partner of the same seed left out: 1 of base, 0 of s2-up" in r.warnings


def test_pairwise_holm_against_hand(chip):
    q = Query(chip).study("chip").metric("wns")
    r = api.compare(q, cases=["base", "s1-*"])
    pairs = r.data["pairs"]
    assert [(p["a"], p["b"]) for p in pairs] == [
        ("base", "s1-buf"), ("base", "s1-up"), ("s1-buf", "s1-up"),
    ]  # fmt: skip
    raw = [p["p_value"] for p in pairs]
    assert [p["p_adjusted"] for p in pairs] == pytest.approx(holm(raw), rel=1e-12)
    assert pairs[1]["p_value"] == pytest.approx(p_t4(-6 / math.sqrt(2 / 3)), rel=1e-9)
    assert r.data["adjustment"] == "holm" and r.table.num_rows == 3
    assert {e.run for e in r.exclusions} == {"f3"}


def test_compare_errors(chip):
    q = Query(chip).study("chip").metric("wns")
    seq = chip.head.seq
    with pytest.raises(QueryError) as err:
        api.compare(q, a="base", b="nope")
    assert str(err.value) == (
        f"study 'chip' has no case 'nope' at seq {seq} (cases: base, s1-buf, s1-up, s2-dead, s2-up)"
    )
    with pytest.raises(QueryError, match="case 'base' is not selected by the query"):
        api.compare(q.stage(1), a="base", b="s1-up")
    with pytest.raises(AnalyticsError, match="name the two cases to compare"):
        api.compare(q, a="base")
    with pytest.raises(AnalyticsError, match="unknown test 'ttest'"):
        api.compare(q, a="base", b="s1-up", test="ttest")
    with pytest.raises(QueryError, match="no selected case matches 'zz\\*'"):
        api.compare(q, cases=["zz*", "base"])


def test_compare_case_with_only_failures_gives_warnings_not_a_crash(chip):
    r = api.compare(Query(chip), metric="wns", a="s2-dead", b="base")
    assert r.data["n_a"] == 0 and r.data["statistic"] is None and r.data["p_value"] is None
    assert r.warnings == ("need at least 2 values in each sample (got 0 and 3)",)
    assert {e.run for e in r.exclusions} == {"d1", "d2", "d3"}


def test_rank_ci(chip):
    r = api.rank_ci(Query(chip).study("chip"), metric="wns")
    rows = r.data["ranking"]
    assert [x["case"] for x in rows] == ["s2-up", "s1-up", "base", "s1-buf"]
    assert [x["overlaps_next"] for x in rows] == [True, False, True, None]
    assert rows[1]["ci_low"] == pytest.approx(-5 - t2() / math.sqrt(3), rel=1e-12)
    (un,) = r.data["unranked"]
    assert un["case"] == "s2-dead" and un["reason"].startswith("no values (3 run(s) left out")
    with pytest.raises(QueryError, match="a ranking needs a direction for 'area'"):
        api.rank_ci(Query(chip), metric="area")


# ----------------------------------------------------------------------- eco_effects


def test_eco_effects_against_hand(chip):
    r = api.eco_effects(Query(chip).study("chip"), metric="wns")
    edges = {(e["parent"], e["child"]): e for e in r.data["edges"]}
    assert set(edges) == {("base", "s1-up"), ("base", "s1-buf"), ("s1-up", "s2-up")}
    assert edges[("base", "s1-up")]["delta"] == 6.0  # -5 - (-11)
    assert edges[("base", "s1-buf")]["delta"] == -3.5  # -14.5 - (-11)
    assert edges[("s1-up", "s2-up")]["delta"] == 3.0  # -2 - (-5)
    assert edges[("s1-up", "s2-up")]["improvement"] == 3.0  # wns is maximised
    eco = r.data["by_eco"]
    assert [g["eco"] for g in eco] == ["upsize", "buffer"]  # best mean improvement first
    up = eco[0]
    assert (up["count"], up["mean"], up["helped"], up["hurt"]) == (2, 4.5, 2, 0)
    assert up["std"] == pytest.approx(math.sqrt(4.5))
    assert up["ci_low"] == pytest.approx(4.5 - t1() * 1.5, rel=1e-12)
    assert up["verdict"] == "unclear"
    assert eco[1]["verdict"] == "too few" and eco[1]["hurt"] == 1
    cls = by(r.data["by_eco_class"], "eco_class")
    assert cls["sizing"]["count"] == 2 and cls["buffering"]["mean"] == -3.5
    dead = [x for x in r.exclusions if x.run is None]
    assert [x.reason for x in dead] == [
        "edge s1-buf -> s2-dead (vt_swap): child: no run selected (2 failed, 1 timeout)"
    ]
    assert r.to_arrow("edges").num_rows == 3
    assert r.to_arrow("by_eco_class").column("eco_class").to_pylist() == ["sizing", "buffering"]


def test_eco_effects_parents_scored_whatever_the_case_filters(chip):
    r = api.eco_effects(Query(chip).study("chip").stage(2), metric="wns")
    assert [(e["parent"], e["child"], e["parent_score"]) for e in r.data["edges"]] == [
        ("s1-up", "s2-up", -5.0)
    ]


def _eco_study(tmp_path, direction: str | None):
    e = Events("eco")
    objectives = [{"metric": "m", "direction": direction}] if direction else None
    e.add("study_created", objectives=objectives)
    e.add("case_created", case="root")
    e.run("root", "r0", {"m": 10.0})
    for i, v in enumerate([11.0, 11.1, 10.9]):
        e.add("eco_applied", case=f"g{i}", parent="root", eco="good", eco_class="x")
        e.run(f"g{i}", f"g{i}r", {"m": v})
    for i, v in enumerate([8.0, 8.2]):
        e.add("eco_applied", case=f"b{i}", parent="root", eco="bad", eco_class="y")
        e.run(f"b{i}", f"b{i}r", {"m": v})
    return ledger_of(tmp_path, e, f"eco-{direction}")


def test_eco_effects_verdicts_follow_the_direction(tmp_path):
    with _eco_study(tmp_path, "max") as led:
        eco = by(api.eco_effects(Query(led)).data["by_eco"], "eco")
    good = eco["good"]
    assert good["mean"] == pytest.approx(1.0) and good["std"] == pytest.approx(0.1)
    assert good["ci_low"] == pytest.approx(1 - t2() * 0.1 / math.sqrt(3), rel=1e-9)
    assert good["verdict"] == "helps" and eco["bad"]["verdict"] == "hurts"
    with _eco_study(tmp_path, "min") as led:
        r = api.eco_effects(Query(led))
    eco = by(r.data["by_eco"], "eco")
    assert eco["good"]["verdict"] == "hurts" and eco["bad"]["verdict"] == "helps"
    assert [g["eco"] for g in r.data["by_eco"]] == ["bad", "good"]
    with _eco_study(tmp_path, None) as led:
        r = api.eco_effects(Query(led), metric="m")
        assert by(r.data["by_eco"], "eco")["good"]["verdict"] is None
        assert r.warnings[-1].startswith("m is not an objective and no direction was given")
        helped = api.eco_effects(Query(led), metric="m", direction="max").data["by_eco"]
        assert by(helped, "eco")["good"]["helped"] == 3


# -------------------------------------------------------------------------- failures


def test_failure_rates_with_wilson(chip):
    r = api.failures(Query(chip).study("chip"))
    g = by(r.data["groups"])
    assert {k: (v["n"], v["failed"]) for k, v in g.items()} == {0: (3, 0), 1: (5, 0), 2: (6, 4)}
    lo, hi = wilson(4, 6)
    assert g[2]["rate"] == pytest.approx(4 / 6)
    assert g[2]["ci_low"] == pytest.approx(lo, rel=1e-9)
    assert g[2]["ci_high"] == pytest.approx(hi, rel=1e-9)
    assert g[0]["ci_low"] == 0.0 and g[0]["ci_high"] == pytest.approx(wilson(0, 3)[1], rel=1e-9)
    assert r.data["overall"]["n"] == 15 - 1 and r.data["overall"]["failed"] == 4
    assert [e.run for e in r.exclusions] == ["f3"]


def test_group_with_only_failures(chip):
    g = by(api.failures(Query(chip).study("chip"), by="case").data["groups"])
    dead = g["s2-dead"]
    assert (dead["n"], dead["failed"], dead["rate"]) == (3, 3, 1.0)
    assert dead["ci_high"] == 1.0
    assert dead["ci_low"] == pytest.approx(3 / (3 + Z95**2), rel=1e-9)  # Wilson at k = n


def test_failure_association_and_errors(chip):
    r = api.failures(Query(chip).study("chip"))
    assoc = {a["param"]: a for a in r.data["association"]}
    assert set(assoc) == {"param.util", "param.lib", "host"}
    strengths = [a["strength"] for a in r.data["association"]]
    assert strengths == sorted(strengths, reverse=True)
    rows = r.columns("rows")
    util = np.array(rows["param.util"].tolist(), float)
    failed = rows["failed"].astype(float)
    assert assoc["param.util"]["statistic"] == pytest.approx(np.corrcoef(util, failed)[0, 1])
    assert assoc["param.util"]["kind"] == "numeric" and assoc["param.lib"]["kind"] == "categorical"
    assert [(e["pattern"], e["count"], e["example_run"]) for e in r.data["top_errors"]] == [
        ("OOM at <hex> in <path>:<num>", 2, "d1"),
        ("segfault", 1, "v3"),
        ("wall time limit <num> s", 1, "d3"),
    ]
    only = api.failures(Query(chip).study("chip"), params=["lib"])
    assert [a["param"] for a in only.data["association"]] == ["param.lib"]


def test_failure_statuses_and_runs_neither(tmp_path):
    e = Events("f").add("study_created").add("case_created", case="a")
    e.run("a", "ok", {"m": 1.0})
    e.run("a", "bad", status="failed", error="x")
    e.run("a", "cut", status="pruned")
    e.run("a", "live", status=None)
    e.run("a", "slow", status="timeout")
    with ledger_of(tmp_path, e) as led:
        r = api.failures(Query(led), by="all")
        assert [(x.run, x.reason) for x in r.exclusions] == [
            ("cut", "status pruned: neither a success nor a failure"),
            ("live", "still running"),
        ]
        assert (r.data["overall"]["n"], r.data["overall"]["failed"]) == (3, 2)
        only = api.failures(Query(led), by="all", failure_statuses=["failed"])
        assert (only.data["overall"]["n"], only.data["overall"]["failed"]) == (2, 1)
        with pytest.raises(AnalyticsError, match="'completed' is not a finished status"):
            api.failures(Query(led), failure_statuses=["completed"])


def test_failure_burst_over_event_positions(tmp_path):
    e = Events("b").add("study_created").add("case_created", case="a")
    for i in range(40):
        e.run("a", f"r{i:02d}", status="failed" if 20 <= i < 28 else "completed")
    with ledger_of(tmp_path, e) as led:
        r = api.failures(Query(led), window=8)
    rows = r.columns("rows")
    seq = dict(zip(rows["run"].tolist(), rows["finished_seq"].tolist()))
    (burst,) = r.data["bursts"]["bursts"]
    assert (burst["start"], burst["end"]) == (seq["r20"], seq["r27"])
    assert (burst["n"], burst["failed"], burst["rate"]) == (8, 8, 1.0)
    assert burst["ratio"] == pytest.approx(1 / 0.2)
    assert burst["p_value"] == pytest.approx(0.2**8, rel=1e-9)


# ---------------------------------------------------------------------------- curves


@pytest.fixture
def train(tmp_path):
    e = Events("train").add("study_created", objectives=[{"metric": "loss", "direction": "min"}])
    e.add("case_created", case="c").add("case_created", case="d")
    for run, series in (("r1", [5, 4, 3, 3, 3, 3]), ("r2", [6, 4, 2, 2, 2, 2])):
        e.add("run_started", case="c", run=run)
        for step, v in enumerate(series):
            e.add("metrics_recorded", run=run, step=step, values={"loss": float(v)})
        e.add("metrics_recorded", run=run, values={"loss": float(series[-1])})
        e.add("run_finished", run=run, status="completed")
    e.run("d", "r3", {"loss": 1.0})  # a final result only
    e.add("run_started", case="d", run="r4")
    for step, v in enumerate([7.0, 8.0]):
        e.add("metrics_recorded", run="r4", step=step, values={"loss": v})
    e.add("run_finished", run="r4", status="failed", error="diverged")
    with ledger_of(tmp_path, e, "train") as led:
        yield led


def test_curves_against_hand(train):
    r = api.curves(Query(train), window=2)
    runs = {x["run"]: x for x in r.data["runs"]}
    assert set(runs) == {"r1", "r2", "r4"}  # a failed run has a curve too
    assert runs["r1"]["plateau_step"] == 2 and runs["r2"]["plateau_step"] == 2
    assert runs["r1"]["best"] == 3.0 and runs["r1"]["best_step"] == 2
    assert runs["r1"]["convergence_step"] == 2
    assert runs["r4"]["best"] == 7.0 and runs["r4"]["plateau_step"] is None
    (c, d) = r.data["cases"]
    assert c["case"] == "c" and c["steps"] == [0, 1, 2, 3, 4, 5]
    assert c["mean"] == [5.5, 4.0, 2.5, 2.5, 2.5, 2.5] and c["count"] == [2] * 6
    assert c["std"][0] == pytest.approx(math.sqrt(0.5))
    assert c["low"][0] == pytest.approx(5.5 - math.sqrt(0.5))
    assert c["plateau_median"] == 2.0 and c["final_mean"] == 2.5
    assert d["steps"] == [0, 1] and d["mean"] == [7.0, 8.0]
    assert d["low"] == [None, None]  # one run: no band
    assert [(x.run, x.reason) for x in r.exclusions] == [("r3", "no stepped values of loss")]
    assert "series" not in r.data and "series" not in r.extras
    done = api.curves(Query(train).runs(status="completed"), window=2, series=True)
    assert [x["run"] for x in done.data["runs"]] == ["r1", "r2"]
    assert done.data["series"][0]["values"] == [5.0, 4.0, 3.0, 3.0, 3.0, 3.0]
    series = done.to_arrow("series")
    assert series.column("best").to_pylist()[6:] == [6.0, 4.0, 2.0, 2.0, 2.0, 2.0]


@pytest.mark.parametrize("align", ["exact", "ffill"])
def test_mean_curves_per_case_equal_one_call_per_case(tmp_path, align):
    """The API computes every case's mean curve in one call (cases moved into blocks of
    steps of their own); each must equal the curve of that case alone."""
    from projections.analytics import curves as mod

    rng = np.random.default_rng(3)
    e = Events("s").add("study_created", objectives=[{"metric": "loss", "direction": "min"}])
    points: dict[str, list[tuple[str, int, float]]] = {}
    for ci, case in enumerate(("a", "b", "c")):
        e.add("case_created", case=case)
        for k in range(3):
            run = f"{case}{k}"
            e.add("run_started", case=case, run=run)
            steps = sorted(rng.choice(60, size=12 + 3 * k + ci, replace=False).tolist())
            for st in steps:
                v = float(rng.normal(10 - st / 10, 1))
                e.add("metrics_recorded", run=run, step=st * (ci + 1), values={"loss": v})
                points.setdefault(case, []).append((run, st * (ci + 1), v))
    with ledger_of(tmp_path, e) as led:
        got = {c["case"]: c for c in api.curves(Query(led), align=align).data["cases"]}
    for case, pts in points.items():
        runs, steps, values = zip(*pts)
        want = mod.mean_curve(np.array(runs), np.array(steps), np.array(values), align=align)
        assert got[case]["steps"] == want.steps.tolist()
        assert got[case]["mean"] == pytest.approx(want.mean.tolist(), rel=1e-12)
        assert got[case]["count"] == want.count.tolist()


def test_curves_use_the_value_in_force(tmp_path):
    e = Events("s").add("study_created", objectives=[{"metric": "loss", "direction": "min"}])
    e.add("case_created", case="a").add("run_started", case="a", run="r")
    for step, v in ((0, 3.0), (1, 2.0), (1, 9.0), (2, 1.0)):  # step 1 corrected to 9
        e.add("metrics_recorded", run="r", step=step, values={"loss": v, "acc": -v})
    with ledger_of(tmp_path, e) as led:
        r = api.curves(Query(led), window=1, series=True)
    assert r.data["series"][0]["steps"] == [0, 1, 2]
    assert r.data["series"][0]["values"] == [3.0, 9.0, 1.0]
    assert r.data["series"][0]["best"] == [3.0, 3.0, 1.0]


def test_curves_errors(chip, tmp_path):
    with pytest.raises(QueryError) as err:
        api.curves(Query(chip), metric="wns")
    assert str(err.value) == (
        f"metric 'wns' of study 'chip' has no stepped values (only final results) at seq "
        f"{chip.head.seq}; stepped metrics: none"
    )
    e = Events("t2").add("study_created").add("case_created", case="a")
    e.add("run_started", case="a", run="r")
    e.add("metrics_recorded", run="r", step=0, values={"x": 1.0})
    with ledger_of(tmp_path, e) as led:
        with pytest.raises(QueryError, match="best-so-far needs a direction for 'x'"):
            api.curves(Query(led), metric="x")
        assert api.curves(Query(led), metric="x", direction="max").data["runs"][0]["best"] == 1.0


# --------------------------------------------------------------------------- results


def test_result_exports(chip, monkeypatch):
    r = api.stats(Query(chip).study("chip"), metric="wns")
    csv = r.to_csv()
    assert csv.splitlines()[0].startswith('"group","count","nan_dropped","mean"')
    assert csv.count("\n") == 5
    assert r.to_arrow().num_rows == 4 and r.to_arrow("rows").num_rows == 10
    with pytest.raises(
        AnalyticsError, match=r"this stats result has no table 'x' \(tables: rows\)"
    ):
        r.to_arrow("x")
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(AnalyticsError) as err:
        r.to_pandas()
    assert str(err.value) == (
        "to_pandas() needs pandas, which is not installed; install it (pip install pandas) "
        "or use to_arrow()"
    )
    d = json.loads(r.to_json())
    assert d["study"] == "chip" and d["as_of"] == chip.head.seq
    assert d["query"]["statuses"] == ["completed"] and d["query"]["study"] == "chip"
    assert {"run": "f3", "case": "s1-buf", "reason": d["exclusions"][0]["reason"]} in d[
        "exclusions"
    ]
    assert r.to_json() == api.stats(Query(chip).study("chip"), metric="wns").to_json()
    text = str(r)
    assert text.startswith(f"stats of wns by case — study chip, as of seq {chip.head.seq}\n")
    assert "excluded (5)" in text and "s1-buf   f3   invalidated at seq" in text


def test_to_csv_writes_a_file(chip, tmp_path):
    path = tmp_path / "out.csv"
    text = api.compare(Query(chip), metric="wns", cases=["*"]).to_csv(path)
    assert path.read_text() == text and text.count("\n") == 1 + 10


# ---------------------------------------------------------------------------- config


def test_config_file_found_here_then_beside_the_ledger(tmp_path):
    here = tmp_path / "here"
    store = tmp_path / "store"
    here.mkdir()
    store.mkdir()
    ledger = store / "results.ledger"
    assert find_config(ledger, cwd=here) is None
    assert load_config(ledger, cwd=here) == AnalyticsConfig()
    (store / "ledger.toml").write_text("[analytics]\nconfidence = 0.9\n")
    cfg = load_config(ledger, cwd=here)
    assert cfg.confidence == 0.9 and cfg.source == str(store / "ledger.toml")
    (here / "ledger.toml").write_text("[other]\nx = 1\n[analytics]\nmin_n = 4\nseed = 3\n")
    cfg = load_config(ledger, cwd=here)
    assert (cfg.confidence, cfg.min_n, cfg.seed) == (0.95, 4, 3)  # not merged: cwd wins


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[analytics]\nconfidence = 1.5\n",
            "ledger.toml: Expected `float` < 1.0 - at `analytics.confidence`; fix the value "
            "or remove the key (settings: confidence, min_n, bootstrap, seed, outlier_method, "
            "outlier_factor, outlier_low, outlier_high)",
        ),
        (
            "[analytics]\nconfidnce = 0.9\n",
            "ledger.toml: Object contains unknown field `confidnce` - in [analytics]; fix the "
            "value or remove the key (settings: confidence, min_n, bootstrap, seed, "
            "outlier_method, outlier_factor, outlier_low, outlier_high)",
        ),
        (
            '[analytics]\noutlier_method = "mad"\n',
            "ledger.toml: Invalid enum value 'mad' - at `analytics.outlier_method`; fix the "
            "value or remove the key (settings: confidence, min_n, bootstrap, seed, "
            "outlier_method, outlier_factor, outlier_low, outlier_high)",
        ),
        ("analytics = 3\n", "ledger.toml: [analytics] must be a table of settings, got int"),
        (
            "[analytics]\noutlier_low = 2.0\noutlier_high = 1.0\n",
            "ledger.toml: analytics.outlier_low (2.0) is above analytics.outlier_high (1.0); "
            "swap them",
        ),
    ],
)
def test_config_errors_name_file_and_field(text, message):
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    assert str(err.value) == message


def test_config_syntax_error_has_line():
    with pytest.raises(ConfigError, match=r"^ledger.toml: not valid TOML: .*line 2"):
        parse_config("[analytics]\nconfidence = = 1\n")


def test_config_without_a_toml_reader(monkeypatch):
    import projections.analytics.config as config

    monkeypatch.setattr(config, "_tomllib", lambda: None)
    with pytest.raises(ConfigError) as err:
        parse_config("[analytics]\n", "x/ledger.toml")
    assert str(err.value) == (
        "x/ledger.toml: reading it needs Python 3.11+ (tomllib) or the tomli package; "
        "install tomli (pip install tomli) or remove the file"
    )


def test_api_imports_neither_scipy_nor_pyarrow():
    """A command that prints text never pays for pyarrow; scipy only when a test needs it."""
    import subprocess

    code = (
        "import sys\n"
        "import projections.analytics.api, projections.analytics.result\n"
        "import projections.analytics.config\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'scipy', 'pyarrow', 'pandas'}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"
