"""ledger sql end to end: output shapes, determinism across processes, refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("duckdb")

from cli.main import cli  # noqa: E402
from ledger import Ledger  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_700_000_000


def _events() -> list[dict]:
    ev: list[dict] = [{"type": "study_created", "study": "s", "ts": T0}]
    finals = {"a": [1.0, 2.0, 4.5], "b": [0.25, 0.5, 0.75, 1.5], "c": [3.0]}
    for i, (case, values) in enumerate(finals.items()):
        ev.append({"type": "case_created", "study": "s", "case": case, "params": {"k": i},
                   "ts": T0 + i})  # fmt: skip
        for j, v in enumerate(values):
            run = f"{case}{j}"
            ev.append({"type": "run_started", "study": "s", "case": case, "run": run,
                       "seed": j, "ts": T0 + 10 + j})  # fmt: skip
            ev.append({"type": "metrics_recorded", "study": "s", "run": run, "step": 0,
                       "values": {"loss": v * 2}, "ts": T0 + 11 + j})  # fmt: skip
            ev.append({"type": "metrics_recorded", "study": "s", "run": run,
                       "values": {"loss": v, "name=x,y": -v}, "ts": T0 + 12 + j})  # fmt: skip
            ev.append({"type": "run_finished", "study": "s", "run": run,
                       "status": "failed" if run == "b3" else "completed", "ts": T0 + 12 + j})  # fmt: skip
    return ev


@pytest.fixture
def ledger_dir(tmp_path: Path) -> str:
    path = str(tmp_path / "cli.ledger")
    with Ledger(path) as led:
        led.append(_events())
    return path


def _run(ledger_dir: str, *args: str):
    return CliRunner().invoke(cli, ["--ledger", ledger_dir, "sql", *args])


def test_group_by_over_runs_equals_ledger_stats(ledger_dir):
    sql = (
        'SELECT m."case", count(*) AS count, avg(value) AS mean, median(value) AS median, '
        "stddev_samp(value) AS std, min(value) AS min, max(value) AS max FROM metrics m "
        "JOIN runs r USING (study, run) WHERE r.status = 'completed' AND m.metric = 'loss' "
        'AND m.step IS NULL GROUP BY m."case"'
    )
    got = _run(ledger_dir, sql, "--json")
    assert got.exit_code == 0, got.output
    doc = json.loads(got.stdout)
    stats = CliRunner().invoke(
        cli, ["--ledger", ledger_dir, "stats", "--metric", "loss", "--by", "case", "--json"]
    )
    assert stats.exit_code == 0, stats.output
    groups = json.loads(stats.stdout)["groups"]
    cols = doc["columns"]
    rows = [dict(zip(cols, r)) for r in doc["rows"]]
    assert [r["case"] for r in rows] == [g["group"] for g in groups] == ["a", "b", "c"]
    for row, g in zip(rows, groups):
        for key in ("count", "mean", "median", "std", "min", "max"):
            want = None if g[key] is None else pytest.approx(g[key], rel=1e-12)
            assert row[key] == want, (row["case"], key)
    assert rows[1]["count"] == 3  # b3 failed: left out by both


def test_table_json_and_csv(ledger_dir):
    sql = 'SELECT "case", count(*) AS runs FROM runs GROUP BY "case"'
    text = _run(ledger_dir, sql)
    assert text.exit_code == 0, text.output
    assert text.stdout.splitlines() == ["case  runs", "----  ----", "a        3", "b        4",
                                        "c        1"]  # fmt: skip
    as_json = json.loads(_run(ledger_dir, sql, "--json").stdout)
    assert as_json == {"columns": ["case", "runs"], "rows": [["a", 3], ["b", 4], ["c", 1]]}
    as_csv = _run(ledger_dir, sql, "--csv")
    assert as_csv.stdout == '"case","runs"\n"a","3"\n"b","4"\n"c","1"\n'
    both = _run(ledger_dir, sql, "--csv", "--json")
    assert both.exit_code == 2


def test_as_of_gives_the_past(ledger_dir):
    sql = "SELECT count(*) AS n, max(seq) AS last FROM events"
    assert json.loads(_run(ledger_dir, sql, "--json", "--as-of", "7").stdout)["rows"] == [[7, 7]]
    past = _run(ledger_dir, "SELECT run, status FROM runs", "--as-of", "9", "--json")
    assert json.loads(past.stdout)["rows"] == [["a0", "completed"], ["a1", None]]
    late = _run(ledger_dir, sql, "--as-of", "999")
    assert late.exit_code == 1 and late.stderr.startswith("error: ")


def _in_process(ledger_dir: str, fmt: str, tz: str, seed: str) -> bytes:
    env = {**os.environ, "TZ": tz, "PYTHONHASHSEED": seed}
    sql = (
        "SELECT r.run, r.started_ts, r.finished_ts::VARCHAR AS t, m.metric, m.value "
        "FROM runs r JOIN metrics m USING (study, run)"
    )
    out = subprocess.run(
        [sys.executable, "-m", "cli.main", "--ledger", ledger_dir, "sql", sql, fmt],
        cwd=ROOT,
        env=env,
        capture_output=True,
        check=True,
    )
    return out.stdout


def test_the_same_query_gives_the_same_bytes_in_any_process(ledger_dir):
    for fmt in ("--json", "--csv"):
        a = _in_process(ledger_dir, fmt, "UTC", "1")
        b = _in_process(ledger_dir, fmt, "Asia/Kolkata", "2")
        assert a == b and len(a) > 500
    assert b"+00" in a and b'"2023-11-14T22:13:30.000000Z"' in a  # times in UTC, whatever TZ


@pytest.mark.parametrize(
    ("sql", "says"),
    [
        ("INSERT INTO runs SELECT * FROM runs", "refuses INSERT statements"),
        ("ATTACH 'x.db'", "refuses ATTACH statements"),
        ("COPY runs TO 'out.csv'", "refuses COPY statements"),
        ("SELECT * FROM read_csv('/etc/hostname')", "cannot read or write files"),
        ("SELECT * FROM nowhere", "Catalog Error: Table with name nowhere does not exist"),
    ],
)
def test_refusals_and_errors_are_one_line(ledger_dir, sql, says):
    got = _run(ledger_dir, sql)
    assert got.exit_code == 1
    assert got.stdout == ""
    lines = got.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], got.stderr


def test_a_refused_statement_writes_nothing(ledger_dir, tmp_path):
    target = tmp_path / "out.csv"
    got = _run(ledger_dir, f"COPY (SELECT 1) TO '{target}'")
    assert got.exit_code == 1 and not target.exists()


_NO_FOLD = """
import sys
import projections.sql as s

