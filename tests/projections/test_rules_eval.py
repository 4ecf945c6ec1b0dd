"""Rules checker: both rule forms, levels, not-evaluable, time units; the shipped rules on real runs."""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from ledger.importers.orfs_time import (
    is_timing_metric,
    normalise_timing,
    parse_time_unit,
    time_unit_of,
)
from projections.rules_eval import Rule, RulesError, check_runs, load_rules, parse_rules

ORFS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "orfs"


# -- parsing ------------------------------------------------------------------------


def test_both_forms_parse_to_the_same_rules():
    current = {
        "a__ws": {"value": -0.5, "compare": ">="},
        "a__hash": {"value": "N/A", "compare": "==", "level": "warning"},
    }
    older = {
        "rules": [
            {"field": "a__ws", "value": -0.5, "compare": ">="},
            {"field": "a__hash", "value": "N/A", "compare": "=="},
        ]
    }
    assert parse_rules(current) == [
        Rule("a__ws", ">=", -0.5, "error"),
        Rule("a__hash", "==", "N/A", "warning"),
    ]
    assert parse_rules(older) == [
        Rule("a__ws", ">=", -0.5, "error"),
        Rule("a__hash", "==", "N/A", "error"),
    ]


def test_malformed_rules_name_the_rule(tmp_path):
    with pytest.raises(RulesError, match=r"^r.json: x: a rule needs 'value' and 'compare'"):
        parse_rules({"x": {"value": 1}}, source="r.json")
    with pytest.raises(RulesError, match=r"^r.json: rules\[1\]: expected an object with a 'field'"):
        parse_rules({"rules": [{"field": "a", "value": 1, "compare": "<="}, {}]}, source="r.json")
    with pytest.raises(RulesError, match=r"level 'fatal' is not 'warning' or 'error'"):
        parse_rules({"x": {"value": 1, "compare": "<=", "level": "fatal"}})
    bad = tmp_path / "r.json"
    bad.write_text("{nope")
    with pytest.raises(RulesError, match=rf"^{bad}: invalid JSON"):
        load_rules(bad)
    with pytest.raises(RulesError, match="cannot read"):
        load_rules(tmp_path / "missing.json")


# -- evaluation ---------------------------------------------------------------------

RULES = [
    Rule("drc", "<=", 0),
    Rule("ws", ">=", -0.1),
    Rule("area", "<=", 100, "warning"),
    Rule("missing", "<=", 1),
    Rule("weird", "N/A", 3),
    Rule("power", "<=", 5),
    Rule("netlist__hash", "==", "abc", "warning"),
]


def test_pass_fail_warn_and_not_evaluable():
    final = {
        "good": {"drc": 0, "ws": 0.2, "area": 90, "weird": 1},
        "bad": {"drc": 3, "ws": -0.5, "area": 120},
        "warned": {"drc": 0, "ws": -0.05, "area": 150},
        "nan": {"drc": 0, "ws": math.nan, "area": 10},
    }
    attrs = {"good": {"power": "N/A", "netlist__hash": "abc"}, "warned": {"netlist__hash": "xyz"}}
    rep = check_runs(final, RULES, attrs=attrs)
    assert [r.run for r in rep.runs] == ["bad", "good", "nan", "warned"]
    by = {r.run: r for r in rep.runs}
    assert {k: v.status for k, v in by.items()} == {
        "bad": "fail",
        "good": "pass",
        "nan": "fail",
        "warned": "warn",
    }
    assert not rep.ok and rep.counts == {"pass": 1, "fail": 2, "warn": 1, "not_evaluable": 0}
    assert [(r.field, r.actual) for r in by["bad"].failed] == [("drc", 3), ("ws", -0.5)]
    assert [(r.field, r.actual) for r in by["bad"].warnings] == [("area", 120)]
    assert [(r.field, r.actual) for r in by["warned"].warnings] == [
        ("area", 150),
        ("netlist__hash", "xyz"),
    ]
    assert [r.field for r in by["nan"].failed] == ["ws"]  # NaN fails every comparison
    reasons = {r.field: r.reason for r in by["good"].not_evaluable}
    assert reasons == {
        "missing": "the run has no such metric",
        "weird": "compare 'N/A' is not an operator",
        "power": "cannot compare str 'N/A' <= int 5",
    }
    assert [r.outcome for r in by["good"].results if r.field == "netlist__hash"] == ["pass"]

    out = rep.to_json()
    assert out["ok"] is False and out["rules"] == 7
    nan_run = next(r for r in out["runs"] if r["run"] == "nan")
    assert nan_run["failed"] == [
        {"field": "ws", "compare": ">=", "value": -0.1, "level": "error", "actual": "NaN"}
    ]
    json.dumps(out, allow_nan=False)  # strictly valid JSON


