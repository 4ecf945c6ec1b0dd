"""Exports keep what the log has (issue 18): each value's time, the step series in
study.json, a bounded metrics sheet and date cells in the workbook, integers that come
back as integers, and the format version that says the layout moved."""

from __future__ import annotations

import csv
import json
import math
from datetime import datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from seeded_study import in_force, seeded_events

from ledger import Ledger
from ledger.codec import format_ts
from projections.export import report as report_mod
from projections.export.api import export_study
from projections.export.manifest import FORMAT_VERSION, read_manifest

openpyxl = pytest.importorskip("openpyxl")

#: A value recorded at a time with microseconds, and a correction recorded later.
TS_A = "2024-05-01T10:00:00.123456Z"
TS_B = "2024-05-01T10:00:01.000001Z"
TS_FIX = "2024-05-02T00:00:00.5Z"


def micro_events() -> list[dict]:
    return [
        {"type": "study_created", "study": "s", "ts": TS_A},
        {"type": "case_created", "study": "s", "case": "c", "params": {"batch": 16}, "ts": TS_A},
        {"type": "case_created", "study": "s", "case": "d", "ts": TS_A},
        {"type": "run_started", "study": "s", "case": "c", "run": "r", "ts": TS_A},
        {"type": "metrics_recorded", "study": "s", "run": "r", "step": 0,
         "values": {"loss": 1.5}, "ts": TS_A},
        {"type": "metrics_recorded", "study": "s", "run": "r", "step": 1,
         "values": {"loss": 1.25}, "ts": TS_B},
        {"type": "metrics_recorded", "study": "s", "run": "r", "values": {"loss": 1.0},
         "ts": TS_B},
        {"type": "metrics_recorded", "study": "s", "run": "r", "step": 1,
         "values": {"loss": 1.125}, "ts": TS_FIX},
        {"type": "run_finished", "study": "s", "run": "r", "status": "completed",
         "ts": TS_FIX},
    ]  # fmt: skip


@pytest.fixture
def micro(tmp_path):
    with Ledger(tmp_path / "m.ledger") as led:
        led.append(micro_events())
        yield led


@pytest.fixture
def led(tmp_path):
    with Ledger(tmp_path / "l.ledger") as led:
        led.append(seeded_events("chip"))
        yield led


def _seq_ts(events: list[dict]) -> dict[int, int]:
    """seq -> ts (µs) of a ledger appended from ``events`` in one batch."""
    return {i: int(ev["ts"]) * 1_000_000 for i, ev in enumerate(events, start=1)}


# ------------------------------------------------------------------ the metrics table


def test_metrics_table_has_each_values_time(micro, tmp_path):
    m = export_study(micro, "s", tmp_path / "out", formats=["csv", "parquet"])
    table = pq.read_table(m.path / "metrics.parquet")
    assert table.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    rows = table.to_pylist()
    assert [(r["step"], r["value"], r["seq"]) for r in rows] == [
        (0, 1.5, 5),
        (1, 1.125, 8),  # the correction is in force, with its own time
        (None, 1.0, 7),
    ]
    assert [format_ts(int(r["ts"].timestamp() * 1e6)) for r in rows] == [
        TS_A,
        "2024-05-02T00:00:00.500000Z",
        TS_B,
    ]
    with open(m.path / "metrics.csv", newline="") as fh:
        got = [(r["step"], r["ts"]) for r in csv.DictReader(fh)]
    assert got == [("0", TS_A), ("1", "2024-05-02T00:00:00.500000Z"), ("", TS_B)]


def test_every_metrics_row_carries_its_events_time(led, tmp_path):
    events = seeded_events("chip")
    when = _seq_ts(events)
    m = export_study(led, "chip", tmp_path / "out", formats=["parquet"])
    table = pq.read_table(m.path / "metrics.parquet")
    seqs = table.column("seq").to_pylist()
    micros = table.column("ts").cast(pa.int64()).to_pylist()
    assert table.column("ts").null_count == 0
    assert micros == [when[s] for s in seqs]
    assert table.num_rows == len(in_force(events))


# ---------------------------------------------------------------------- study.json


def test_study_json_holds_every_runs_step_series(led, tmp_path):
    events = seeded_events("chip")
    when = _seq_ts(events)
    ref = in_force(events)
    m = export_study(led, "chip", tmp_path / "out", formats=["json"])
    doc = json.loads((m.path / "study.json").read_bytes())
    seen = 0
    for run in doc["runs"]:
        names = [s["metric"] for s in run["series"]]
        assert names == sorted(names)
        for s in run["series"]:
            assert s["step"] == sorted(s["step"])
            assert len(s["value"]) == len(s["seq"]) == len(s["ts"]) == len(s["step"])
            for step, value, seq, ts in zip(s["step"], s["value"], s["seq"], s["ts"]):
                assert value == ref[(run["run"], s["metric"], step)]
                assert ts == format_ts(when[seq])
                seen += 1
        for f in run["finals"]:
            expected = ref[(run["run"], f["metric"], None)]
            assert f["value"] == expected or (
                isinstance(f["value"], str) and f["value"] in ("NaN", "Infinity", "-Infinity")
            )
            assert f["ts"] == format_ts(when[f["seq"]])
    assert seen == sum(1 for k in ref if k[2] is not None)
    assert doc["format_version"] == FORMAT_VERSION == 2


