"""The analytics commands end to end (CliRunner) against seeded ledgers whose numbers
can be checked by hand: exit code, stdout JSON or table, stderr."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli.main import cli
from ledger import Ledger

ROOT = Path(__file__).resolve().parents[2]
T2 = 0.95 / math.sqrt(2 * 0.975 * 0.025)  # t(0.975, 2 df), closed form
T2_90 = 0.90 / math.sqrt(2 * 0.95 * 0.05)  # t(0.95, 2 df)
T1 = math.tan(math.pi * 0.475)  # t(0.975, 1 df): the Cauchy quantile


class Events:
    def __init__(self, study: str) -> None:
        self.study = study
        self.events: list[dict[str, Any]] = []

    def add(self, type_: str, **fields: Any) -> Events:
        ev = {"type": type_, "study": self.study}
        ev.update({k: v for k, v in fields.items() if v is not None})
        self.events.append(ev)
        return self

    def run(self, case, run, finals=None, status="completed", error=None, **kw) -> Events:
        self.add("run_started", case=case, run=run, **kw)
        if finals:
            self.add("metrics_recorded", run=run, values=finals)
        return self.add("run_finished", run=run, status=status, error=error)


def chip_events() -> Events:
    """wns (max): base -11 ± 1 (3 runs), s1-up -5 ± 1 (3), s1-buf -14.5 (2 + one
    invalidated), s2-up -2 (2 + one failed), s2-dead (2 failed, 1 timeout)."""
    e = Events("chip").add("study_created", objectives=[{"metric": "wns", "direction": "max"}])
    e.add("case_created", case="base", params={"util": 0.5, "lib": "a"})
    e.add("eco_applied", case="s1-up", parent="base", eco="upsize", eco_class="sizing",
          params={"util": 0.6, "lib": "a"})  # fmt: skip
    e.add("eco_applied", case="s1-buf", parent="base", eco="buffer", eco_class="buffering",
          params={"util": 0.7, "lib": "b"})  # fmt: skip
    e.add("eco_applied", case="s2-up", parent="s1-up", eco="upsize", eco_class="sizing",
          params={"util": 0.8, "lib": "b"})  # fmt: skip
    e.add("eco_applied", case="s2-dead", parent="s1-buf", eco="vt_swap", eco_class="sizing",
          params={"util": 0.9})  # fmt: skip
    for run, v, seed, host in (("b1", -10, 1, "h1"), ("b2", -12, 2, "h1"), ("b3", -11, 3, "h2")):
        e.run("base", run, {"wns": float(v)}, seed=seed, host=host)
    for run, v, seed, host in (("u1", -5, 1, "h1"), ("u2", -6, 2, "h2"), ("u3", -4, 3, "h2")):
        e.run("s1-up", run, {"wns": float(v)}, seed=seed, host=host)
    e.run("s1-buf", "f1", {"wns": -15.0}, seed=1, host="h1")
    e.run("s1-buf", "f2", {"wns": -14.0}, seed=2, host="h1")
    e.run("s1-buf", "f3", {"wns": 100.0}, seed=3, host="h3")
    e.add("run_invalidated", run="f3", reason="bad host")
    e.run("s2-up", "v1", {"wns": -1.0}, seed=1, host="h1")
    e.run("s2-up", "v2", {"wns": -3.0}, seed=2, host="h2")
    e.run("s2-up", "v3", status="failed", error="segfault", seed=3, host="h3")
    e.run("s2-dead", "d1", status="failed", error="OOM at 0x7f3a in /tmp/r1/a.py:12", seed=1)
    e.run("s2-dead", "d2", status="failed", error="OOM at 0x9b00 in /tmp/r7/a.py:40", seed=2)
    e.run("s2-dead", "d3", status="timeout", error="wall time limit 3600 s", seed=3)
    return e


@pytest.fixture
def chip(tmp_path) -> str:
    path = str(tmp_path / "chip.ledger")
    with Ledger(path) as led:
        led.append(chip_events().events)
    return path


def invoke(path: str, *args: str):
    return CliRunner().invoke(cli, ["--ledger", path, *args])


def ok_json(path: str, *args: str) -> dict:
    res = invoke(path, *args, "--json")
    assert res.exit_code == 0, res.stderr + res.stdout
    return json.loads(res.stdout)


def groups(out: dict, key: str = "group") -> dict:
    return {g[key]: g for g in out["groups"]}


# ----------------------------------------------------------------------------- stats


def test_stats_json(chip):
    res = invoke(chip, "stats", "--study", "chip", "--metric", "wns", "--json")
    assert res.exit_code == 0
    out = json.loads(res.stdout)
    g = groups(out)
    assert list(g) == ["base", "s1-buf", "s1-up", "s2-up"]
    base = g["base"]
    for key in ("group", "count", "mean", "median", "std", "min", "max", "ci_low", "ci_high"):
        assert key in base
    assert (base["count"], base["mean"], base["median"], base["std"]) == (3, -11.0, -11.0, 1.0)
    assert base["ci_low"] == pytest.approx(-11 - T2 / math.sqrt(3), rel=1e-12)
    assert g["s2-up"]["ci_high"] == pytest.approx(-2 + T1, rel=1e-12)
    assert out["study"] == "chip" and out["metric"] == "wns" and out["by"] == "case"
    assert [e["run"] for e in out["exclusions"]] == ["f3", "d1", "d2", "d3", "v3"]
    assert res.stderr == (
        "warning: group s1-buf: small sample (n=2 < min_n=3): the interval is unreliable\n"
        "warning: group s2-up: small sample (n=2 < min_n=3): the interval is unreliable\n"
    )


def test_stats_table(chip):
    res = invoke(chip, "stats", "-m", "wns", "--by", "stage")
    assert res.exit_code == 0
    lines = res.stdout.splitlines()
    assert lines[0].startswith("stats of wns by stage — study chip, as of seq ")
    assert lines[4].split() == [
        "group", "count", "mean", "median", "std", "min", "max", "ci_low", "ci_high",
    ]  # fmt: skip
    assert lines[6].split()[:4] == ["0", "3", "-11", "-11"]
    assert lines[7].split()[:3] == ["1", "5", "-8.8"]
    assert "excluded (5)" in res.stdout
    assert "s1-buf   f3   invalidated at seq" in res.stdout
    assert res.stderr == (
        "warning: group 2: small sample (n=2 < min_n=3): the interval is unreliable\n"
    )


def test_stats_filters_and_as_of(chip):
    out = ok_json(chip, "stats", "-m", "wns", "--stage", "1", "--where", "lib==b", "--by", "all")
    (g,) = out["groups"]
    assert (g["count"], g["mean"]) == (2, -14.5)
    with Ledger(chip) as led:
        before = next(e.seq for e in led.read() if e.type == "run_invalidated") - 1
    old = ok_json(chip, "stats", "-m", "wns", "--case", "s1-buf", "--as-of", str(before))
    (g,) = old["groups"]
    assert g["count"] == 3 and g["max"] == 100.0 and old["as_of"] == before
    agg = ok_json(chip, "stats", "-m", "wns", "--agg", "mean", "--by", "eco_class")
    assert {g["group"]: g["count"] for g in agg["groups"]} == {
        "buffering": 1, "sizing": 2, None: 1,
    }  # fmt: skip


def test_stats_config_file_then_flag(chip, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ledger.toml").write_text("[analytics]\nconfidence = 0.9\nmin_n = 2\n")
    res = invoke(chip, "stats", "-m", "wns", "--json")
    out = json.loads(res.stdout)
    base = groups(out)["base"]
    assert base["ci_high"] == pytest.approx(-11 + T2_90 / math.sqrt(3), rel=1e-12)
    assert out["settings"]["config"] == str(tmp_path / "ledger.toml")
    assert res.stderr == ""  # min_n = 2: no small-sample warnings
    flag = groups(ok_json(chip, "stats", "-m", "wns", "--confidence", "0.95"))["base"]
    assert flag["ci_high"] == pytest.approx(-11 + T2 / math.sqrt(3), rel=1e-12)
    (tmp_path / "ledger.toml").write_text("[analytics]\nconfidence = 2\n")
    bad = invoke(chip, "stats", "-m", "wns")
    assert bad.exit_code == 1 and bad.stdout == ""
    assert bad.stderr.startswith(
        f"error: {tmp_path / 'ledger.toml'}: Expected `float` < 1.0 - at `analytics.confidence`"
    )
    assert bad.stderr.count("\n") == 1


def test_bootstrap_same_seed_same_interval_across_processes(chip):
    args = ["stats", "-m", "wns", "--bootstrap", "300", "--seed", "4", "--by", "all", "--json"]
    one = ok_json(chip, *args[:-1])
    two = ok_json(chip, *args[:-1])
    (g,) = one["groups"]
    assert g["boot_low"] is not None and (g["boot_low"], g["boot_high"]) == (
        two["groups"][0]["boot_low"],
        two["groups"][0]["boot_high"],
    )
    proc = subprocess.run(
        [sys.executable, "-m", "cli.main", "--ledger", chip, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PYTHONHASHSEED": "123", "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["groups"] == one["groups"]


# --------------------------------------------------------------------------- compare


def test_compare_two_cases(chip):
    out = ok_json(chip, "compare", "--metric", "wns", "--a", "base", "--b", "s1-up", "--test",
                  "welch")  # fmt: skip
    t = -6 / math.sqrt(2 / 3)
    th = math.atan(abs(t) / 2)
    assert out["test"] == "welch"
    assert out["statistic"] == pytest.approx(t, rel=1e-12)
    assert out["df"] == pytest.approx(4.0)
    assert out["p_value"] == pytest.approx(1 - math.sin(th) * (1 + math.cos(th) ** 2 / 2), rel=1e-9)
    assert out["effect_size"] == pytest.approx(-6 * 2 / math.sqrt(2 * math.pi), rel=1e-12)
    assert (out["n_a"], out["n_b"], out["mean_a"], out["mean_b"]) == (3, 3, -11.0, -5.0)
    mw = ok_json(chip, "compare", "-m", "wns", "--a", "base", "--b", "s1-up", "--test",
                 "mannwhitney")  # fmt: skip
    assert mw["df"] is None and mw["statistic"] == 0.0 and mw["effect_size"] == -1.0
    assert mw["p_value"] == pytest.approx(0.1, rel=1e-12)


def test_compare_pairwise_holm(chip):
    out = ok_json(chip, "compare", "-m", "wns", "--cases", "base,s1-up,s1-buf")
    pairs = out["pairs"]
    assert [(p["a"], p["b"]) for p in pairs] == [
        ("base", "s1-buf"), ("base", "s1-up"), ("s1-buf", "s1-up"),
    ]  # fmt: skip
    raw = [p["p_value"] for p in pairs]
    order = sorted(range(3), key=lambda i: raw[i])
    want = [0.0] * 3
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (3 - rank) * raw[i]))
        want[i] = running
    assert [p["p_adjusted"] for p in pairs] == pytest.approx(want, rel=1e-12)
    for p in pairs:
        assert {"a", "b", "statistic", "p_value", "p_adjusted"} <= set(p)


def test_compare_rank_and_paired(chip):
    out = ok_json(chip, "compare", "-m", "wns", "--rank")
    assert [r["case"] for r in out["ranking"]] == ["s2-up", "s1-up", "base", "s1-buf"]
    assert out["unranked"][0]["case"] == "s2-dead"
    paired = ok_json(chip, "compare", "-m", "wns", "--a", "base", "--b", "s1-up", "--paired")
    assert paired["test"] == "paired_t" and paired["df"] == 2.0
    assert paired["statistic"] == pytest.approx(-6 * math.sqrt(3), rel=1e-12)


def test_compare_usage_errors(chip):
    res = invoke(chip, "compare", "-m", "wns", "--a", "base")
    assert res.exit_code == 2 and "--a and --b go together" in res.stderr
    res = invoke(chip, "compare", "-m", "wns")
    assert res.exit_code == 2 and "give --a and --b, or --cases A,B,C, or --rank" in res.stderr
    res = invoke(chip, "compare", "-m", "wns", "--a", "base", "--b", "nope")
    assert res.exit_code == 1 and res.stdout == ""
    assert res.stderr.startswith("error: study 'chip' has no case 'nope' at seq ")


# -------------------------------------------------------------------------- outliers


def test_outliers_json(tmp_path):
    path = str(tmp_path / "lat.ledger")
    e = Events("lat").add("study_created").add("case_created", case="c")
    for i, v in enumerate([0.0, 1.0, 3.0, 6.0, 50.0]):
        e.run("c", f"r{i}", {"lat": v})
    with Ledger(path) as led:
        led.append(e.events)
    out = ok_json(path, "outliers", "--metric", "lat", "--method", "iqr")
    assert out["outliers"] == [
        {"run": "r4", "case": "c", "value": 50.0, "reason": "lat=50.0 above Q3+1.5·IQR=13.5"}
    ]
    assert out["kept"] == 4
    b = ok_json(path, "outliers", "-m", "lat", "--method", "bounds", "--low", "0.5", "--high", "10")
    assert [o["run"] for o in b["outliers"]] == ["r0", "r4"] and b["kept"] == 3
    z = ok_json(path, "outliers", "-m", "lat", "--method", "modified-z")
    assert [o["run"] for o in z["outliers"]] == ["r4"]
    text = invoke(path, "outliers", "-m", "lat")
    assert text.exit_code == 0
    assert "outliers of lat (iqr): 1 flagged, 4 kept" in text.stdout
    assert "lat=50.0 above Q3+1.5·IQR=13.5" in text.stdout


# -------------------------------------------------------------------------- failures


def test_failures_json(chip):
    out = ok_json(chip, "failures", "--by", "case")
    g = groups(out)
    dead = g["s2-dead"]
    z = 1.959963984540054
    assert (dead["n"], dead["failed"], dead["rate"], dead["ci_high"]) == (3, 3, 1.0, 1.0)
    assert dead["ci_low"] == pytest.approx(3 / (3 + z * z), rel=1e-9)
    assert g["base"]["rate"] == 0.0
    assert out["overall"]["failed"] == 4 and out["overall"]["n"] == 14
    assert out["top_errors"][0]["pattern"] == "OOM at <hex> in <path>:<num>"
    assert {a["param"] for a in out["association"]} == {"param.lib", "param.util", "host"}
    only = ok_json(chip, "failures", "--by", "all", "--failed-status", "timeout")
    assert only["overall"]["failed"] == 1 and only["failure_statuses"] == ["timeout"]
    text = invoke(chip, "failures")
    assert text.exit_code == 0 and "failures by stage: 4 of 14 runs" in text.stdout
    assert "only 14 runs: fewer than one window of 20" in text.stderr


# ---------------------------------------------------------------------------- curves


def test_curves_json(tmp_path):
    path = str(tmp_path / "train.ledger")
    e = Events("train").add("study_created", objectives=[{"metric": "loss", "direction": "min"}])
    e.add("case_created", case="c")
    for run, series in (("r1", [5, 4, 3, 3, 3, 3]), ("r2", [6, 4, 2, 2, 2, 2])):
        e.add("run_started", case="c", run=run)
        for step, v in enumerate(series):
            e.add("metrics_recorded", run=run, step=step, values={"loss": float(v)})
        e.add("run_finished", run=run, status="completed")
    with Ledger(path) as led:
        led.append(e.events)
    out = ok_json(path, "curves", "--metric", "loss", "--window", "2")
    assert [(r["run"], r["plateau_step"], r["best"]) for r in out["runs"]] == [
        ("r1", 2, 3.0),
        ("r2", 2, 2.0),
    ]
    (c,) = out["cases"]
    assert c["mean"] == [5.5, 4.0, 2.5, 2.5, 2.5, 2.5] and c["count"] == [2] * 6
    assert "series" not in out
    assert ok_json(path, "curves", "-m", "loss", "--series")["series"][1]["best"] == [
        6.0, 4.0, 2.0, 2.0, 2.0, 2.0,
    ]  # fmt: skip
    text = invoke(path, "curves", "-m", "loss", "--window", "2")
    assert text.exit_code == 0 and "curves of loss (min): 2 runs, window 2" in text.stdout


# ----------------------------------------------------------------------- eco-effects


def test_eco_effects_json(chip):
    out = ok_json(chip, "eco-effects", "--metric", "wns")
    eco = {g["eco"]: g for g in out["by_eco"]}
    assert (eco["upsize"]["count"], eco["upsize"]["mean"]) == (2, 4.5)  # (6 + 3) / 2
    assert eco["upsize"]["ci_high"] == pytest.approx(4.5 + T1 * 1.5, rel=1e-12)
    assert eco["buffer"]["mean"] == -3.5 and eco["buffer"]["verdict"] == "too few"
    assert sorted((e["parent"], e["child"], e["delta"]) for e in out["edges"]) == [
        ("base", "s1-buf", -3.5),
        ("base", "s1-up", 6.0),
        ("s1-up", "s2-up", 3.0),
    ]
    assert [x["reason"] for x in out["exclusions"] if x["run"] is None] == [
        "edge s1-buf -> s2-dead (vt_swap): child: no run selected (2 failed, 1 timeout)"
    ]
    text = invoke(chip, "eco-effects", "-m", "wns")
    assert text.exit_code == 0
    assert text.stdout.splitlines()[0].startswith("ECO effects on mean wns (child minus parent")
    assert "by eco class (2)" in text.stdout


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "command", [["stats"], ["outliers"], ["curves"], ["eco-effects"], ["failures"],
                ["compare", "--rank"]],
)  # fmt: skip
def test_unknown_study_is_one_error_line(chip, command):
    res = invoke(chip, *command, "--study", "nope")
    assert res.exit_code == 1 and res.stdout == ""
    assert res.stderr == "error: unknown study 'nope'; known studies: chip\n"


@pytest.mark.parametrize("command", ["stats", "outliers", "eco-effects", "curves"])
def test_unknown_metric_is_one_error_line(chip, command):
    res = invoke(chip, command, "--metric", "nope")
    assert res.exit_code == 1 and res.stdout == ""
    with Ledger(chip) as led:
        seq = led.head.seq
    assert res.stderr == f"error: study 'chip' has no metric 'nope' at seq {seq} (metrics: wns)\n"


def test_bad_selection_is_an_error(chip):
    res = invoke(chip, "stats", "-m", "wns", "--where", "util")
    assert res.exit_code == 1 and res.stderr.startswith(
        "error: cannot read the param filter 'util'"
    )
    res = invoke(chip, "stats", "-m", "wns", "--case", "zz*")
    assert res.exit_code == 1 and "matches 'zz*'" in res.stderr
    res = invoke(chip, "stats", "-m", "wns", "--status", "done")
    assert res.exit_code == 2


def test_missing_ledger_is_an_error(tmp_path):
    res = invoke(str(tmp_path / "none.ledger"), "stats")
    assert res.exit_code == 1 and res.stderr.startswith("error: ")
    assert not (tmp_path / "none.ledger").exists()


# ------------------------------------------------------------------------------ help


@pytest.mark.parametrize(
    "command", ["stats", "compare", "outliers", "failures", "curves", "eco-effects"]
)
def test_help_ends_with_an_example(command):
    res = CliRunner().invoke(cli, [command, "--help"])
    assert res.exit_code == 0
    doc = cli.get_command(None, command).help  # type: ignore[arg-type]
    tail = [line.strip() for line in doc.rstrip().splitlines()]
    examples = tail[tail.index("Example:") + 1 :]
    assert examples and all(line.strip().startswith("ledger ") for line in examples)
    for opt in ("--study", "--as-of", "--json"):
        assert opt in res.stdout


def test_help_imports_no_numpy_scipy_or_pyarrow():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from cli.main import cli\n"
        "for c in ('stats', 'compare', 'outliers', 'failures', 'curves', 'eco-effects'):\n"
        "    assert CliRunner().invoke(cli, [c, '--help']).exit_code == 0\n"
        "print(sorted(m for m in ('numpy', 'scipy', 'pyarrow', 'projections.analytics.api') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
