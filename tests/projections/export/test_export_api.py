"""export_study / export_all over real ledgers: files, determinism, time travel, safety,
filters, columns and the journal (issue 4)."""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from seeded_study import CANARIES, HOSTILE_CASES, T0, in_force, seeded_events

from ledger import Ledger
from projections.base import AsOfError, UnknownStudy
from projections.export.api import export_all, export_study, list_exports
from projections.export.manifest import read_manifest, verify_manifest
from projections.export.safety import TRIGGERS, ExportError, unneutralise_cell
from projections.export.select import SelectionError
from projections.export.tables import collect
from projections.study import load_study

ROOT = Path(__file__).resolve().parents[3]
NEGATIVE = re.compile(r"-(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
ALL_FILES = [
    "cases.csv",
    "cases.parquet",
    "manifest.json",
    "metrics.csv",
    "metrics.parquet",
    "report.xlsx",
    "runs.csv",
    "runs.parquet",
    "study.json",
]


def make_ledger(path: Path, *studies: str, redact: bool = True, **kw) -> Ledger:
    led = Ledger(path)
    for i, study in enumerate(studies or ("chip",)):
        led.append(seeded_events(study, seed=7 + i, **kw), redact=redact)
    return led


@pytest.fixture
def led(tmp_path):
    with make_ledger(tmp_path / "l.ledger") as led:
        yield led


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def hashes(folder: Path) -> dict[str, str]:
    return {p.name: sha(p) for p in sorted(folder.iterdir())}


def every_text(path: Path) -> bytes:
    """A file's content as a reader sees it: xlsx unzipped, Parquet decoded."""
    if path.suffix == ".xlsx":
        with zipfile.ZipFile(path) as z:
            return b"".join(z.read(n) for n in z.namelist())
    if path.suffix == ".parquet":
        return repr(pq.read_table(path).to_pylist()).encode()
    return path.read_bytes()


# ------------------------------------------------------------------------ files, manifest


def test_all_formats_write_every_file_and_the_manifest_matches(led, tmp_path):
    m = export_study(led, "chip", tmp_path / "out")
    folder = tmp_path / "out" / "chip"
    assert m.path == folder.resolve()
    assert sorted(os.listdir(folder)) == ALL_FILES
    assert verify_manifest(folder) == []
    on_disk = read_manifest(folder)
    assert on_disk == dict(m)
    assert m.sha256 == sha(folder / "manifest.json")
    for key in (
        "ledger_id",
        "study",
        "as_of",
        "head_hash",
        "format_version",
        "versions",
        "files",
        "redacted",
    ):
        assert key in on_disk
    assert on_disk["ledger_id"] == led.ledger_id
    assert on_disk["as_of"] == led.head.seq
    assert on_disk["head_hash"] == led.hash_at(led.head.seq) == led.head.hash
    for name, info in on_disk["files"].items():
        assert info["sha256"] == sha(folder / name)
        assert info["bytes"] == (folder / name).stat().st_size
    assert on_disk["files"]["cases.csv"]["rows"] == 6
    assert on_disk["files"]["runs.csv"]["rows"] == 12
    assert on_disk["files"]["metrics.parquet"]["rows"] == len(in_force(seeded_events("chip")))
    assert on_disk["files"]["study.json"]["rows"] is None


@pytest.mark.parametrize(
    ("formats", "files"),
    [
        (["csv"], ["cases.csv", "manifest.json", "metrics.csv", "runs.csv"]),
        (["json"], ["manifest.json", "study.json"]),
        (
            ["parquet", "xlsx"],
            ["cases.parquet", "manifest.json", "metrics.parquet", "report.xlsx", "runs.parquet"],
        ),
        ("all", ALL_FILES),
    ],
)
def test_formats_choose_the_files(led, tmp_path, formats, files):
    m = export_study(led, "chip", tmp_path / "out", formats=formats)
    assert sorted(os.listdir(m.path)) == files
    assert set(m["files"]) == set(files) - {"manifest.json"}


def test_unknown_format_study_and_as_of_are_refused(led, tmp_path):
    with pytest.raises(ExportError, match="unknown export format 'pdf'; use json, csv"):
        export_study(led, "chip", tmp_path / "o", formats=["pdf"])
    with pytest.raises(UnknownStudy, match="unknown study 'nope'; known studies: chip"):
        export_study(led, "nope", tmp_path / "o")
    with pytest.raises(AsOfError, match="outside the log"):
        export_study(led, "chip", tmp_path / "o", as_of=led.head.seq + 1)
    assert not (tmp_path / "o" / "chip").exists()


# --------------------------------------------------------------------------- determinism

EXPORT = r"""
import sys
sys.path.insert(0, sys.argv[1])
from cli.main import main
sys.argv = ["ledger", "--ledger", sys.argv[2], "export", "--study", "chip", "--format", "all",
            "--out", sys.argv[3]]
main()
"""


def _export_in_subprocess(ledger_path: Path, out: Path, seed: str, tz: str) -> None:
    env = dict(os.environ, PYTHONHASHSEED=seed, TZ=tz, LC_ALL="C", LANG="C")
    done = subprocess.run(
        [sys.executable, "-c", EXPORT, os.fspath(ROOT), os.fspath(ledger_path), os.fspath(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_two_processes_export_identical_bytes(tmp_path):
    """R12: different hash seed, time zone and second (zip times have 2 s resolution)."""
    path = tmp_path / "l.ledger"
    make_ledger(path, hostile=True, n_cases=7).close()
    start = time.monotonic()
    _export_in_subprocess(path, tmp_path / "a", "1", "UTC")
    time.sleep(max(0.0, 2.1 - (time.monotonic() - start)))
    _export_in_subprocess(path, tmp_path / "b", "4242", "KIR-14")
    a, b = hashes(tmp_path / "a" / "chip"), hashes(tmp_path / "b" / "chip")
    assert sorted(a) == ALL_FILES
    assert a == b
    with Ledger(path) as led:
        assert len(list_exports(led)) == 2  # journalled, and the head did not move
        assert led.head.seq == len(seeded_events("chip", hostile=True, n_cases=7))


def test_as_of_after_more_appends_equals_the_export_made_then(tmp_path):
    led = make_ledger(tmp_path / "l.ledger")
    k = led.head.seq
    export_study(led, "chip", tmp_path / "then")
    later = [
        {"type": "case_created", "study": "chip", "case": "late", "ts": T0 + 10**6},
        {
            "type": "run_started",
            "study": "chip",
            "case": "late",
            "run": "late/r1",
            "ts": T0 + 10**6 + 1,
        },
        {
            "type": "metrics_recorded",
            "study": "chip",
            "run": "late/r1",
            "values": {"qor": 1.0},
            "ts": T0 + 10**6 + 2,
        },
        {
            "type": "metrics_recorded",
            "study": "chip",
            "run": "late/r1",
            "values": {"qor": 2.0},
            "ts": T0 + 10**6 + 3,
        },
        # changes what counts for runs that existed at k
        {
            "type": "run_invalidated",
            "study": "chip",
            "run": "c01/r1",
            "reason": "late audit",
            "ts": T0 + 10**6 + 4,
        },
    ]
    led.append(later)
    led.append(seeded_events("other", seed=99))
    m = export_study(led, "chip", tmp_path / "now", as_of=k)
    assert m["as_of"] == k and m["head_hash"] == led.hash_at(k)
    assert hashes(tmp_path / "now" / "chip") == hashes(tmp_path / "then" / "chip")
    head = export_study(led, "chip", tmp_path / "head")
    assert head["files"]["metrics.csv"]["sha256"] != m["files"]["metrics.csv"]["sha256"]
    assert head["files"]["cases.csv"]["rows"] == 7
    led.close()


def test_a_ledger_rebuilt_by_replay_exports_the_same_bytes(led, tmp_path):
    """R12: `ledger log --json | ledger append` gives another ledger id, same files."""
    from ledger.codec import event_to_wire

    copy = Ledger(tmp_path / "copy.ledger")
    copy.append([event_to_wire(env) for env in led.read()], redact=False)
    assert copy.ledger_id != led.ledger_id and copy.head == led.head
    a = export_study(led, "chip", tmp_path / "a")
    b = export_study(copy, "chip", tmp_path / "b")
    ha, hb = hashes(a.path), hashes(b.path)
    assert {k: v for k, v in ha.items() if k != "manifest.json"} == {
        k: v for k, v in hb.items() if k != "manifest.json"
    }
    assert {k: v for k, v in a.items() if k != "ledger_id"} == {
        k: v for k, v in b.items() if k != "ledger_id"
    }
    copy.close()


# ------------------------------------------------------------------------------ tables


def test_parquet_reads_back_with_typed_schemas_and_row_counts(led, tmp_path):
    m = export_study(led, "chip", tmp_path / "out", formats=["parquet"])
    cases = pq.read_table(m.path / "cases.parquet")
    runs = pq.read_table(m.path / "runs.parquet")
    metrics = pq.read_table(m.path / "metrics.parquet")
    for name, t in (("cases", cases), ("runs", runs), ("metrics", metrics)):
        assert t.num_rows == m["files"][f"{name}.parquet"]["rows"]
        assert pq.ParquetFile(m.path / f"{name}.parquet").metadata.num_rows == t.num_rows
    ts = pa.timestamp("us", tz="UTC")
    text = pa.dictionary(pa.int32(), pa.string())
    assert metrics.schema.types == [
        text,
        text,
        text,
        pa.int64(),
        text,
        pa.int64(),
        pa.float64(),
        pa.int64(),
        ts,
    ]
    assert metrics.column_names == [
        "study",
        "case",
        "run",
        "stage",
        "metric",
        "step",
        "value",
        "seq",
        "ts",
    ]
    assert runs.schema.field("started_ts").type == ts
    assert runs.schema.field("finished_ts").type == ts
    assert runs.schema.field("invalidated").type == pa.bool_()
    assert runs.schema.field("wall_s").type == pa.float64()
    assert cases.schema.field("parents").type == pa.list_(pa.string())
    assert cases.schema.field("created_ts").type == ts
    assert cases.schema.field("param.lr").type == pa.float64()
    assert cases.schema.field("param.layers").type == pa.int64()
    assert cases.schema.field("param.flag").type == pa.bool_()
    assert cases.schema.field("param.mode").type == pa.string()
    assert cases.schema.field("param.nested").type == pa.string()  # JSON text
    assert cases.column("param.nested").to_pylist()[3] == '{"a":[1,2],"b":null}'
    assert runs.num_rows == 12 and cases.num_rows == 6


def test_metrics_hold_the_values_in_force_in_export_order(led, tmp_path):
    m = export_study(led, "chip", tmp_path / "out", formats=["parquet"])
    rows = pq.read_table(m.path / "metrics.parquet").to_pylist()
    ref = in_force(seeded_events("chip"))
    got = {(r["run"], r["metric"], r["step"]): r["value"] for r in rows}
    assert got.keys() == ref.keys()
    for key, value in ref.items():
        assert got[key] == value or (math.isnan(got[key]) and math.isnan(value)), key
    assert got[("c00/r2", "qor", 1)] == 9.5  # the correction supersedes
    keys = [(r["case"], r["run"], r["metric"], r["step"] is None, r["step"] or 0) for r in rows]
    assert keys == sorted(keys)  # (case, run, metric, step), the final value last
    assert {r["stage"] for r in rows if r["case"] == "c00"} == {0}
    assert {r["stage"] for r in rows if r["case"] == "c01"} == {1}


def test_metric_columns_equal_the_projections_long_table(led):
    """The export's own in-force pass agrees with the metrics projection's."""
    view = load_study(led, "chip")
    rec = collect(view)
    m = rec.metrics
    got = {
        (m["runs"][r], m["metrics"][k], None if f else s, v)
        for r, k, s, f, v in zip(
            m["run"].tolist(),
            m["metric"].tolist(),
            m["step"].tolist(),
            m["final"].tolist(),
            m["value"].tolist(),
        )
    }
    want = set()
    for finals in (False, True):
        lt = view.metrics.long_table("chip", finals=finals)
        for r, k, s, v in zip(lt["run"], lt["metric"], lt["step"], lt["value"]):
            want.add((lt["runs"][r][1], lt["metrics"][k], None if finals else int(s), float(v)))
    nan = {w for w in want if isinstance(w[3], float) and math.isnan(w[3])}
    assert {g for g in got if not math.isnan(g[3])} == want - nan
    assert len(got) == len(want)


def test_huge_steps_sort_and_supersede_like_small_ones(tmp_path):
    """Steps too wide for the one-key sort take the two-key path; same rules."""
    led = Ledger(tmp_path / "l.ledger")
    big = 2**62
    led.append(
        [
            {"type": "study_created", "study": "s"},
            {"type": "case_created", "study": "s", "case": "a"},
            {"type": "run_started", "study": "s", "case": "a", "run": "a/1"},
            {
                "type": "metrics_recorded",
                "study": "s",
                "run": "a/1",
                "step": big,
                "values": {"x": 1.0},
            },
            {
                "type": "metrics_recorded",
                "study": "s",
                "run": "a/1",
                "step": 0,
                "values": {"x": 2.0},
            },
            {
                "type": "metrics_recorded",
                "study": "s",
                "run": "a/1",
                "step": big,
                "values": {"x": 3.0},
            },
            {"type": "metrics_recorded", "study": "s", "run": "a/1", "values": {"x": 4.0}},
        ]
    )
    m = export_study(led, "s", tmp_path / "o", formats=["parquet"])
    rows = pq.read_table(m.path / "metrics.parquet").to_pylist()
    assert [(r["step"], r["value"], r["seq"]) for r in rows] == [
        (0, 2.0, 5),
        (big, 3.0, 6),
        (None, 4.0, 7),
    ]
    led.close()


def test_csv_cells_a_spreadsheet_would_evaluate_are_neutralised(tmp_path):
    led = make_ledger(tmp_path / "l.ledger", hostile=True, n_cases=7)
    m = export_study(led, "chip", tmp_path / "out", formats=["csv"])
    seen_cases = set()
    for name in ("cases.csv", "runs.csv", "metrics.csv"):
        with open(m.path / name, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader)
            case_col = header.index("case")
            for row in [header, *reader]:
                for cell in row:
                    if cell[:1] in TRIGGERS and not NEGATIVE.fullmatch(cell):
                        pytest.fail(f"{name}: {cell!r} would be evaluated")
                if row is not header:
                    seen_cases.add(unneutralise_cell(row[case_col]))
    assert set(HOSTILE_CASES) <= seen_cases  # neutralised, and reversible
    text = (m.path / "cases.csv").read_bytes().decode()
    assert "\"'=cmd|' /C calc'!A0\"" in text
    assert '"-1.5"' in text  # a negative number stays as it is
    assert '"\'\tTAB"' in text and '"\'\rCR"' in text
    led.close()


def test_secrets_never_reach_an_exported_byte(tmp_path):
    led = make_ledger(tmp_path / "l.ledger", canaries=True, redact=False)
    raw = b"".join(p.read_bytes() for p in (tmp_path / "l.ledger").iterdir())
    assert CANARIES["config"].encode() in raw  # planted: the ledger kept them
    m = export_study(led, "chip", tmp_path / "out")
    for path in sorted(m.path.iterdir()):
        content = every_text(path)
        for canary in CANARIES.values():
            assert canary.encode() not in content, f"{canary} in {path.name}"
    paths = m["redacted"]["paths"]
    assert "$.config.api_key" in paths and "$.config.db" in paths
    assert '$.cases["c00"].params.auth_token' in paths
    assert '$.runs["c00/r1"].config.client_secret' in paths
    assert '$.runs["c00/r1"].artifacts[0].uri' in paths
    assert "$.selections[0].policy.credential" in paths
    # the 40-hex commit under a non-secret key is kept
    assert b"a" * 40 in (m.path / "study.json").read_bytes()

    plain = export_study(led, "chip", tmp_path / "plain", redact=False)
    assert plain["redacted"]["enabled"] is False and plain["redacted"]["paths"] == []
    study_json = (plain.path / "study.json").read_bytes()
    for canary in CANARIES.values():
        assert canary.encode() in study_json
    assert CANARIES["param"].encode() in (plain.path / "cases.csv").read_bytes()
    led.close()


def test_extra_redact_patterns_reach_tables_and_json(led, tmp_path):
    m = export_study(
        led,
        "chip",
        tmp_path / "out",
        formats=["csv", "json"],
        extra_redact=["host", "$.config.flow"],
    )
    runs = (m.path / "runs.csv").read_text()
    assert "node1" not in runs and "[redacted]" in runs
    assert b"orfs" not in (m.path / "study.json").read_bytes()
    assert "$.config.flow" in m["redacted"]["paths"]
    assert m["redacted"]["rules"]["patterns"] == ["$.config.flow", "host"]


# ------------------------------------------------------------------------------- paths


def test_a_hostile_study_name_stays_inside_out(tmp_path):
    led = Ledger(tmp_path / "l.ledger")
    led.append(seeded_events("../../x", n_cases=2, attempts=1))
    out = tmp_path / "deep" / "out"
    out.mkdir(parents=True)

    def listing() -> set[Path]:
        return {p for p in tmp_path.rglob("*") if "l.ledger" not in p.parts}

    before = listing()
    m = export_study(led, "../../x", out)
    assert m.path.parent == out.resolve()
    assert m.path.name == "_.._x"  # safe_name: no separators, no leading dots
    assert {p for p in listing() if m.path not in p.resolve().parents} - {m.path} == before
    assert not (tmp_path / "x").exists() and not (tmp_path.parent / "x").exists()
    led.close()


def test_export_all_gives_colliding_names_distinct_folders(tmp_path):
    led = Ledger(tmp_path / "l.ledger")
    for s in ("Chip", "chip", "a/b"):
        led.append(seeded_events(s, n_cases=2, attempts=1))
    k = led.head.seq
    led.append(seeded_events("later", n_cases=2, attempts=1))
    results = export_all(led, tmp_path / "out", formats=["json"], as_of=k)
    assert sorted(results) == ["Chip", "a/b", "chip"]  # "later" did not exist at k
    folders = {s: m.path.name for s, m in results.items()}
    assert folders["a/b"] == "a_b"
    assert folders["Chip"].startswith("Chip-") and folders["chip"].startswith("chip-")
    assert len({f.casefold() for f in folders.values()}) == 3
    assert {read_manifest(m.path)["study"] for m in results.values()} == set(results)
    led.close()


def test_another_studys_snapshot_is_not_replaced(tmp_path):
    led = Ledger(tmp_path / "l.ledger")
    for s in ("Chip", "chip"):
        led.append(seeded_events(s, n_cases=2, attempts=1))
    export_study(led, "chip", tmp_path / "out", formats=["json"], folder="chip")
    with pytest.raises(ExportError, match="holds the export of study 'chip', not 'Chip'"):
        export_study(led, "Chip", tmp_path / "out", formats=["json"], folder="chip")
    assert read_manifest(tmp_path / "out" / "chip")["study"] == "chip"
    led.close()


# --------------------------------------------------------------------------------- xlsx


def test_report_opens_with_openpyxl_with_the_expected_sheets(led, tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    m = export_study(led, "chip", tmp_path / "out", formats=["xlsx"])
    wb = openpyxl.load_workbook(m.path / "report.xlsx")
    assert wb.sheetnames == ["summary", "cases", "runs", "metrics", "rankings", "comparisons"]
    summary = dict(wb["summary"].iter_rows(min_row=2, values_only=True))
    assert summary["study"] == "chip" and summary["ranking"] == "qor:max (mean)"
    assert summary["head hash"] == led.head.hash
    ranks = list(wb["rankings"].iter_rows(values_only=True))
    assert ranks[0][:5] == ("rank", "case", "stage", "runs", "qor (mean, max)")
    ranked = [r for r in ranks[1:] if r[0] is not None]
    assert [r[0] for r in ranked] == list(range(1, len(ranked) + 1))
    scores = [r[4] for r in ranked]
    assert scores == sorted(scores, reverse=True)  # max is better
    assert wb["rankings"].conditional_formatting  # the colour scale on the score
    comp = list(wb["comparisons"].iter_rows(values_only=True))
    header = comp[0]
    assert header[:2] == ("stage", "cases") and "delta_best" in header
    stages = [r[0] for r in comp[1:]]
    assert stages == [0, 1, 2]
    best = [r[header.index("best")] for r in comp[1:]]
    delta = [r[header.index("delta_best")] for r in comp[1:]]
    assert delta[0] is None and delta[1] == pytest.approx(best[1] - best[0])
    assert wb["cases"].max_row == 7 and wb["runs"].max_row == 13
    with zipfile.ZipFile(m.path / "report.xlsx") as z:
        assert any(n.startswith("xl/charts/chart") for n in z.namelist())


def test_a_study_without_objectives_still_gets_a_report(tmp_path):
    led = Ledger(tmp_path / "l.ledger")
    led.append(
        [
            {"type": "study_created", "study": "plain"},
            {"type": "case_created", "study": "plain", "case": "a"},
        ]
    )
    m = export_study(led, "plain", tmp_path / "out")
    assert verify_manifest(m.path) == []
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.load_workbook(m.path / "report.xlsx")
    rows = list(wb["rankings"].iter_rows(values_only=True))
    assert rows[1][-1] == "the study declares no objectives to rank by"
    assert m["files"]["metrics.csv"]["rows"] == 0
    led.close()


# ------------------------------------------------------------------------ where, fields


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_where_filters_cases_runs_and_metrics(led, tmp_path):
    m = export_study(
        led, "chip", tmp_path / "a", formats=["csv", "json"], where=["stage>=1", "status=completed"]
    )
    cases = _csv_rows(m.path / "cases.csv")
    runs = _csv_rows(m.path / "runs.csv")
    metrics = _csv_rows(m.path / "metrics.csv")
    assert {c["stage"] for c in cases} == {"1", "2"}
    assert {r["status"] for r in runs} == {"completed"}
    assert all(r["case"] != "c00" for r in runs)
    assert {x["run"] for x in metrics} == {r["run"] for r in runs}
    assert m["where"] == ["stage>=1", "status=completed"]

    glob = export_study(
        led, "chip", tmp_path / "b", formats=["csv"], where=["case=c0[12]", "eco!=eco2"]
    )
    assert [c["case"] for c in _csv_rows(glob.path / "cases.csv")] == ["c01"]
    inval = export_study(led, "chip", tmp_path / "c", formats=["csv"], where=["status=invalidated"])
    assert [r["run"] for r in _csv_rows(inval.path / "runs.csv")] == ["c00/r2"]


def test_where_ts_keeps_rows_whose_event_falls_in_the_window(led, tmp_path):
    events = seeded_events("chip")
    ts_of = {i + 1: e["ts"] for i, e in enumerate(events)}  # seq -> ts
    value_ts = [e["ts"] for e in events if e["type"] == "metrics_recorded"]
    lo, hi = value_ts[10], value_ts[30]
    full = export_study(led, "chip", tmp_path / "all", formats=["csv"])
    m = export_study(led, "chip", tmp_path / "o", formats=["csv"], where=[f"ts>={lo}", f"ts<{hi}"])
    metrics = _csv_rows(m.path / "metrics.csv")
    expected = [x for x in _csv_rows(full.path / "metrics.csv") if lo <= ts_of[int(x["seq"])] < hi]
    assert metrics == expected and len(metrics) > 10
    assert _csv_rows(m.path / "cases.csv") == []  # every case was created before lo
    # a run stays when any of its own events (start .. last activity) is in the window
    span: dict[str, list[int]] = {}
    for e in events:
        if e["type"] in ("run_started", "metrics_recorded", "run_finished", "artifact_recorded"):
            span.setdefault(e["run"], []).append(e["ts"])
    active = sorted(r for r, t in span.items() if min(t) < hi and max(t) >= lo)
    assert [r["run"] for r in _csv_rows(m.path / "runs.csv")] == active
    days = export_study(
        led,
        "chip",
        tmp_path / "p",
        formats=["csv"],
        where=["ts>=2024-05-01", "ts<2024-05-02T00:00:00Z"],
    )
    assert days["files"]["metrics.csv"]["rows"] == len(in_force(events))
    assert days["files"]["cases.csv"]["rows"] == 6


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("stag>1", "unknown field 'stag'; use one of stage, status, case, eco, eco_class, ts"),
        ("status=done", "unknown status 'done'; statuses are completed, failed"),
        ("ts=2024-05-01", "ts takes >, >=, < or <= (a time range)"),
        ("ts>=yesterday", "'yesterday' is not a time"),
        ("stage>=one", "stage takes whole numbers, got 'one'"),
        ("case>a", "case takes = or != (with globs and comma lists), not >"),
        ("nonsense", "write FIELD OP VALUE"),
    ],
)
def test_bad_where_is_refused_before_anything_is_written(led, tmp_path, where, message):
    with pytest.raises(SelectionError, match="cannot read --where") as err:
        export_study(led, "chip", tmp_path / "o", where=[where])
    assert message in str(err.value)
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_fields_pick_and_order_columns(led, tmp_path):
    m = export_study(
        led,
        "chip",
        tmp_path / "o",
        formats=["csv", "parquet"],
        fields=["runs:status,run", "case,metric,value,param.*"],
    )
    with open(m.path / "runs.csv", newline="") as fh:
        assert next(csv.reader(fh)) == ["status", "run"]
    with open(m.path / "metrics.csv", newline="") as fh:
        assert next(csv.reader(fh)) == ["case", "metric", "value"]
    cases = pq.read_table(m.path / "cases.parquet")
    assert cases.column_names == [
        "case",
        "param.flag",
        "param.layers",
        "param.lr",
        "param.mode",
        "param.nested",
    ]
    assert m["fields"] == ["runs:status,run", "case,metric,value,param.*"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (["runs:nope"], "--fields 'runs:nope': table runs has no such column"),
        (["nope"], "--fields 'nope' matches no column of any table"),
        (["runs:a", "runs:b"], "names table runs twice"),
        (["runs:case,,run"], "has an empty column name"),
    ],
)
def test_bad_fields_are_refused(led, tmp_path, fields, message):
    with pytest.raises(SelectionError) as err:
        export_study(led, "chip", tmp_path / "o", fields=fields)
    assert message in str(err.value)


# ---------------------------------------------------------------------- journal, progress


def test_every_export_is_journalled_outside_the_log(led, tmp_path):
    head = led.head
    first = export_study(led, "chip", tmp_path / "a", formats=["csv"])
    second = export_study(
        led, "chip", tmp_path / "b", formats=["json", "xlsx"], as_of=head.seq - 3, where=["stage=0"]
    )
    assert led.head == head  # exporting never moves the head
    entries = list_exports(led)
    assert [e["manifest_sha256"] for e in entries] == [first.sha256, second.sha256]
    assert entries[1]["as_of"] == head.seq - 3
    assert entries[1]["head_hash"] == led.hash_at(head.seq - 3)
    assert entries[1]["formats"] == ["json", "xlsx"]
    assert entries[1]["where"] == ["stage=0"]
    assert entries[0]["path"] == os.fspath(first.path)
    assert entries[0]["time"].endswith("Z") and entries[0]["time"] <= entries[1]["time"]
    assert list_exports(led, "other") == []
    unjournalled = export_study(led, "chip", tmp_path / "c", formats=["csv"], journal=False)
    assert unjournalled.sha256 == first.sha256  # the journal is not part of the files
    assert len(list_exports(led)) == 2


def test_progress_reports_every_step(led, tmp_path):
    calls = []
    export_study(
        led, "chip", tmp_path / "o", progress=lambda d, t, label: calls.append((d, t, label))
    )
    total = calls[0][1]
    assert total == 1 + 8  # reading, then eight files
    assert [c[0] for c in calls] == list(range(total + 1))
    assert calls[0][2] == "chip: reading" and calls[-1] == (total, total, "done")
    assert any(label == "chip: metrics.parquet" for _, _, label in calls)


def test_export_memory_follows_the_study_not_the_ledger(tmp_path, monkeypatch):
    """With other studies present, the study is replayed from its own events and no
    checkpoint (which would hold every study's state) is restored."""
    import projections.study as study_mod

    seen = []
    real = study_mod.load_study

    def spy(ledger, study, as_of=None, *, checkpoints=True, **kw):
        seen.append(checkpoints)
        return real(ledger, study, as_of, checkpoints=checkpoints, **kw)

    monkeypatch.setattr(study_mod, "load_study", spy)
    led = make_ledger(tmp_path / "one.ledger")
    export_study(led, "chip", tmp_path / "o1", formats=["json"])
    led2 = make_ledger(tmp_path / "two.ledger", "chip", "other")
    export_study(led2, "chip", tmp_path / "o2", formats=["json"])
    assert seen == [True, False]
    led.close()
    led2.close()


def test_csv_bytes_spell_floats_and_times_as_designed(led, tmp_path):
    m = export_study(led, "chip", tmp_path / "o", formats=["csv"])
    metrics = (m.path / "metrics.csv").read_text()
    assert '"NaN"' in metrics and '"Infinity"' in metrics
    assert '"9.5"' in metrics
    runs = _csv_rows(m.path / "runs.csv")
    assert runs[0]["started_ts"].endswith("Z") and "T" in runs[0]["started_ts"]
    assert runs[0]["started_ts"].startswith("2024-05-01T")
    assert io.StringIO(metrics).readline().strip() == (
        '"study","case","run","stage","metric","step","value","seq","ts"'
    )
