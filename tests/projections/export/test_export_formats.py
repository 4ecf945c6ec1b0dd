"""Parquet, JSON and xlsx writers: schemas, canonical bytes, workbook contents."""

from __future__ import annotations

import datetime as dt
import json
import zipfile

import numpy as np
import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from projections.export.safety import ExportError
from projections.export.writers import (
    XLSX_CREATED,
    XlsxSpec,
    canonical_json,
    write_json,
    write_parquet,
    write_xlsx,
)

METRICS_SCHEMA = pa.schema(
    [
        pa.field("study", pa.string(), nullable=False),
        pa.field("case", pa.string(), nullable=False),
        pa.field("run", pa.string(), nullable=False),
        pa.field("stage", pa.int32(), nullable=False),
        pa.field("metric", pa.string(), nullable=False),
        pa.field("step", pa.int64()),
        pa.field("value", pa.float64()),
    ]
)


def metrics_table(n=50):
    rng = np.random.default_rng(0)
    return pa.table(
        {
            "value": rng.standard_normal(n),  # out of order on purpose: the schema orders
            "study": ["s"] * n,
            "case": [f"c{i // 10}" for i in range(n)],
            "run": [f"c{i // 10}/r" for i in range(n)],
            "stage": pa.array(np.arange(n) // 10, pa.int64()),
            "metric": ["loss"] * n,
            "step": pa.array([None if i % 7 == 0 else i for i in range(n)], pa.int64()),
            "extra": ["dropped"] * n,
        }
    ).replace_schema_metadata({"pandas": "{}", "written_at": "2024-01-01T00:00:00"})


# ------------------------------------------------------------------ Parquet

#: What the writer puts in the ``pandas`` key: read the nullable ``step`` as ``Int64``.
PANDAS_STEP_HINT = (
    b'{"column_indexes":[],"columns":[{"field_name":"step","metadata":null,"name":"step",'
    b'"numpy_type":"Int64","pandas_type":"int64"}],"index_columns":[]}'
)


def test_parquet_reads_back_with_the_exact_schema(tmp_path):
    path = tmp_path / "m.parquet"
    assert write_parquet(metrics_table(), path, schema=METRICS_SCHEMA) == 50
    back = pq.read_table(path)
    assert back.schema.equals(METRICS_SCHEMA, check_metadata=False)
    assert back.schema.metadata == {b"pandas": PANDAS_STEP_HINT}  # only our own hint
    assert back.num_rows == 50
    assert back.column("step").null_count == 8
    assert back.column("stage").to_pylist()[-1] == 4


def test_parquet_metadata_holds_no_time(tmp_path):
    path = tmp_path / "m.parquet"
    write_parquet(metrics_table(), path)
    meta = pq.ParquetFile(path).metadata
    assert set(meta.metadata) == {b"ARROW:schema", b"pandas"}  # no "written_at"
    hint = json.loads(meta.metadata[b"pandas"])  # ours, not the table's "{}"
    assert [(c["name"], c["numpy_type"]) for c in hint["columns"]] == [
        ("stage", "Int64"),  # nullable here: no schema was given
        ("step", "Int64"),
    ]
    assert meta.created_by.startswith("parquet-cpp-arrow version ")
    assert meta.created_by.split()[-1] == pa.__version__
    assert meta.row_group(0).column(0).compression == "ZSTD"
    assert meta.format_version == "2.6"


def test_parquet_twice_is_byte_identical(tmp_path):
    write_parquet(metrics_table(), tmp_path / "a.parquet", schema=METRICS_SCHEMA)
    write_parquet(metrics_table(), tmp_path / "b.parquet", schema=METRICS_SCHEMA)
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


def test_parquet_schema_errors(tmp_path):
    with pytest.raises(ExportError, match=r"lacks column\(s\) \['other'\]"):
        write_parquet(
            metrics_table(), tmp_path / "x.parquet", schema=pa.schema([("other", pa.int64())])
        )
    bad = pa.schema([pa.field("case", pa.int64())])
    with pytest.raises(ExportError, match="cannot cast the table"):
        write_parquet(metrics_table(), tmp_path / "y.parquet", schema=bad)


# ------------------------------------------------------------------ JSON


def test_canonical_json_bytes():
    obj = {
        "b": [1.5, float("nan"), float("inf"), -float("inf"), 0.1, 1e16],
        "a": {"z": 1, "y": {3, 1, 2}},
        "np": np.float64(0.25),
        "arr": np.arange(3),
        "t": (1, "x"),
        "when": dt.datetime(2024, 1, 1, 9, tzinfo=dt.timezone(dt.timedelta(hours=9))),
        5: None,
    }
    assert canonical_json(obj) == (
        b'{\n  "5": null,\n  "a": {\n    "y": [\n      1,\n      2,\n      3\n    ],\n'
        b'    "z": 1\n  },\n  "arr": [\n    0,\n    1,\n    2\n  ],\n  "b": [\n    1.5,\n'
        b'    "NaN",\n    "Infinity",\n    "-Infinity",\n    0.1,\n    1e16\n  ],\n'
        b'  "np": 0.25,\n  "t": [\n    1,\n    "x"\n  ],\n  "when": "2024-01-01T00:00:00Z"\n}\n'
    )
    assert json.loads(canonical_json(obj))["b"][1] == "NaN"


def test_json_keys_must_be_strings(tmp_path):
    with pytest.raises(ExportError, match=r"JSON object keys must be strings; got \(1, 2\)"):
        write_json({(1, 2): 1}, tmp_path / "x.json")


def test_json_is_sorted_whatever_the_insertion_order(tmp_path):
    write_json({"b": 1, "a": {"d": 1, "c": 2}}, tmp_path / "1.json")
    write_json({"a": {"c": 2, "d": 1}, "b": 1}, tmp_path / "2.json")
    assert (tmp_path / "1.json").read_bytes() == (tmp_path / "2.json").read_bytes()
    assert (tmp_path / "1.json").read_bytes().endswith(b"}\n")


# ------------------------------------------------------------------ xlsx


def report_sheets():
    return {
        "summary": pa.table({"stage": [0, 1, 2], "best": [0.5, 0.41, 0.38], "cases": [4, 3, 2]}),
        "cases": pa.table(
            {
                "case": ["base", "=cmd|' /C calc'!A0", "@SUM(1)", "-2", "+x"],
                "stage": [0, 1, 1, 2, 2],
                "eco": [None, "halve_lr", "\tTAB", "-y", "ok"],
            }
        ),
        "runs": pa.table(
            {
                "run": ["r1", "r2", "r3"],
                "value": [0.5, float("nan"), -float("inf")],
                "ok": [True, False, None],
            }
        ),
        "rankings": pa.table({"rank": [1, 2], "case": ["b", "a"], "score": [0.38, 0.41]}),
        "comparisons": pa.table({"a": ["s0"], "b": ["s1"], "p_value": [1e-9]}),
    }


def test_xlsx_opens_with_expected_sheets_and_neutralised_cells(tmp_path):
    path = tmp_path / "r.xlsx"
    write_xlsx(report_sheets(), path, XlsxSpec(direction="min", title="=study"))
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["summary", "cases", "runs", "rankings", "comparisons"]
    cases = [[c.value for c in row] for row in wb["cases"].iter_rows()]
    assert cases[0] == ["case", "stage", "eco"]
    assert [r[0] for r in cases[1:]] == ["base", "'=cmd|' /C calc'!A0", "'@SUM(1)", "-2", "'+x"]
    assert [r[2] for r in cases[1:]] == [None, "halve_lr", "'\tTAB", "'-y", "ok"]
    assert [r[1] for r in cases[1:]] == [0, 1, 1, 2, 2]
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                assert c.data_type != "f", f"{ws.title}!{c.coordinate} is a formula"
    runs = [[c.value for c in row] for row in wb["runs"].iter_rows()]
    assert runs[1:] == [["r1", 0.5, True], ["r2", "NaN", False], ["r3", "-Infinity", None]]
    assert wb["summary"]["B3"].number_format == "0.000000"
    assert wb["comparisons"]["C2"].number_format == "0.00E+00"
    assert wb["summary"].freeze_panes == "A2"
    assert wb.properties.created == XLSX_CREATED.replace(tzinfo=None)
    assert not wb.properties.creator and not wb.properties.lastModifiedBy
    assert wb.properties.title == "'=study"


def test_xlsx_colour_scale_and_chart(tmp_path):
    path = tmp_path / "r.xlsx"
    write_xlsx(report_sheets(), path, XlsxSpec(direction="max"))
    wb = openpyxl.load_workbook(path)
    rules = wb["rankings"].conditional_formatting
    (rng,) = [str(cf.sqref) for cf in rules]
    assert rng == "C2:C3"
    (rule,) = [r for cf in rules for r in cf.rules]
    assert rule.type == "colorScale"
    colours = [c.rgb for c in rule.colorScale.color]
    assert colours[0].endswith("F8696B") and colours[-1].endswith("63BE7B")  # max: high is green
    with zipfile.ZipFile(path) as z:
        chart = z.read("xl/charts/chart1.xml").decode()
        drawing_rels = z.read("xl/worksheets/_rels/sheet1.xml.rels").decode()
    assert "<c:lineChart>" in chart
    assert "summary!$A$2:$A$4" in chart and "summary!$B$2:$B$4" in chart
    assert "drawing1.xml" in drawing_rels


def test_xlsx_entries_and_properties_hold_no_clock(tmp_path):
    path = tmp_path / "r.xlsx"
    write_xlsx(report_sheets(), path)
    today = dt.date.today().isoformat()
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            assert info.date_time == (1980, 1, 1, 0, 0, 0), info.filename
            assert today.encode() not in z.read(info.filename), info.filename
        core = z.read("docProps/core.xml").decode()
    assert '<dcterms:created xsi:type="dcterms:W3CDTF">1980-01-01T00:00:00Z' in core


def test_xlsx_spec_errors(tmp_path):
    with pytest.raises(ExportError, match="XlsxSpec names column 'score' of sheet 'rankings'"):
        write_xlsx(
            {"rankings": pa.table({"x": [1]})}, tmp_path / "a.xlsx", XlsxSpec(chart_sheet=None)
        )
    with pytest.raises(ExportError, match="XlsxSpec names sheet 'summary'"):
        write_xlsx(
            {"cases": pa.table({"x": [1]})}, tmp_path / "b.xlsx", XlsxSpec(ranking_sheet=None)
        )
    with pytest.raises(ExportError, match="direction must be 'min' or 'max'"):
        write_xlsx({}, tmp_path / "c.xlsx", XlsxSpec(direction="up"))
    bare = XlsxSpec(ranking_sheet=None, chart_sheet=None)
    with pytest.raises(ExportError, match="sheet name 'a/b' is not valid in Excel"):
        write_xlsx({"a/b": pa.table({"x": [1]})}, tmp_path / "d.xlsx", bare)
