"""`ledger export` and `ledger exports` through click: exit codes, stdout, stderr."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from ledger import Ledger

sys.path.insert(0, os.fspath(Path(__file__).resolve().parents[1] / "projections" / "export"))
from seeded_study import CANARIES, seeded_events  # noqa: E402


@pytest.fixture
def ledger_path(tmp_path: Path) -> str:
    path = tmp_path / "l.ledger"
    with Ledger(path) as led:
        led.append(seeded_events("chip"))
        led.append(seeded_events("other", seed=11, n_cases=2, attempts=1))
    return os.fspath(path)


def run(ledger_path: str, *args: str):
    return CliRunner().invoke(cli, ["--ledger", ledger_path, *args], catch_exceptions=False)


def test_export_writes_the_snapshot_and_says_where(ledger_path, tmp_path):
    out = tmp_path / "out"
    res = run(ledger_path, "export", "--study", "chip", "--format", "csv", "--out", str(out))
    assert res.exit_code == 0, res.stderr
    folder = out / "chip"
    assert sorted(os.listdir(folder)) == ["cases.csv", "manifest.json", "metrics.csv", "runs.csv"]
    digest = hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest()
    assert res.stdout.startswith("exported 'chip' as of seq ")
    assert os.fspath(folder.resolve()) in res.stdout and digest[:16] in res.stdout
    assert res.stderr == ""  # no progress bar when stderr is not a terminal


def test_export_json_output_and_default_format_all(ledger_path, tmp_path):
    res = run(ledger_path, "export", "--study", "chip", "--out", str(tmp_path / "o"), "--json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    (entry,) = doc["exports"]
    assert entry["study"] == "chip" and entry["formats"] == ["json", "csv", "parquet", "xlsx"]
    manifest = Path(entry["path"]) / "manifest.json"
    assert entry["manifest_sha256"] == hashlib.sha256(manifest.read_bytes()).hexdigest()
    on_disk = json.loads(manifest.read_text())
    assert {k: v for k, v in entry.items() if k not in ("path", "manifest_sha256")} == on_disk


def test_all_studies_and_as_of(ledger_path, tmp_path):
    with Ledger(ledger_path) as led:
        k = len(seeded_events("chip"))
        assert led.head.seq > k
    res = run(
        ledger_path,
        "export",
        "--all-studies",
        "--format",
        "json",
        "--out",
        str(tmp_path / "o"),
        "--as-of",
        str(k),
        "--json",
    )
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert [e["study"] for e in doc["exports"]] == ["chip"]  # "other" came after seq k
    assert doc["exports"][0]["as_of"] == k
    res = run(
        ledger_path, "export", "--all-studies", "--format", "json", "--out", str(tmp_path / "p")
    )
    assert res.exit_code == 0
    assert sorted(os.listdir(tmp_path / "p")) == ["chip", "other"]


def test_where_fields_and_redaction_options(tmp_path):
    path = os.fspath(tmp_path / "l.ledger")
    with Ledger(path) as led:
        led.append(seeded_events("chip", canaries=True), redact=False)
    out = tmp_path / "o"
    res = run(
        path,
        "export",
        "-s",
        "chip",
        "--format",
        "csv",
        "--format",
        "json",
        "--out",
        str(out),
        "--where",
        "stage>=1",
        "--where",
        "status=completed",
        "--fields",
        "runs:case,run,status",
        "--redact",
        "host",
    )
    assert res.exit_code == 0, res.stderr
    lines = (out / "chip" / "runs.csv").read_text().splitlines()
    assert lines[0] == '"case","run","status"'
    assert all(line.endswith('"completed"') for line in lines[1:]) and len(lines) > 1
    data = b"".join(p.read_bytes() for p in (out / "chip").iterdir())
    assert not any(c.encode() in data for c in CANARIES.values())
    assert b"node1" not in (out / "chip" / "study.json").read_bytes()  # --redact host
    res = run(
        path,
        "export",
        "-s",
        "chip",
        "--format",
        "json",
        "--out",
        str(tmp_path / "p"),
        "--no-redact",
    )
    assert res.exit_code == 0
    assert CANARIES["config"].encode() in (tmp_path / "p" / "chip" / "study.json").read_bytes()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--study", "nope"], "error: unknown study 'nope'; known studies: chip, other\n"),
        (
            ["--study", "chip", "--where", "stag>1"],
            "error: cannot read --where 'stag>1': unknown field 'stag'; use one of stage, "
            "status, case, eco, eco_class, ts\n",
        ),
        (
            ["--study", "chip", "--fields", "runs:nope"],
            "error: --fields 'runs:nope': table runs has no such column",
        ),
        (["--study", "chip", "--as-of", "99999"], "error: as-of seq 99999 is outside the log"),
    ],
)
def test_refused_input_is_one_error_line_and_exit_1(ledger_path, tmp_path, args, message):
    res = run(ledger_path, "export", *args, "--out", str(tmp_path / "o"))
    assert res.exit_code == 1
    assert res.stderr.startswith(message)
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert res.stdout == ""
    assert not (tmp_path / "o" / "chip").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--out", "x"],  # neither --study nor --all-studies
        ["--study", "chip", "--all-studies", "--out", "x"],
        ["--study", "chip"],  # no --out
        ["--study", "chip", "--out", "x", "--format", "pdf"],
    ],
)
def test_usage_errors_exit_2(ledger_path, args):
    res = run(ledger_path, "export", *args)
    assert res.exit_code == 2


def test_export_refuses_a_missing_ledger(tmp_path):
    missing = os.fspath(tmp_path / "typo.ledger")
    res = run(missing, "export", "--study", "chip", "--out", str(tmp_path / "o"))
    assert res.exit_code == 1 and res.stderr.startswith("error: ")
    assert not os.path.exists(missing)


def test_exports_lists_the_journal(ledger_path, tmp_path):
    res = run(ledger_path, "exports")
    assert res.exit_code == 0 and res.stdout == "no exports recorded yet\n"
    run(ledger_path, "export", "-s", "chip", "--format", "csv", "--out", str(tmp_path / "a"))
    run(ledger_path, "export", "-s", "other", "--format", "json", "--out", str(tmp_path / "b"))
    res = run(ledger_path, "exports")
    assert res.exit_code == 0
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["time", "study", "as_of", "formats", "manifest", "path"]
    assert " chip " in lines[2] and " csv " in lines[2] and " other " in lines[3]
    res = run(ledger_path, "exports", "--study", "other", "--json")
    (entry,) = json.loads(res.stdout)["exports"]
    manifest = tmp_path / "b" / "other" / "manifest.json"
    assert entry["manifest_sha256"] == hashlib.sha256(manifest.read_bytes()).hexdigest()
    assert entry["formats"] == ["json"] and entry["time"].endswith("Z")


def test_help_ends_with_an_example():
    for name in ("export", "exports"):
        res = CliRunner().invoke(cli, [name, "--help"])
        assert res.exit_code == 0
        assert "Example:" in res.stdout and f"ledger {name}" in res.stdout.split("Example:")[1]


def test_the_progress_bar_draws_one_line_on_stderr(capsys):
    from cli.commands.export import _Bar

    bar = _Bar()
    bar(0, 4, "chip: reading")
    bar(2, 4, "chip: metrics.csv")
    bar(4, 4, "done")
    bar.close()
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\r") == 3 and captured.err.endswith("\n")
    assert "[############............] 2/4 chip: metrics.csv" in captured.err


# ------------------------------------------------------------------------ issue 18


def _csv_column(path: Path, name: str) -> list[str]:
    import csv

    with open(path, newline="", encoding="utf-8") as fh:
        return [row[name] for row in csv.DictReader(fh)]


def test_csv_raw_cells_join_with_parquet_and_the_manifest_says_so(tmp_path):
    import pyarrow.parquet as pq

    path = os.fspath(tmp_path / "h.ledger")
    with Ledger(path) as led:
        led.append(seeded_events("chip", hostile=True))
    formats = ["--format", "csv", "--format", "parquet"]
    res = run(path, "export", "--study", "chip", *formats, "--out", str(tmp_path / "safe"))
    assert res.exit_code == 0, res.stderr
    res = run(
        path, "export", "--study", "chip", *formats, "--csv-raw", "--out", str(tmp_path / "raw")
    )
    assert res.exit_code == 0, res.stderr
    safe, raw = tmp_path / "safe" / "chip", tmp_path / "raw" / "chip"
    parquet_ids = pq.read_table(raw / "cases.parquet").column("case").to_pylist()
    assert "+1+1" in parquet_ids
    # By default a spreadsheet is protected: the ids carry a ' and do not join.
    assert "'+1+1" in _csv_column(safe / "cases.csv", "case")
    assert _csv_column(safe / "cases.csv", "case") != parquet_ids
    # --csv-raw: the same cells as Parquet, header names included.
    assert _csv_column(raw / "cases.csv", "case") == parquet_ids
    raw_runs = pq.read_table(raw / "metrics.parquet").column("run").to_pylist()
    assert _csv_column(raw / "metrics.csv", "run") == [str(r) for r in raw_runs]
    assert "param.=evil" in (raw / "cases.csv").read_text().splitlines()[0]
    assert json.loads((safe / "manifest.json").read_text())["csv_raw"] is False
    assert json.loads((raw / "manifest.json").read_text())["csv_raw"] is True
    journal = json.loads(run(path, "exports", "--json").stdout)["exports"]
    assert [e["csv_raw"] for e in journal] == [False, True]


@pytest.mark.parametrize("inside", ["afile.txt/sub", "afile.txt/sub/deeper"])
def test_out_through_a_file_is_one_error_line(ledger_path, tmp_path, inside):
    (tmp_path / "afile.txt").write_text("not a folder")
    out = tmp_path / inside
    res = run(ledger_path, "export", "--study", "chip", "--format", "csv", "--out", str(out))
    assert res.exit_code == 1
    assert res.stderr.startswith(f"error: cannot use --out {os.fspath(out)}: ")
    assert f"{os.fspath(tmp_path / 'afile.txt')} is a file, not a folder" in res.stderr
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert (tmp_path / "afile.txt").read_text() == "not a folder"
    # --out naming the file itself is click's usage error (exit 2), not a traceback
    res = run(ledger_path, "export", "--study", "chip", "--out", str(tmp_path / "afile.txt"))
    assert res.exit_code == 2 and "is a file" in res.stderr
