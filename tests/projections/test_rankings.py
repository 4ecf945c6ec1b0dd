from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from proj_streams import Stream

from ledger import Ledger
from projections.rankings import (
    Constraint,
    Key,
    PolicyError,
    RunTable,
    aggregate,
    pareto_fronts,
    parse_by,
    parse_require,
    rank_cases,
    resolve_policy,
)
from projections.study import load_study

# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        ("drc_errors==0", ("drc_errors", "==", 0.0)),
        ("wns_ps>=0", ("wns_ps", ">=", 0.0)),
        (" area <= 1.5e3 ", ("area", "<=", 1500.0)),
        ("detailedroute__route__drc_errors==0", ("detailedroute__route__drc_errors", "==", 0.0)),
        ("timing/setup ws>-5", ("timing/setup ws", ">", -5.0)),
        ("loss<.5", ("loss", "<", 0.5)),
        ("x!=+2", ("x", "!=", 2.0)),
    ],
)
def test_parse_require_accepts(expr: str, want: tuple) -> None:
    c = parse_require(expr)
    assert (c.metric, c.op, c.value) == want


@pytest.mark.parametrize(
    "expr",
    ["drc=0", "drc==", "==0", "drc==abc", "drc=>0", "drc==1e", "drc==nan", "", "a<b<1", "drc===0"],
)
def test_parse_require_refuses(expr: str) -> None:
    with pytest.raises(PolicyError) as err:
        parse_require(expr)
    assert str(err.value) == (
        f"cannot read the constraint {expr!r}: write METRIC OP NUMBER with OP one of "
        "==, !=, >=, <=, >, < and a decimal number (e.g. 'drc_errors==0', 'wns_ps>=0')"
    )


def test_constraint_nan_never_holds() -> None:
    vals = np.array([0.0, 1.0, np.nan])
    assert Constraint("m", "!=", 0.0).holds(vals).tolist() == [False, True, False]
    assert Constraint("m", "<=", 0.0).holds(vals).tolist() == [True, False, False]
    assert Constraint("m", "==", 0.0).text == "m==0"


def test_parse_by() -> None:
    objectives = [("qor", "max"), ("area", "min")]
    assert parse_by("qor:max,area:min") == [Key("qor", "max"), Key("area", "min")]
    assert parse_by("area, qor", objectives) == [Key("area", "min"), Key("qor", "max")]
    assert parse_by("val:acc:max") == [Key("val:acc", "max")]
    with pytest.raises(PolicyError, match=r"no direction for 'power' in 'qor,power'"):
        parse_by("qor,power", objectives)
    with pytest.raises(PolicyError, match=r"empty key in 'qor:max,'"):
        parse_by("qor:max,")
    with pytest.raises(PolicyError, match=r"metric 'qor' appears twice"):
        parse_by("qor:max,qor:min")


def test_resolve_policy() -> None:
    objectives = [("qor", "max"), ("area", "min")]
    p = resolve_policy(objectives)
    assert p.keys == (Key("qor", "max"), Key("area", "min")) and p.source == "objectives"
    assert resolve_policy(objectives, metric="area").keys == (Key("area", "min"),)
    assert resolve_policy(objectives, metric="area", direction="max").keys == (Key("area", "max"),)
    assert resolve_policy([], metric="x", direction="max").keys == (Key("x", "max"),)
    with pytest.raises(PolicyError) as err:
        resolve_policy(objectives, metric="power")
    assert str(err.value) == (
        "metric 'power' is not an objective of the study (objectives: qor:max, area:min); "
        "pass --direction min or --direction max"
    )
    with pytest.raises(PolicyError) as err:
        resolve_policy([])
    assert str(err.value) == (
        "the study declares no objectives to rank by; pass --metric M --direction min|max, "
        "or --by m1:max,m2:min"
    )
    with pytest.raises(PolicyError, match="not both"):
        resolve_policy(objectives, metric="qor", by="area")
    with pytest.raises(PolicyError, match="a direction needs a metric"):
        resolve_policy(objectives, direction="min")
    with pytest.raises(PolicyError, match="unknown aggregate 'avg'"):
        resolve_policy(objectives, agg="avg")