def test_only_warnings_is_ok_and_all_missing_is_not_evaluable():
    rep = check_runs({"r": {"area": 500}}, [Rule("area", "<=", 100, "warning")])
    assert rep.ok and rep.runs[0].status == "warn"
    rep = check_runs({"r": {"x": 1}}, [Rule("area", "<=", 100)])
    assert rep.ok and rep.runs[0].status == "not_evaluable"
    ops = [Rule("x", op, 1) for op in ("<", ">", "==", "!=")]
    assert [r.outcome for r in check_runs({"r": {"x": 1}}, ops).runs[0].results] == [
        "fail",
        "fail",
        "pass",
        "fail",
    ]


# -- units --------------------------------------------------------------------------


def test_timing_metric_names():
    timing = [
        "finish__timing__setup__ws",
        "cts__timing__setup__tns__pre_repair",
        "floorplan__timing__tns_total",
        "cts__timing__wns__worst",
        "cts__clock__skew__hold",
        "finish__clock__latency__max",
        "globalroute__timing__clock__period",
        "globalroute__timing__clock__slack",
        "finish__timing__cp_delay",
    ]
    not_timing = [
        "finish__timing__drv__max_slew",
        "finish__timing__drv__max_slew_limit",
        "finish__timing__drv__setup_violation_count",
        "finish__timing__wns_percent_delay",
        "finish__timing__cp_slack_per_delay",
        "cts__timing__slew__violation__count",
        "detailedroute__route__wirelength",
        "synth__runtime__total",
        "val_latency",
    ]
    assert all(is_timing_metric(n) for n in timing)
    assert not any(is_timing_metric(n) for n in not_timing)


def test_time_units_read_or_assumed_with_the_reason():
    assert parse_time_unit("1ps") == (1, -12) and parse_time_unit("10ns") == (10, -9)
    with pytest.raises(ValueError):
        parse_time_unit("1parsec")
    read = time_unit_of({"run__flow__platform__time_units": "1ps", "run__flow__platform": "x"})
    assert (read.unit, read.assumed, read.note) == (
        "1ps",
        False,
        "read from run__flow__platform__time_units",
    )
    older = time_unit_of({"run__flow__platform__timing_units": "1ns"})
    assert (older.unit, older.assumed) == ("1ns", False)
    asap7 = time_unit_of({"run__flow__platform": "asap7"})
    assert (asap7.unit, asap7.assumed, asap7.note) == (
        "1ps",
        True,
        "assumed 1ps: run__flow__platform__time_units missing; platform asap7 reports ps",
    )
    gf12 = time_unit_of({"platform": "gf12"})
    assert gf12.unit == "1ps" and gf12.assumed
    sky = time_unit_of({"platform": "sky130hd"})
    assert sky.note == (
        "assumed 1ns: run__flow__platform__time_units missing; platform sky130hd is not "
        "asap7 or gf12, so ns"
    )
    assert time_unit_of({}).note.endswith("no platform known, so ns")


def test_normalise_and_check_in_the_rules_unit():
    final = {
        "a7": {"finish__timing__setup__ws": -20.8, "finish__area": 10, "cts__clock__skew__hold": 3},
        "n45": {"finish__timing__setup__ws": -0.0208, "finish__area": 10},
    }
    attrs = {"a7": {"run__flow__platform": "asap7"}, "n45": {"run__flow__platform": "nangate45"}}
    out, units = normalise_timing(final, attrs, to="1ns")
    assert out["a7"] == {
        "finish__timing__setup__ws": -0.0208,
        "finish__area": 10,
        "cts__clock__skew__hold": 0.003,
    }
    assert out["n45"] == final["n45"]
    assert units["a7"].assumed and units["a7"].unit == "1ps"
    ps, _ = normalise_timing(final, attrs, to="1ps")
    assert ps["n45"]["finish__timing__setup__ws"] == -20.8 == ps["a7"]["finish__timing__setup__ws"]

    rules = [Rule("finish__timing__setup__ws", ">=", -20.0)]  # written in ps
    raw = check_runs(final, rules, attrs=attrs)
    assert {r.run: r.status for r in raw.runs} == {"a7": "fail", "n45": "pass"}  # ns vs ps!
    rep = check_runs(final, rules, attrs=attrs, rules_time_unit="1ps")
    assert {r.run: r.status for r in rep.runs} == {"a7": "fail", "n45": "fail"}
    assert rep.runs[1].failed[0].actual == -20.8
    assert rep.to_json()["runs"][1]["time_unit"] == {
        "unit": "1ns",
        "assumed": True,
        "note": "assumed 1ns: run__flow__platform__time_units missing; platform nangate45 is "
        "not asap7 or gf12, so ns",
    }


# -- the shipped rules against the real history -------------------------------------


