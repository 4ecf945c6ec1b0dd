"""``ledger report``: writes one file, prints where, refuses what it cannot do."""

from __future__ import annotations

import json

from click.testing import CliRunner

from cli.main import cli
from ledger import Ledger

S = "chip"


def _ledger(path) -> None:
    ev: list[dict] = [
        {
            "type": "study_created",
            "study": S,
            "objectives": [{"metric": "qor", "direction": "max"}],
            "ts": 1,
        },
        {"type": "case_created", "study": S, "case": "base", "ts": 1},
        {
            "type": "eco_applied",
            "study": S,
            "case": "a",
            "parent": "base",
            "eco": "resize",
            "ts": 1,
        },
        {
            "type": "eco_applied",
            "study": S,
            "case": "b",
            "parent": "base",
            "eco": "buffer",
            "ts": 1,
        },
    ]
    for case, qor, drc in [("base", 1.0, 0), ("a", 3.0, 0), ("b", 2.0, 2)]:
        run = f"{case}-1"
        ev += [
            {"type": "run_started", "study": S, "case": case, "run": run, "ts": 2},
            {
                "type": "metrics_recorded",
                "study": S,
                "run": run,
                "values": {"qor": qor, "drc": drc},
                "ts": 2,
            },
            {"type": "run_finished", "study": S, "run": run, "status": "completed", "ts": 3},
        ]
    with Ledger(path) as led:
        led.append(ev)


def test_report_writes_the_file_and_says_where(tmp_path):
    path = tmp_path / "c.ledger"
    _ledger(path)
    out = tmp_path / "chip.html"
    res = CliRunner().invoke(
        cli, ["--ledger", str(path), "report", "--study", S, "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert res.output.startswith("report of study chip as of seq 13 (head ")
    assert str(out) in res.output and out.read_text().startswith("<!DOCTYPE html>")

    res = CliRunner().invoke(
        cli,
        [
            "--ledger",
            str(path),
            "report",
            "--out",
            str(tmp_path / "old.html"),
            "--as-of",
            "4",
            "--require",
            "drc==0",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert (info["study"], info["as_of"], info["bytes"]) == (
        S,
        4,
        (tmp_path / "old.html").stat().st_size,
    )
    with Ledger(path, create=False, readonly=True) as led:
        assert info["head_hash"] == led.hash_at(4)


def test_require_marks_infeasible_cases(tmp_path):
    path = tmp_path / "c.ledger"
    _ledger(path)
    out = tmp_path / "r.html"
    res = CliRunner().invoke(
        cli, ["--ledger", str(path), "report", "--out", str(out), "--require", "drc==0"]
    )
    assert res.exit_code == 0, res.output
    html = out.read_text()
    assert 'class="node m-infeasible" data-case="b"' in html
    assert "infeasible: drc==0 (mean 2)" in html


def test_refusals_are_one_line_errors(tmp_path):
    path = tmp_path / "c.ledger"
    _ledger(path)
    runner = CliRunner()
    cases = [
        (["report", "--study", "nope", "--out", str(tmp_path / "x.html")], "unknown study 'nope'"),
        (["report", "--out", str(tmp_path / "no" / "x.html")], "does not exist"),
        (["report", "--out", str(tmp_path / "x.html"), "--as-of", "99"], "outside the log"),
        (
            ["report", "--out", str(tmp_path / "x.html"), "--require", "drc=0"],
            "cannot read the constraint",
        ),
    ]
    for args, words in cases:
        res = runner.invoke(cli, ["--ledger", str(path), *args])
        assert res.exit_code == 1, (args, res.output)
        assert (
            res.output.count("\n") == 1 and res.output.startswith("error: ") and words in res.output
        )
    assert not (tmp_path / "x.html").exists()
    res = runner.invoke(
        cli,
        ["--ledger", str(tmp_path / "missing.ledger"), "report", "--out", str(tmp_path / "x.html")],
    )
    assert res.exit_code == 1 and not (tmp_path / "missing.ledger").exists()