# ------------------------------------------------------------------- hand computations


def chip_ledger(ledger: Ledger) -> Ledger:
    s = Stream("chip").created([("qor", "max"), ("area", "min")])
    s.case("base").eco("a", "base", "resize").eco("b", "base", "buffer")
    s.case("m", parents=["a", "b"], stage=2).eco("f", "base", "flop")
    s.run("base", "base-1", {"qor": 1.0, "area": 10, "drc": 0})
    s.run("a", "a-1", {"qor": 2.0, "area": 9, "drc": 0})
    s.run("a", "a-2", {"qor": 3.0, "area": 9, "drc": 0})
    s.run("a", "a-3", {"qor": 100.0, "area": 1, "drc": 0}, status="failed")
    s.run("b", "b-1", {"qor": 2.5, "area": 8, "drc": 1})
    s.run("m", "m-1", {"qor": float("nan"), "area": 8, "drc": 0})
    s.run("f", "f-1", {"qor": 9.0, "area": 1, "drc": 0})
    s.invalidate("f-1", "wrong netlist")
    s.run("f", "f-2", status="failed")
    ledger.append(s.events)
    return ledger


def test_rank_by_objectives_by_hand(ledger) -> None:
    ranking = load_study(chip_ledger(ledger), "chip").rank()
    assert ranking.to_dict() == {
        "study": "chip",
        "stage": None,
        "as_of": ledger.head.seq,
        "policy": {
            "keys": [{"metric": "qor", "direction": "max"}, {"metric": "area", "direction": "min"}],
            "agg": "mean",
            "require": [],
            "top": None,
            "pareto": False,
            "source": "objectives",
        },
        "ranking": [
            # a and b tie on qor (2.5); area breaks the tie
            {"rank": 1, "case": "b", "score": [2.5, 8.0], "runs": 1, "stage": 1},
            {"rank": 2, "case": "a", "score": [2.5, 9.0], "runs": 2, "stage": 1},
            {"rank": 3, "case": "base", "score": [1.0, 10.0], "runs": 1, "stage": 0},
        ],
        "unranked": [
            {"case": "f", "reason": "no completed run (1 failed, 1 invalidated)", "stage": 1},
            {"case": "m", "reason": "NaN aggregate: qor (mean)", "stage": 2},
        ],
    }


def test_constraints_top_and_pareto_by_hand(ledger) -> None:
    view = load_study(chip_ledger(ledger), "chip")
    ranking = view.rank(require=["drc==0", "area<=9.5"], top=1, pareto=True)
    assert [r.to_dict() for r in ranking.rows] == [
        {
            "rank": 1,
            "case": "a",
            "score": [2.5, 9.0],
            "runs": 2,
            "survivor": True,
            "front": 1,
            "stage": 1,
        },
    ]
    assert [u.to_dict() for u in ranking.unranked] == [
        {"case": "b", "reason": "infeasible: drc==0 (mean 1)", "stage": 1},
        {"case": "base", "reason": "infeasible: area<=9.5 (mean 10)", "stage": 0},
        {"case": "f", "reason": "no completed run (1 failed, 1 invalidated)", "stage": 1},
        {"case": "m", "reason": "NaN aggregate: qor (mean)", "stage": 2},
    ]
    # one stage, one metric: a number, not a list
    stage1 = view.rank(1, metric="area", agg="best")
    assert [(r.case, r.score) for r in stage1.rows] == [("b", 8.0), ("a", 9.0)]
    missing = view.rank(metric="power", direction="min")
    assert {u.case: u.reason for u in missing.unranked}["a"] == "metric missing: power"
    assert view.rank(require=["power<1"]).unranked[0].reason == "infeasible: power<1 (no value)"