def test_study_json_series_spell_non_finite_values(tmp_path):
    with Ledger(tmp_path / "n.ledger") as led:
        events = micro_events()[:4]
        events.append(
            {
                "type": "metrics_recorded",
                "study": "s",
                "run": "r",
                "step": 3,
                "values": {"loss": math.nan, "gain": -math.inf},
                "ts": TS_B,
            }
        )
        led.append(events)
        m = export_study(led, "s", tmp_path / "out", formats=["json"])
    text = (m.path / "study.json").read_text()
    series = json.loads(text)["runs"][0]["series"]
    assert [(s["metric"], s["value"]) for s in series] == [
        ("gain", ["-Infinity"]),
        ("loss", ["NaN"]),
    ]
    # one line per (run, metric): a long series does not take a line per number
    assert sum('"metric":"loss"' in line for line in text.splitlines()) == 1


# --------------------------------------------------------------------------- xlsx


def test_report_has_the_metrics_sheet_with_date_cells(micro, tmp_path):
    m = export_study(micro, "s", tmp_path / "out", formats=["xlsx"])
    wb = openpyxl.load_workbook(m.path / "report.xlsx")
    assert "metrics" in wb.sheetnames
    rows = list(wb["metrics"].iter_rows(values_only=True))
    header = rows[0]
    assert header == ("study", "case", "run", "stage", "metric", "step", "value", "seq", "ts")
    body = [dict(zip(header, r)) for r in rows[1:]]
    assert [(r["step"], r["value"]) for r in body] == [(0, 1.5), (1, 1.125), (None, 1.0)]
    assert isinstance(body[0]["step"], int)
    assert isinstance(body[0]["ts"], datetime)  # a date cell, not text
    assert abs(body[0]["ts"] - datetime(2024, 5, 1, 10, 0, 0, 123456)).total_seconds() < 1e-3
    runs = list(wb["runs"].iter_rows(values_only=True))
    started = runs[1][runs[0].index("started_ts")]
    assert isinstance(started, datetime)
    cases = list(wb["cases"].iter_rows(values_only=True))
    assert isinstance(cases[1][cases[0].index("created_ts")], datetime)
    assert cases[1][cases[0].index("param.batch")] == 16
    summary = dict(wb["summary"].iter_rows(min_row=2, values_only=True))
    assert summary["as of seq"] == 9 and isinstance(summary["as of seq"], int)
    as_of_time = summary["as of time (UTC)"]
    assert isinstance(as_of_time, datetime)
    assert abs(as_of_time - datetime(2024, 5, 2, 0, 0, 0, 500000)).total_seconds() < 1e-3
    assert summary["metric values exported"] == 3
    assert summary["metrics sheet"] == "all 3 values"


def test_report_metrics_sheet_is_bounded_and_says_so(led, tmp_path, monkeypatch):
    monkeypatch.setattr(report_mod, "XLSX_METRIC_ROWS", 30)
    events = seeded_events("chip")
    ref = in_force(events)
    finals = sum(1 for k in ref if k[2] is None)
    assert finals < 30 < len(ref)
    m = export_study(led, "chip", tmp_path / "out", formats=["xlsx", "parquet"])
    wb = openpyxl.load_workbook(m.path / "report.xlsx")
    rows = list(wb["metrics"].iter_rows(values_only=True))
    header, body = rows[0], rows[1:]
    assert len(body) == 30
    steps = [r[header.index("step")] for r in body]
    assert all(isinstance(x, int) for x in steps if x is not None)
    assert steps.count(None) == finals  # every final value is kept
    full = pq.read_table(m.path / "metrics.parquet").to_pylist()
    keys = [(r["run"], r["metric"], r["step"]) for r in full]
    col = {name: i for i, name in enumerate(header)}
    kept = [(r[col["run"]], r[col["metric"]], r[col["step"]]) for r in body]
    positions = [keys.index(k) for k in kept]
    assert positions == sorted(positions)  # in table order
    stepped_kept = [p for p, k in zip(positions, kept) if k[2] is not None]
    stepped_all = [i for i, k in enumerate(keys) if k[2] is not None]
    assert stepped_kept == stepped_all[: len(stepped_kept)]  # the first of the series
    summary = dict(wb["summary"].iter_rows(min_row=2, values_only=True))
    assert summary["metrics sheet"].startswith(f"30 of {len(ref)} values (cut at 30 rows")
    assert "metrics.parquet" in summary["metrics sheet"]


# ---------------------------------------------------------- integers stay integers


def test_nullable_integers_carry_a_hint_that_pandas_reads_as_int64(led, tmp_path):
    m = export_study(led, "chip", tmp_path / "out", formats=["parquet"])
    hints = {}
    for name in ("metrics", "cases", "runs"):
        meta = pq.read_schema(m.path / f"{name}.parquet").pandas_metadata or {}
        hints[name] = {c["name"]: c["numpy_type"] for c in meta.get("columns", [])}
    assert hints["metrics"] == {"step": "Int64"}
    assert hints["runs"] == dict.fromkeys(
        ["stage", "attempt", "seed", "pid", "finished_seq"], "Int64"
    )
    assert hints["cases"] == {"param.layers": "Int64"}


def test_pandas_reads_step_and_integer_params_as_integers(led, tmp_path):
    pd = pytest.importorskip("pandas")
    m = export_study(led, "chip", tmp_path / "out", formats=["parquet"])
    metrics = pd.read_parquet(m.path / "metrics.parquet")
    assert str(metrics["step"].dtype) == "Int64"
    finals = sum(1 for k in in_force(seeded_events("chip")) if k[2] is None)
    assert metrics["step"].isna().sum() == finals
    assert str(pd.read_parquet(m.path / "cases.parquet")["param.layers"].dtype) == "Int64"
    assert str(metrics["ts"].dtype).startswith("datetime64")


def test_the_manifest_says_the_export_format_moved(led, tmp_path):
    m = export_study(led, "chip", tmp_path / "out", formats=["csv"])
    assert read_manifest(m.path)["format_version"] == 2
