"""What a search needs from the analysis commands (issue 18): ``rank`` selects cases and
runs like the analytics commands, ``compare`` compares groups of cases by a param, and
``stats`` on one run per case says once what to do instead of warning per case. The
numbers are checked by hand (Welch's t written out), not against the code under test."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from cli.main import cli
from ledger import Ledger

S = "search"
#: case -> (batch, lr, [(run, status, final loss)])
CASES = {
    "t00": (16, 0.1, [("t00-a", "completed", 0.50), ("t00-b", "completed", 0.54)]),
    "t01": (16, 0.3, [("t01-a", "completed", 0.46), ("t01-b", "pruned", 0.40)]),
    "t02": (64, 0.1, [("t02-a", "completed", 0.61), ("t02-b", "completed", 0.66)]),
    "t03": (64, 0.3, [("t03-a", "completed", 0.58), ("t03-b", "failed", None)]),
    "u04": (32, 0.2, [("u04-a", "completed", 0.30)]),
}


def events() -> list[dict]:
    ev: list[dict] = [
        {
            "type": "study_created",
            "study": S,
            "objectives": [{"metric": "loss", "direction": "min"}],
        }
    ]
    for case, (batch, lr, runs) in CASES.items():
        ev.append({"type": "case_created", "study": S, "case": case,
                   "params": {"batch": batch, "lr": lr}})  # fmt: skip
        for run, status, loss in runs:
            ev.append({"type": "run_started", "study": S, "case": case, "run": run})
            if loss is not None:
                ev.append({"type": "metrics_recorded", "study": S, "run": run,
                           "values": {"loss": loss}})  # fmt: skip
            ev.append({"type": "run_finished", "study": S, "run": run, "status": status})
    return ev


@pytest.fixture
def path(tmp_path) -> str:
    p = str(tmp_path / "s.ledger")
    with Ledger(p) as led:
        led.append(events())
    return p


def run(path: str, *args: str):
    return CliRunner().invoke(cli, ["--ledger", path, *args])


def ranked(res) -> list[tuple[str, float, int]]:
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    return [(r["case"], r["score"], r["runs"]) for r in doc["ranking"]]


# ------------------------------------------------------------------------------- rank


def test_rank_where_selects_cases_by_param(path):
    got = ranked(run(path, "rank", "--where", "batch==16", "--json"))
    assert got == [("t01", 0.46, 1), ("t00", 0.52, 2)]
    got = ranked(run(path, "rank", "--where", "batch>=32", "--where", "lr<0.25", "--json"))
    assert got == [("u04", 0.30, 1), ("t02", pytest.approx(0.635), 2)]


def test_rank_case_globs_select_cases(path):
    got = ranked(run(path, "rank", "--case", "t0[23]", "--case", "u*", "--json"))
    assert [c for c, _, _ in got] == ["u04", "t03", "t02"]


def test_rank_status_chooses_the_runs_that_count(path):
    # pruned runs' finals count when asked for: t01 = mean(0.46, 0.40)
    res = run(path, "rank", "--status", "completed", "--status", "pruned", "--json")
    got = dict((c, (s, n)) for c, s, n in ranked(res))
    assert got["t01"] == (pytest.approx(0.43), 2)
    assert got["t00"] == (pytest.approx(0.52), 2)
    doc = json.loads(run(path, "rank", "--status", "failed", "--json").stdout)
    assert doc["ranking"] == []  # the failed run has no loss
    reasons = {u["case"]: u["reason"] for u in doc["unranked"]}
    assert reasons["t03"] == "metric missing: loss"
    assert reasons["t00"] == "no run with status failed (2 completed)"


def test_rank_without_filters_is_unchanged(path):
    res = run(path, "rank", "--json")
    doc = json.loads(res.stdout)
    assert "selection" not in doc
    assert [r["case"] for r in doc["ranking"]] == ["u04", "t01", "t00", "t03", "t02"]


def test_rank_filters_are_reported_and_typos_are_errors(path):
    doc = json.loads(run(path, "rank", "--where", "batch==16", "--json").stdout)
    assert doc["selection"] == {"cases": [], "where": ["batch == 16"], "statuses": ["completed"]}
    res = run(path, "rank", "--where", "batchh==16")
    assert res.exit_code == 1
    assert res.stderr.startswith("error: no case of study 'search' at seq ")
    assert "sets the param 'batchh' (params: batch, lr)" in res.stderr
    assert res.stderr.count("\n") == 1
    res = run(path, "rank", "--case", "zz*")
    assert res.exit_code == 1 and "no case of study 'search'" in res.stderr
    res = run(path, "rank", "--where", "batch==16", "--summary")
    assert res.exit_code == 2  # a stage summary covers whole stages


def test_rank_table_says_what_was_selected(path):
    res = run(path, "rank", "--where", "batch==16", "--status", "completed")
    assert res.exit_code == 0, res.stderr
    first = res.stdout.splitlines()[0]
    assert first.startswith("study search, all stages, as of seq ")
    assert "where batch == 16" in first


# ---------------------------------------------------------------------------- compare


def _welch(a: list[float], b: list[float]) -> tuple[float, float]:
    """Welch's t and its Welch-Satterthwaite df, written out."""
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    va = sum((x - ma) ** 2 for x in a) / (len(a) - 1)
    vb = sum((x - mb) ** 2 for x in b) / (len(b) - 1)
    sa, sb = va / len(a), vb / len(b)
    t = (ma - mb) / math.sqrt(sa + sb)
    df = (sa + sb) ** 2 / (sa**2 / (len(a) - 1) + sb**2 / (len(b) - 1))
    return t, df