def refuse(*args, **kwargs):
    raise SystemExit("folded the log")

s._build = refuse
from cli.main import main
main()
"""


def _process(ledger_dir: str, *args: str, no_fold: bool = False, env=None):
    cmd = [sys.executable, "-c", _NO_FOLD] if no_fold else [sys.executable, "-m", "cli.main"]
    return subprocess.run(
        [*cmd, "--ledger", ledger_dir, "sql", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        check=False,
    )


def test_a_second_process_reads_the_disk_cache_and_prints_the_same_bytes(
    ledger_dir, _table_cache_dir
):
    """The first command folds and writes the tables; the second, in a new process
    whose fold would exit, reads them and prints byte for byte what the first did, in
    every format; --no-cache folds (and would exit)."""
    sql = (
        "SELECT r.run, r.status, m.metric, m.value, e.type FROM runs r "
        "JOIN metrics m USING (study, run) JOIN events e USING (seq)"
    )
    for fmt in ([], ["--json"], ["--csv"]):
        first = _process(ledger_dir, sql, *fmt)
        assert first.returncode == 0 and first.stderr == b"" and len(first.stdout) > 300
        second = _process(ledger_dir, sql, *fmt, no_fold=True)
        assert second.returncode == 0, second.stderr
        assert second.stdout == first.stdout and second.stderr == b""
    assert len(list(_table_cache_dir.glob("*.arrow"))) == 3
    refused = _process(ledger_dir, sql, "--no-cache", no_fold=True)
    assert refused.returncode != 0 and b"folded the log" in refused.stderr
    off = _process(ledger_dir, sql, no_fold=True, env={"LEDGER_CACHE_DIR": "off"})
    assert off.returncode != 0 and b"folded the log" in off.stderr
    assert _process(ledger_dir, sql, "--csv", "--no-cache").stdout == first.stdout


def test_an_unwritable_cache_folder_is_one_warning(ledger_dir, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    sql = "SELECT run, status FROM runs"
    got = _process(ledger_dir, sql, env={"LEDGER_CACHE_DIR": str(blocked / "tables")})
    assert got.returncode == 0 and got.stdout == _process(ledger_dir, sql, "--no-cache").stdout
    lines = got.stderr.decode().splitlines()
    assert (
        len(lines) == 1
        and lines[0].startswith("warning: table cache ")
        and "not writable" in lines[0]
    )
