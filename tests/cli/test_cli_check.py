"""`ledger check`: the shipped OpenROAD rules (both forms) on the imported ORFS bundle, a
hand-made study for the exact text, levels, not evaluable, --case, --time-unit, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli

ORFS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "orfs"
BUNDLE = ORFS / "metadata-history.jsonl"
OPS = {
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "!=": lambda a, b: a != b,
}


def _runner(path: str):
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(cli, ["--ledger", path, *args], input=input, catch_exceptions=False)

    invoke.path = path
    return invoke


@pytest.fixture(scope="module")
def orfs(tmp_path_factory):
    if not BUNDLE.exists():
        pytest.skip(f"the shared ORFS bundle is absent ({BUNDLE})")
    run = _runner(str(tmp_path_factory.mktemp("check") / "o.ledger"))
    r = run("import", "orfs", str(BUNDLE))
    assert r.exit_code == 0, r.stderr
    return run


def _records(platform, design):
    return [
        rec
        for rec in map(json.loads, BUNDLE.read_text().splitlines())
        if rec["platform"] == platform and rec["design"] == design
    ]


def _rules(path):
    obj = json.loads(Path(path).read_text())
    if list(obj) == ["rules"]:
        return [(r["field"], r["compare"], r["value"], "error") for r in obj["rules"]]
    return [(k, v["compare"], v["value"], v.get("level", "error")) for k, v in obj.items()]


def _by_hand(rec, rules):
    """Outcome of each rule on one source record, computed from the JSON line itself."""
    out = {}
    for field, op, limit, level in rules:
        v = rec["metrics"].get(field)
        num = type(v) in (int, float)
        if v is None or field.startswith("run__flow__") or op not in OPS:
            out[field] = "not_evaluable"
        elif num and type(limit) in (int, float):
            out[field] = "pass" if OPS[op](v, limit) else ("warn" if level == "warning" else "fail")
        elif isinstance(v, str) and isinstance(limit, str) and op in ("==", "!="):
            out[field] = "pass" if OPS[op](v, limit) else ("warn" if level == "warning" else "fail")
        else:
            out[field] = "not_evaluable"
    return out


def _outcomes(item):
    got = {r["field"]: "fail" for r in item["failed"]}
    got.update({r["field"]: "warn" for r in item["warnings"]})
    got.update({r["field"]: "not_evaluable" for r in item["not_evaluable"]})
    return got


@pytest.mark.parametrize(
    ("rules_file", "case", "counts"),
    [
        ("rules-asap7-jpeg.json", "asap7/jpeg", {"pass": 2, "fail": 44, "warn": 0,
                                                 "not_evaluable": 0}),
        ("rules-nangate45-aes-older-list-form.json", "nangate45/aes",
         {"pass": 22, "fail": 21, "warn": 0, "not_evaluable": 0}),
    ],
)  # fmt: skip
def test_shipped_rules_both_forms_every_run_by_hand(orfs, rules_file, case, counts):
    out = _check_by_hand(orfs, ORFS / rules_file, case)
    assert out["counts"] == counts


def _check_by_hand(orfs, path, case):
    r = orfs("check", "--study", "orfs", "--case", case, "--rules", str(path), "--json")
    out = json.loads(r.stdout)
    rules = _rules(path)
    assert (out["study"], out["case"], out["rules"]) == ("orfs", case, len(rules))
    assert out["rules_file"] == str(path) and out["skipped"] == [] and out["time_unit"] is None
    platform, design = case.split("/")
    records = {f"{case}@{rec['commit']}": rec for rec in _records(platform, design)}
    assert sorted(item["run"] for item in out["runs"]) == sorted(records)
    counts = {"pass": 0, "fail": 0, "warn": 0, "not_evaluable": 0}
    for item in out["runs"]:
        want = _by_hand(records[item["run"]], rules)
        got = _outcomes(item)
        assert got == {f: o for f, o in want.items() if o != "pass"}, item["run"]
        assert item["passed"] == sum(1 for o in want.values() if o == "pass")
        assert item["case"] == case
        outcomes = set(want.values())
        status = next((s for s in ("fail", "warn", "pass") if s in outcomes), "not_evaluable")
        assert item["status"] == status
        counts[status] += 1
    assert out["counts"] == counts and out["ok"] is (counts["fail"] == 0)
    # a failing check still prints its JSON, then exits 1 with one error line
    if counts["fail"]:
        assert r.exit_code == 1
        s = "s" if counts["fail"] != 1 else ""
        assert (
            r.stderr == f"error: {counts['fail']} run{s} of study 'orfs' failed rules of {path}\n"
        )
    else:
        assert (r.exit_code, r.stderr) == (0, "")
    return out


SHIPPED = sorted(ORFS.glob("rules-*.json")) if ORFS.exists() else []


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_rules_file_on_its_case(orfs, path):
    platform, design = path.stem.removeprefix("rules-").split("-")[:2]
    out = _check_by_hand(orfs, path, f"{platform}/{design}")
    assert len(out["runs"]) == len(_records(platform, design))


@pytest.mark.skipif(not BUNDLE.exists(), reason=f"the shared ORFS bundle is absent ({BUNDLE})")
def test_warning_level_rules_are_reported_not_evaluable_when_the_metric_is_missing(orfs):
    path = ORFS / "rules-asap7-aes.json"
    r = orfs("check", "--study", "orfs", "--case", "asap7/aes", "--rules", str(path), "--json")
    out = json.loads(r.stdout)
    for item in out["runs"]:
        hashes = [x for x in item["not_evaluable"] if x["field"].endswith("netlist__hash")]
        assert hashes == [
            {"field": "synth__canonical_netlist__hash", "compare": "==", "value": "N/A",
             "level": "warning", "actual": None, "reason": "the run has no such metric"},
            {"field": "synth__netlist__hash", "compare": "==", "value": "N/A",
             "level": "warning", "actual": None, "reason": "the run has no such metric"},
        ]  # fmt: skip


@pytest.mark.skipif(not BUNDLE.exists(), reason=f"the shared ORFS bundle is absent ({BUNDLE})")
def test_warning_level_warns_without_failing(orfs, tmp_path):
    obj = json.loads((ORFS / "rules-asap7-jpeg.json").read_text())
    for spec in obj.values():
        spec["level"] = "warning"
    path = tmp_path / "warn.json"
    path.write_text(json.dumps(obj))
    r = orfs("check", "--study", "orfs", "--case", "asap7/jpeg", "--rules", str(path), "--json")
    assert r.exit_code == 0 and r.stderr == ""
    out = json.loads(r.stdout)
    assert out["ok"] is True
    assert out["counts"] == {"pass": 2, "fail": 0, "warn": 44, "not_evaluable": 0}
    assert all(item["failed"] == [] for item in out["runs"])
    r = orfs("check", "--study", "orfs", "--case", "asap7/jpeg", "--rules", str(path))
    assert r.exit_code == 0
    assert "46 runs checked: 2 pass, 0 fail, 44 warn, 0 not evaluable\n" in r.stdout
    assert "\nwarnings (" in r.stdout and "\nfailed rules" not in r.stdout


@pytest.mark.skipif(not BUNDLE.exists(), reason=f"the shared ORFS bundle is absent ({BUNDLE})")
def test_case_filter_and_unknown_case(orfs):
    path = ORFS / "rules-asap7-jpeg.json"
    whole = json.loads(orfs("check", "--study", "orfs", "--rules", str(path), "--json").stdout)
    assert len(whole["runs"]) == 494 and whole["case"] is None
    r = orfs("check", "--study", "orfs", "--case", "asap7/nope", "--rules", str(path))
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr.startswith(
        "error: study 'orfs' has no case 'asap7/nope' at seq 3513 (cases: asap7/aes, asap7/gcd, "
    )


@pytest.mark.skipif(not BUNDLE.exists(), reason=f"the shared ORFS bundle is absent ({BUNDLE})")
def test_time_unit_makes_ps_and_ns_rules_agree(orfs, tmp_path):
    """The same limits written in ps and in ns give the same verdicts on asap7 runs, whose
    unit is read from the run or (in 24 of 46 runs here) assumed from the platform."""
    ps = tmp_path / "ps.json"
    ps.write_text(json.dumps({"finish__timing__setup__ws": {"value": -24.2, "compare": ">="}}))
    ns = tmp_path / "ns.json"
    ns.write_text(json.dumps({"finish__timing__setup__ws": {"value": -0.0242, "compare": ">="}}))
    args = ("check", "--study", "orfs", "--case", "asap7/jpeg", "--json")
    a = json.loads(orfs(*args, "--rules", str(ps), "--time-unit", "ps").stdout)
    b = json.loads(orfs(*args, "--rules", str(ns), "--time-unit", "ns").stdout)
    raw = json.loads(orfs(*args, "--rules", str(ns)).stdout)
    assert (a["time_unit"], b["time_unit"], raw["time_unit"]) == ("1ps", "1ns", None)
    verdicts = [[(i["run"], i["status"]) for i in x["runs"]] for x in (a, b)]
    assert verdicts[0] == verdicts[1]
    assert a["counts"] == b["counts"] != raw["counts"]  # as recorded, ps values break ns limits
    units = {i["run"]: i["time_unit"] for i in b["runs"]}
    records = {f"asap7/jpeg@{r['commit']}": r for r in _records("asap7", "jpeg")}
    for run, unit in units.items():
        m = records[run]["metrics"]
        key = next(
            (
                k
                for k in ("run__flow__platform__time_units", "run__flow__platform__timing_units")
                if m.get(k)
            ),
            None,
        )
        if key:
            assert unit == {"unit": m[key], "assumed": False, "note": f"read from {key}"}
        else:
            assert unit == {
                "unit": "1ps",
                "assumed": True,
                "note": "assumed 1ps: "
                "run__flow__platform__time_units missing; platform asap7 reports ps",
            }
    assumed = sum(u["assumed"] for u in units.values())
    r = orfs(*args[:-1], "--rules", str(ns), "--time-unit", "ns")
    assert (
        f"time units assumed ({assumed} runs)\n  {assumed} runs: assumed 1ps: "
        "run__flow__platform__time_units missing; platform asap7 reports ps\n"
    ) in r.stdout


# -- a hand-made study: the exact text --------------------------------------------------

EVENTS = [
    {"type": "study_created", "study": "chip"},
    {"type": "case_created", "study": "chip", "case": "a", "params": {"platform": "asap7"}},
    {"type": "case_created", "study": "chip", "case": "b", "params": {"platform": "nangate45"}},
    *[
        ev
        for run, case, values, status, config in [
            ("r1", "a", {"ws": 5.0, "drc": 0}, "completed", {"hash": "N/A"}),
            ("r2", "a", {"ws": -30.0, "drc": 2}, "completed", {"hash": "N/A"}),
            ("r3", "b", {"ws": 1.0, "drc": 0}, "completed", {"hash": "abc"}),
            ("r4", "b", {}, "completed", {}),
            ("r5", "b", {"ws": 1.0, "drc": 0}, "failed", {}),
            ("r6", "b", {"ws": 1.0, "drc": 9}, "completed", {}),
        ]
        for ev in (
            {"type": "run_started", "study": "chip", "case": case, "run": run, "config": config},
            {"type": "metrics_recorded", "study": "chip", "run": run, "values": values},
            {"type": "run_finished", "study": "chip", "run": run, "status": status},
        )
    ],
    {"type": "run_invalidated", "study": "chip", "run": "r6", "reason": "bad host"},
]
RULES = {
    "ws": {"value": -20, "compare": ">="},
    "drc": {"value": 0, "compare": "=="},
    "hash": {"value": "N/A", "compare": "==", "level": "warning"},
}


@pytest.fixture
def chip(tmp_path):
    run = _runner(str(tmp_path / "c.ledger"))
    r = run("append", "-", input="".join(json.dumps(e) + "\n" for e in EVENTS))
    assert r.exit_code == 0, r.stderr
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(RULES))
    return run, rules


def test_text_report_exact(chip):
    run, rules = chip
    r = run("check", "--study", "chip", "--rules", str(rules))
    assert r.exit_code == 1
    assert r.stderr == f"error: 1 run of study 'chip' failed rules of {rules}\n"
    assert r.stdout == (
        f"study chip, all cases, as of seq {len(EVENTS)}: 3 rules from {rules}, values as "
        "recorded\n"
        "4 runs checked: 1 pass, 1 fail, 1 warn, 1 not evaluable; 2 not checked\n"
        "\n"
        "run  case  status         failed  warnings  not evaluable  passed\n"
        "---  ----  -------------  ------  --------  -------------  ------\n"
        "r1   a     pass                0         0              0       3\n"
        "r2   a     fail                2         0              0       1\n"
        "r3   b     warn                0         1              0       2\n"
        "r4   b     not_evaluable       0         0              3       0\n"
        "\n"
        "failed rules (2)\n"
        "run  rule  actual  limit   level\n"
        "---  ----  ------  ------  -----\n"
        "r2   ws    -30     >= -20  error\n"
        "     drc   2       == 0    error\n"
        "\n"
        "warnings (1)\n"
        "run  rule  actual  limit   level\n"
        "---  ----  ------  ------  -------\n"
        "r3   hash  abc     == N/A  warning\n"
        "\n"
        "not evaluable (3)\n"
        "rule  runs  reason\n"
        "----  ----  --------------------------\n"
        "drc      1  the run has no such metric\n"
        "hash     1  the run has no such metric\n"
        "ws       1  the run has no such metric\n"
        "\n"
        "not checked (2)\n"
        "run  case  reason\n"
        "---  ----  ---------------------\n"
        "r5   b     status failed\n"
        "r6   b     invalidated: bad host\n"
    )


def test_json_report_and_case_filter(chip):
    run, rules = chip
    r = run("check", "--study", "chip", "--rules", str(rules), "--case", "a", "--json")
    assert r.exit_code == 1
    out = json.loads(r.stdout)
    assert out["counts"] == {"pass": 1, "fail": 1, "warn": 0, "not_evaluable": 0}
    assert [(i["run"], i["status"]) for i in out["runs"]] == [("r1", "pass"), ("r2", "fail")]
    assert out["runs"][1]["failed"] == [
        {"field": "ws", "compare": ">=", "value": -20, "level": "error", "actual": -30.0},
        {"field": "drc", "compare": "==", "value": 0, "level": "error", "actual": 2.0},
    ]
    r = run("check", "--study", "chip", "--rules", str(rules), "--case", "b", "--json")
    assert r.exit_code == 0 and r.stderr == ""
    out = json.loads(r.stdout)
    assert out["ok"] is True
    assert out["skipped"] == [
        {"run": "r5", "case": "b", "reason": "status failed"},
        {"run": "r6", "case": "b", "reason": "invalidated: bad host"},
    ]


def test_all_pass_exits_0(chip, tmp_path):
    run, _ = chip
    rules = tmp_path / "easy.json"
    rules.write_text(json.dumps({"rules": [{"field": "ws", "value": -100, "compare": ">="}]}))
    r = run("check", "--study", "chip", "--case", "a", "--rules", str(rules))
    assert r.exit_code == 0 and r.stderr == ""
    assert "2 runs checked: 2 pass, 0 fail, 0 warn, 0 not evaluable\n" in r.stdout


def test_bad_rules_and_bad_unit(chip, tmp_path):
    run, _ = chip
    bad = tmp_path / "bad.json"
    bad.write_text('{"ws": {"value": 1}}')
    r = run("check", "--study", "chip", "--rules", str(bad))
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr == (
        f"error: {bad}: ws: a rule needs 'value' and 'compare' "
        '(e.g. {"value": 0, "compare": "<="})\n'
    )
    r = run("check", "--study", "chip", "--rules", str(tmp_path / "none.json"))
    assert r.exit_code == 1
    assert r.stderr == f"error: {tmp_path / 'none.json'}: cannot read: No such file or directory\n"
    r = run("check", "--study", "chip", "--rules", str(bad), "--time-unit", "parsec")
    assert r.exit_code == 2
    assert "Invalid value for '--time-unit': '1parsec' is not a time unit" in r.stderr


def test_unknown_study_and_missing_ledger(chip, tmp_path):
    run, rules = chip
    r = run("check", "--study", "nope", "--rules", str(rules))
    assert r.exit_code == 1
    assert r.stderr.startswith("error: ") and "known studies: chip" in r.stderr
    other = _runner(str(tmp_path / "missing.ledger"))
    r = other("check", "--study", "chip", "--rules", str(rules))
    assert r.exit_code == 1
    assert r.stderr.startswith(f"error: no ledger at {other.path}")


def test_help_ends_with_an_example():
    import inspect

    from cli.commands.check import check

    last = inspect.cleandoc(check.help).split("\n\n")[-1]
    assert last.startswith("\b\nExample:\n  ledger check --study ")


def test_nothing_to_check_warns(chip):
    run, rules = chip
    extra = [
        {"type": "case_created", "study": "chip", "case": "idle"},
        {"type": "run_started", "study": "chip", "case": "idle", "run": "r7"},
    ]
    r = run("append", "-", input="".join(json.dumps(e) + "\n" for e in extra))
    assert r.exit_code == 0, r.stderr
    r = run("check", "--study", "chip", "--case", "idle", "--rules", str(rules), "--json")
    assert r.exit_code == 0
    out = json.loads(r.stdout)
    assert (out["ok"], out["runs"], out["skipped"]) == (
        True, [], [{"run": "r7", "case": "idle", "reason": "still running"}]
    )  # fmt: skip
    assert (
        r.stderr
        == "warning: no completed run of case 'idle' of study 'chip' to check (1 not checked)\n"
    )


def test_run_filter_checks_the_run_just_recorded(chip):
    run, rules = chip
    r = run("check", "--study", "chip", "--run", "r2", "--rules", str(rules))
    assert r.exit_code == 1
    assert r.stdout.startswith(
        f"study chip, all cases, run r2, as of seq {len(EVENTS)}: 3 rules from {rules}, values "
        "as recorded\n1 run checked: 0 pass, 1 fail, 0 warn, 0 not evaluable\n"
    )
    r = run("check", "--study", "chip", "--run", "r1", "--run", "r3", "--rules", str(rules),
            "--json")  # fmt: skip
    out = json.loads(r.stdout)
    assert r.exit_code == 0 and out["only_runs"] == ["r1", "r3"]
    assert [(i["run"], i["status"]) for i in out["runs"]] == [("r1", "pass"), ("r3", "warn")]
    r = run("check", "--study", "chip", "--run", "r9", "--rules", str(rules))
    assert r.exit_code == 1
    assert r.stderr == (
        "error: study 'chip' has no run 'r9' at seq 22; `ledger log --study chip --type "
        "run_started` lists its runs\n"
    )