def test_stage_summaries_set_recorded_survivors_beside_the_ranking(ledger) -> None:
    chip_ledger(ledger)
    ledger.append(Stream("chip").select(1, ["a"], policy={"top": 1}).events)
    summaries = {s.stage: s for s in load_study(ledger, "chip").stage_summaries()}
    s1 = summaries[1]
    assert (s1.cases, s1.runs) == (3, {"completed": 3, "failed": 2, "invalidated": 1})
    assert (s1.best_case, s1.best_score) == ("b", [2.5, 8.0])
    assert s1.recorded_survivors == ["a"]
    assert s1.ranking_survivors == ["b"]
    assert s1.agree is False
    assert summaries[0].recorded_survivors is None and summaries[0].agree is None
    assert summaries[2].best_case is None and summaries[2].unranked == 1


# ------------------------------------------------------------------- the numeric core


def test_aggregate_against_numpy() -> None:
    rng = np.random.default_rng(11)
    for _ in range(50):
        n_cases = int(rng.integers(1, 8))
        k = int(rng.integers(0, 30))
        case = rng.integers(0, n_cases, k)
        vals = rng.choice([-1.5, -0.25, 0.0, 0.5, 2.0, np.nan, np.inf], k)
        seqs = rng.permutation(k) + 1
        for agg in ("mean", "median", "best", "last"):
            for direction in ("min", "max"):
                got, has = aggregate(case, vals, seqs, n_cases, agg, direction)
                for c in range(n_cases):
                    v = vals[case == c]
                    assert has[c] == (len(v) > 0)
                    if not len(v):
                        assert math.isnan(got[c])
                        continue
                    if agg == "mean":
                        want = np.mean(v)
                    elif agg == "median":
                        want = np.median(v)
                    elif agg == "best":
                        want = (
                            np.nan
                            if np.isnan(v).all()
                            else (np.nanmin(v) if direction == "min" else np.nanmax(v))
                        )
                    else:
                        want = v[np.argmax(seqs[case == c])]
                    assert got[c] == want or (math.isnan(got[c]) and math.isnan(want)), (agg, v)


def brute_fronts(points: list[tuple[float, ...]]) -> list[int]:
    left = set(range(len(points)))
    fronts = [0] * len(points)
    f = 1
    while left:
        layer = {
            i
            for i in left
            if not any(
                all(a <= b for a, b in zip(points[j], points[i]))
                and any(a < b for a, b in zip(points[j], points[i]))
                for j in left
            )
        }
        for i in layer:
            fronts[i] = f
        left -= layer
        f += 1
    return fronts


def test_pareto_fronts_against_brute_force() -> None:
    rng = np.random.default_rng(5)
    for _ in range(40):
        n, m = int(rng.integers(0, 40)), int(rng.integers(1, 4))
        pts = rng.integers(0, 5, (n, m)).astype(float)  # many ties and duplicates
        got = pareto_fronts(pts, block=7).tolist()
        assert got == brute_fronts([tuple(p) for p in pts])


# --------------------------------------------- seeded random studies vs a numpy reference

STATUSES = ["completed"] * 6 + ["failed", "pruned", "timeout", None]
VALUES = [-1.0, -0.5, 0.0, 0.25, 0.5, 1.0, 1.5]  # exact in binary: sums do not round


def random_study(seed: int):
    """Events, and the facts a reference needs, for one random study."""
    rng = np.random.default_rng(seed)
    s = Stream("r").created([("m0", "min"), ("m1", "max")])
    cases: dict[str, int] = {}
    n = int(rng.integers(2, 18))
    for i in range(n):
        name = f"c{i:02d}" if rng.random() < 0.8 else f"C{i}"
        stage = int(rng.integers(0, 3))
        parents = sorted({c for c in cases if rng.random() < 0.3})
        s.case(name, parents=parents or None, stage=stage)
        cases[name] = stage
    runs = []  # (case, run, status, invalidated, {metric: [(value, seq)]})
    for case in cases:
        for j in range(int(rng.integers(0, 4))):
            run = f"{case}-{j}"
            s.start(case, run)
            finals: dict[str, list[tuple[float, int]]] = {}
            for _ in range(int(rng.integers(1, 3))):  # a second event supersedes
                vals = {}
                for m in ("m0", "m1", "m2"):
                    if rng.random() < 0.85:
                        r = rng.random()
                        vals[m] = (
                            float("nan")
                            if r < 0.05
                            else float("inf")
                            if r < 0.07
                            else float(rng.choice(VALUES))
                        )
                if vals:
                    s.log(run, vals, id=f"{run}-{len(s.events)}")
                    for m, v in vals.items():
                        finals.setdefault(m, []).append((v, len(s.events)))
            status = STATUSES[int(rng.integers(len(STATUSES)))]
            if status is not None:
                s.finish(run, status)
            invalid = status is not None and rng.random() < 0.15
            if invalid:
                s.invalidate(run, "bad host")
            runs.append((case, run, status, invalid, finals))
    return s.events, cases, runs