def test_compare_groups_of_cases_by_a_param(path):
    res = run(path, "compare", "-m", "loss", "--by", "param:batch", "--a", "16", "--b", "64",
              "--json")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    a = [0.50, 0.54, 0.46]  # completed runs of t00, t01
    b = [0.61, 0.66, 0.58]  # completed runs of t02, t03
    t, df = _welch(a, b)
    assert doc["test"] == "welch" and doc["by"] == "param:batch"
    assert (doc["a"], doc["b"]) == ("16", "64")
    assert (doc["n_a"], doc["n_b"]) == (3, 3)
    assert doc["cases_a"] == ["t00", "t01"] and doc["cases_b"] == ["t02", "t03"]
    assert doc["mean_a"] == pytest.approx(sum(a) / 3)
    assert doc["statistic"] == pytest.approx(t)
    assert doc["df"] == pytest.approx(df)
    assert 0 < doc["p_value"] < 0.05


def test_compare_by_param_with_mann_whitney_and_errors(path):
    res = run(path, "compare", "-m", "loss", "--by", "param:batch", "--a", "16", "--b", "64",
              "--test", "mannwhitney", "--json")  # fmt: skip
    doc = json.loads(res.stdout)
    assert doc["statistic"] == 0.0  # U of the first group: no 16 run is above a 64 run
    assert (doc["n_a"], doc["n_b"]) == (3, 3)
    res = run(path, "compare", "-m", "loss", "--by", "param:batch", "--a", "16", "--b", "128")
    assert res.exit_code == 1
    assert res.stderr == ("error: no selected run has param:batch = 128 (values: 16, 32, 64)\n")
    res = run(path, "compare", "-m", "loss", "--by", "param:batch", "--a", "16", "--b", "64",
              "--paired")  # fmt: skip
    assert res.exit_code == 1 and "--paired" in res.stderr
    res = run(path, "compare", "-m", "loss", "--by", "param:batch", "--cases", "16,64")
    assert res.exit_code == 2


# ------------------------------------------------------------------------------ stats


def test_stats_with_one_run_per_case_suggests_by_all(tmp_path):
    p = str(tmp_path / "one.ledger")
    ev: list[dict] = [{"type": "study_created", "study": "o",
                       "objectives": [{"metric": "loss", "direction": "min"}]}]  # fmt: skip
    for i in range(6):
        ev += [
            {"type": "case_created", "study": "o", "case": f"trial-{i}"},
            {"type": "run_started", "study": "o", "case": f"trial-{i}", "run": f"r{i}"},
            {"type": "metrics_recorded", "study": "o", "run": f"r{i}", "values": {"loss": i / 10}},
            {"type": "run_finished", "study": "o", "run": f"r{i}", "status": "completed"},
        ]
    with Ledger(p) as led:
        led.append(ev)
    res = run(p, "stats")
    assert res.exit_code == 0, res.stderr
    assert res.stderr == (
        "warning: every case has one run, so statistics per case say nothing about "
        "spread: pool the runs with --by all (or --by stage, eco, eco_class or param:NAME)\n"
    )
    res = run(p, "stats", "--by", "all", "--json")
    assert res.stderr == ""
    (group,) = json.loads(res.stdout)["groups"]
    assert group["count"] == 6 and group["mean"] == pytest.approx(0.25)


# ------------------------------------------------------------------------------- help


def test_help_says_what_where_filters(path):
    export_help = " ".join(run(path, "export", "--help").stdout.split())
    assert "Fields, not params" in export_help
    for command in ("stats", "rank", "compare"):
        text = " ".join(run(path, command, "--help").stdout.split())
        assert "--where EXPR A filter on the case's params" in text, command