@pytest.fixture(scope="module")
def history():
    if not (ORFS / "metadata-history.jsonl").is_file():
        pytest.skip(f"shared ORFS data not found at {ORFS} (../shared/data relative to the repo)")
    from ledger.importers.orfs import read_orfs

    res = read_orfs([ORFS / "metadata-history.jsonl"])
    params = {e["case"]: e["params"] for e in res.events if e["type"] == "case_created"}
    final: dict[str, dict] = defaultdict(dict)
    attrs: dict[str, dict] = {}
    runs_of: dict[str, list[str]] = defaultdict(list)
    for e in res.events:
        if e["type"] == "run_started":
            attrs[e["run"]] = {**e["config"], **params[e["case"]]}
            runs_of[e["case"]].append(e["run"])
        elif e["type"] == "metrics_recorded" and "step" not in e:
            final[e["run"]].update(e["values"])
    return final, attrs, runs_of


SHIPPED = {
    # rules file: (rules, warnings, per-run statuses over that case's whole history)
    "rules-asap7-aes.json": (27, 2, {"fail": 50}),
    "rules-asap7-gcd.json": (27, 2, {"fail": 43}),
    "rules-asap7-jpeg.json": (27, 2, {"pass": 2, "fail": 44}),
    "rules-nangate45-aes-older-list-form.json": (19, 0, {"pass": 22, "fail": 21}),
    "rules-nangate45-aes.json": (27, 2, {"fail": 43}),
    "rules-nangate45-gcd.json": (27, 2, {"fail": 51}),
    "rules-nangate45-jpeg.json": (27, 2, {"fail": 47}),
    "rules-sky130hd-aes.json": (27, 2, {"fail": 65}),
    "rules-sky130hd-gcd.json": (27, 2, {"fail": 47}),
    "rules-sky130hd-jpeg.json": (27, 2, {"fail": 61}),
    "rules-sky130hd-riscv32i.json": (27, 2, {"fail": 41}),
}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_rules_on_their_case(history, name):
    final, attrs, runs_of = history
    n_rules, n_warn, statuses = SHIPPED[name]
    rules = load_rules(ORFS / name)
    assert len(rules) == n_rules
    assert sum(r.level == "warning" for r in rules) == n_warn
    platform, design = name[len("rules-") :].replace("-older-list-form", "")[:-5].split("-")
    runs = runs_of[f"{platform}/{design}"]
    rep = check_runs({r: final[r] for r in runs}, rules, attrs={r: attrs[r] for r in runs})
    assert {k: v for k, v in rep.counts.items() if v} == statuses
    assert rep.ok is ("fail" not in statuses)
    # a rule on a metric no run of the history has is not evaluable, never a pass
    known = {k for r in runs for k in final[r]} | {k for r in runs for k in attrs[r]}
    absent = {rule.field for rule in rules if rule.field not in known}
    for rc in rep.runs:
        ne = {x.field for x in rc.not_evaluable if x.reason == "the run has no such metric"}
        assert absent <= ne


def test_latest_runs_by_hand(history):
    final, attrs, runs_of = history
    last = runs_of["sky130hd/riscv32i"][-1]
    rep = check_runs({last: final[last]}, load_rules(ORFS / "rules-sky130hd-riscv32i.json"))
    (rc,) = rep.runs
    assert [(r.field, r.actual, r.compare, r.limit) for r in rc.failed] == [
        ("constraints__clocks__count", 1, "==", 2)
    ]
    assert Counter(r.outcome for r in rc.results) == {"pass": 18, "not_evaluable": 8, "fail": 1}
    hashes = [r for r in rc.not_evaluable if r.field.endswith("netlist__hash")]
    assert [r.level for r in hashes] == ["warning", "warning"]

    last = runs_of["nangate45/aes"][-1]
    older = load_rules(ORFS / "rules-nangate45-aes-older-list-form.json")
    (rc,) = check_runs({last: final[last]}, older).runs
    assert [(r.field, r.actual, r.limit) for r in rc.failed] == [
        ("finish__timing__drv__setup_violation_count", 155, 10)
    ]


def test_units_across_the_history(history):
    final, attrs, runs_of = history
    out, units = normalise_timing(final, attrs, to="1ns")
    assert Counter((u.unit, u.assumed) for u in units.values()) == {
        ("1ns", False): 279,
        ("1ps", False): 105,
        ("1ns", True): 76,
        ("1ps", True): 34,
    }
    last = runs_of["asap7/jpeg"][-1]
    assert final[last]["finish__timing__setup__ws"] == 85.2952
    assert out[last]["finish__timing__setup__ws"] == 0.0852952
    assert out[last]["detailedroute__route__wirelength"] == 276116  # not timing: unchanged
    # after normalisation the clock periods of all platforms are on one scale (ns)
    periods = {
        case: [
            out[r]["globalroute__timing__clock__period"]
            for r in runs
            if "globalroute__timing__clock__period" in final[r]
        ]
        for case, runs in runs_of.items()
    }
    assert max(periods["asap7/jpeg"]) == 4.0  # 4000 ps on line 451 of the bundle
    assert min(periods["asap7/jpeg"]) > 1 and min(periods["sky130hd/jpeg"]) > 5