def fmt_num(x: float) -> str:
    if math.isnan(x):
        return "NaN"
    return str(int(x)) if x.is_integer() else repr(x)


_REF_OPS = {
    "==": np.equal,
    "!=": np.not_equal,
    ">=": np.greater_equal,
    "<=": np.less_equal,
    ">": np.greater,
    "<": np.less,
}


def _ref_agg(runs, case, metric, agg, directions):
    """The case's aggregate of ``metric`` over its counted runs (None: no value)."""
    vals = []
    for c, _, status, invalid, finals in runs:
        if c == case and status == "completed" and not invalid and metric in finals:
            vals.append(finals[metric][-1])  # the value in force: the latest
    if not vals:
        return None
    v = np.array([x for x, _ in vals])
    if agg == "mean":
        return float(np.mean(v))
    if agg == "median":
        return float(np.median(v))
    if agg == "best":
        if np.isnan(v).all():
            return math.nan
        return float(np.nanmax(v) if directions.get(metric, "min") == "max" else np.nanmin(v))
    return max(vals, key=lambda p: p[1])[0]


def _ref_no_run(mine):
    counts: dict[str, int] = {}
    for _, _, status, invalid, _ in mine:
        k = "invalidated" if invalid else (status or "running")
        counts[k] = counts.get(k, 0) + 1
    return (
        "no completed run ("
        + (", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "no runs")
        + ")"
    )


def _ref_broken(agg_of, case, agg, require):
    broken = []
    for metric, op, value in require:
        a = agg_of(case, metric)
        if a is None:
            broken.append(f"{metric}{op}{fmt_num(value)} (no value)")
        elif math.isnan(a) or not _REF_OPS[op](a, value):
            broken.append(f"{metric}{op}{fmt_num(value)} ({agg} {fmt_num(a)})")
    return broken


def _ref_value_problem(keys, scores, agg):
    missing = [m for (m, _), a in zip(keys, scores) if a is None]
    if missing:
        return "metric missing: " + ", ".join(missing)
    nans = [m for (m, _), a in zip(keys, scores) if math.isnan(a)]
    if nans:
        return "NaN aggregate: " + ", ".join(f"{m} ({agg})" for m in nans)
    return None


def reference(cases, runs, keys, agg, require, stage):
    """Rank with plain Python and numpy, written apart from the implementation."""
    names = sorted(c for c, st in cases.items() if stage is None or st == stage)
    directions = dict(keys)

    def agg_of(case, metric):
        return _ref_agg(runs, case, metric, agg, directions)

    ranked, unranked = [], {}
    for case in names:
        mine = [r for r in runs if r[0] == case]
        ok = [r for r in mine if r[2] == "completed" and not r[3]]
        if not ok:
            unranked[case] = _ref_no_run(mine)
            continue
        broken = _ref_broken(agg_of, case, agg, require)
        if broken:
            unranked[case] = "infeasible: " + ", ".join(broken)
            continue
        scores = [agg_of(case, m) for m, _ in keys]
        problem = _ref_value_problem(keys, scores, agg)
        if problem is not None:
            unranked[case] = problem
            continue
        # runs: the completed runs aggregated, i.e. those holding the first key's metric
        ranked.append((case, scores, sum(keys[0][0] in r[4] for r in ok)))
    ranked.sort(key=lambda r: ([(a if d == "min" else -a) for a, (_, d) in zip(r[1], keys)], r[0]))
    return ranked, unranked


@pytest.mark.parametrize("seed", range(40))
def test_random_studies_against_reference(tmp_path, seed: int) -> None:
    events, cases, runs = random_study(seed)
    with Ledger(tmp_path / "r.ledger") as led:
        led.append(events)
        view = load_study(led, "r")
        rng = np.random.default_rng(1000 + seed)
        policies = [
            ([("m0", "min")], []),
            ([("m1", "max")], [("m2", ">=", 0.0)]),
            ([("m0", "min"), ("m1", "max")], []),
            ([("m2", "max"), ("m0", "min")], [("m1", "!=", 0.5), ("m0", "<", 1.0)]),
        ]
        stages = [None, *sorted(set(cases.values()))]
        for (keys, require), agg in itertools.product(policies, ("mean", "median", "best", "last")):
            stage = stages[int(rng.integers(len(stages)))]
            ranking = view.rank(
                stage,
                by=",".join(f"{m}:{d}" for m, d in keys),
                agg=agg,
                require=[f"{m}{op}{fmt_num(v)}" for m, op, v in require],
            )
            want_ranked, want_unranked = reference(cases, runs, keys, agg, require, stage)
            got = [
                (r.case, r.score if isinstance(r.score, list) else [r.score], r.runs)
                for r in ranking.rows
            ]
            assert got == want_ranked, (keys, agg, require, stage)
            assert [r.rank for r in ranking.rows] == list(range(1, len(got) + 1))
            assert {u.case: u.reason for u in ranking.unranked} == want_unranked


@pytest.mark.parametrize("seed", range(10))
def test_random_pareto_and_top(tmp_path, seed: int) -> None:
    events, cases, runs = random_study(seed)
    with Ledger(tmp_path / "r.ledger") as led:
        led.append(events)
        ranking = load_study(led, "r").rank(by="m0:min,m1:max", agg="best", top=3, pareto=True)
    ranked, _ = reference(cases, runs, [("m0", "min"), ("m1", "max")], "best", [], None)
    pts = {c: (s[0], -s[1]) for c, s, _ in ranked}
    fronts = dict(zip(pts, brute_fronts(list(pts.values()))))
    want = sorted(ranked, key=lambda r: (fronts[r[0]], r[1][0], -r[1][1], r[0]))
    assert [(r.case, r.front) for r in ranking.rows] == [(c, fronts[c]) for c, _, _ in want]
    assert [r.survivor for r in ranking.rows] == [i < 3 for i in range(len(want))]


def test_rank_cases_without_a_ledger() -> None:
    """The core takes plain arrays; cases never seen in the run table are unranked."""
    runs = RunTable(
        ["a", "a", "b", "c"],
        ["completed", "completed", "completed", "failed"],
        [False, False, True, False],
    )
    finals = {"x": (np.array([0, 1, 2]), np.array([2.0, 4.0, 1.0]), np.array([5, 6, 7]))}
    policy = resolve_policy([], metric="x", direction="min", top=1)
    ranking = rank_cases(["c", "b", "a", "d"], runs, finals, policy)
    assert [(r.case, r.score, r.runs, r.survivor) for r in ranking.rows] == [("a", 3.0, 2, True)]
    assert [(u.case, u.reason) for u in ranking.unranked] == [
        ("b", "no completed run (1 invalidated)"),
        ("c", "no completed run (1 failed)"),
        ("d", "no completed run (no runs)"),
    ]


def test_a_case_mean_does_not_depend_on_the_order_of_its_runs():
    """The same four runs in any order give the same mean to the bit (a sync or merge
    interleaves hosts' runs differently; -23.299999999999997 against -23.3 before)."""
    values = np.array([-0.1, -23.2, -46.4, -23.5])
    means = {
        float(aggregate(np.zeros(4, dtype=np.intp), values[list(p)], np.arange(4), 1, "mean")[0][0])
        for p in itertools.permutations(range(4))
    }
    assert len(means) == 1
