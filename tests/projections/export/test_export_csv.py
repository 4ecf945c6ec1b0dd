"""CSV: exact bytes, repr floats, and formula injection (battery row R13)."""

from __future__ import annotations

import csv
import io
import math
import random
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.export.safety import TRIGGERS, ExportError, unneutralise_cell
from projections.export.writers import format_floats, write_csv


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_exact_bytes(tmp_path):
    table = pa.table(
        {
            "case": ["a", 'say "hi"', None, "", '=1+2";=1+2', "multi\nline"],
            "stage": pa.array([0, 1, None, -3, 4, 5], pa.int64()),
            "value": [0.1, 1e-07, None, float("nan"), float("inf"), -float("inf")],
            "ok": [True, False, None, True, True, False],
        }
    )
    path = tmp_path / "t.csv"
    assert write_csv(table, path) == 6
    assert path.read_bytes() == (
        b'"case","stage","value","ok"\n'
        b'"a","0","0.1","true"\n'
        b'"say ""hi""","1","1e-07","false"\n'
        b",,,\n"
        b'"","-3","NaN","true"\n'
        b'"\'=1+2"";=1+2","4","Infinity","true"\n'
        b'"multi\nline","5","-Infinity","false"\n'
    )


def test_owasp_cell_in_file(tmp_path):
    path = tmp_path / "o.csv"
    write_csv(pa.table({"c": ['=1+2";=1+2']}), path)
    assert path.read_text().splitlines()[1] == '"\'=1+2"";=1+2"'


def test_utf8_without_bom_and_header_neutralised(tmp_path):
    path = tmp_path / "u.csv"
    write_csv(pa.table({"=name": ["é", "実験"]}), path)
    data = path.read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf")
    assert data.decode("utf-8") == '"\'=name"\n"é"\n"実験"\n'
    assert b"\r" not in data


def test_negative_numbers_in_numeric_columns_are_untouched(tmp_path):
    table = pa.table(
        {
            "i": pa.array([-1, -(2**62), 0], pa.int64()),
            "f": [-1.5, -1e-07, -0.0],
            "f32": pa.array([-0.1, -2.5, -1e20], pa.float32()),
            "d": pa.array([-1, 2, -3], pa.int8()).dictionary_encode(),
        }
    )
    path = tmp_path / "n.csv"
    write_csv(table, path)
    rows = read_rows(path)[1:]
    assert [r[0] for r in rows] == ["-1", str(-(2**62)), "0"]
    assert [r[1] for r in rows] == ["-1.5", "-1e-07", "-0.0"]
    assert [r[2] for r in rows] == ["-0.1", "-2.5", "-1e+20"]
    assert [r[3] for r in rows] == ["-1", "2", "-3"]


def test_floats_in_repr_form():
    values = [0.1, 1e-07, 1e-05, 1e-4, 1e15, 1e16, 1.0, -0.0, 5e-324, 1.7976931348623157e308]
    values += [123456789.0, 0.30000000000000004, 1234567890123456.8, 2.5e-05, 1e22]
    assert format_floats(pa.array(values)).to_pylist() == [repr(v) for v in values]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True) | st.none(), max_size=40))
def test_float_formatting_matches_repr_and_round_trips(values):
    out = format_floats(pa.array(values, pa.float64())).to_pylist()
    for v, text in zip(values, out):
        if v is None:
            assert text is None
        elif math.isnan(v):
            assert text == "NaN"
        elif math.isinf(v):
            assert text == ("Infinity" if v > 0 else "-Infinity")
        else:
            assert text == repr(v) and float(text) == v


def test_float_formatting_over_all_exponents():
    rng = np.random.default_rng(7)
    with np.errstate(over="ignore"):
        x = rng.standard_normal(20_000) * 10.0 ** rng.integers(-330, 309, 20_000)
    x = np.concatenate([x, rng.integers(0, 2**63, 20_000, dtype=np.uint64).view(np.float64)])
    x = x[np.isfinite(x)]
    assert format_floats(pa.array(x)).to_pylist() == [repr(v) for v in x.tolist()]


def test_float32_uses_its_own_shortest_digits():
    arr = pa.array([0.1, 1e-05, 3.4e38, 16777216.0], pa.float32())
    assert format_floats(arr).to_pylist() == ["0.1", "1e-05", "3.4e+38", "16777216.0"]


def test_timestamps_are_rfc3339(tmp_path):
    utc = pa.array([1_700_000_000_123_456], pa.timestamp("us", "UTC"))
    naive = pa.array([0], pa.timestamp("s"))
    path = tmp_path / "ts.csv"
    write_csv(pa.table({"utc": utc, "naive": naive}), path)
    assert read_rows(path)[1] == ["2023-11-14T22:13:20.123456Z", "1970-01-01T00:00:00"]


def test_unsupported_types_are_refused_before_writing(tmp_path):
    path = tmp_path / "bad.csv"
    with pytest.raises(ExportError, match="column 'l' has type list<item: int64>"):
        write_csv(pa.table({"l": pa.array([[1]])}), path)
    assert not path.exists()


def test_batches_do_not_change_bytes(tmp_path):
    rng = np.random.default_rng(3)
    table = pa.table({"v": rng.standard_normal(1000), "s": [f"=r{i}" for i in range(1000)]})
    write_csv(table, tmp_path / "a.csv", batch_rows=7)
    write_csv(table, tmp_path / "b.csv")
    write_csv(pa.concat_tables([table.slice(0, 500), table.slice(500)]), tmp_path / "c.csv")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert (tmp_path / "c.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_empty_table_writes_header_only(tmp_path):
    path = tmp_path / "e.csv"
    write_csv(pa.table({"a": pa.array([], pa.string())}), path)
    assert path.read_bytes() == b'"a"\n'


cell = st.one_of(
    st.text(),
    st.builds(lambda t, s: t + s, st.sampled_from(TRIGGERS + ("'", "'=", "''+")), st.text()),
    st.from_regex(r"-[0-9]{1,5}(\.[0-9]{1,3})?", fullmatch=True),
)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(cell, cell | st.none()), min_size=20, max_size=20))
def test_no_cell_starts_with_a_trigger_and_unescaping_restores(fast_base, rows):
    """R13 property: 50 examples x 20 rows = 1,000 rows through the real writer (on
    tmpfs: a test of the cells, not of the disk; under a loaded disk the writer's
    fsyncs made it take 20 s)."""
    path = Path(tempfile.mkdtemp(dir=fast_base)) / "p.csv"
    table = pa.table({"a": [r[0] for r in rows], "b": [r[1] for r in rows]})
    write_csv(table, path)
    read = read_rows(path)
    assert read[0] == ["a", "b"]
    assert len(read) == 21
    for (a, b), got in zip(rows, read[1:]):
        for original, text in ((a, got[0]), (b, got[1])):
            if text[:1] in TRIGGERS:
                assert text == original and text.startswith("-")  # a plain negative number
                float(text)
            expected = "" if original is None else original
            assert unneutralise_cell(text) == expected


def test_seeded_thousand_hostile_rows(tmp_path):
    rng = random.Random(13)
    alphabet = list(TRIGGERS) + ["'", '"', ",", "a", "1", "é", " ", "\n"]
    values = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6))) for _ in range(1000)]
    path = tmp_path / "s.csv"
    write_csv(pa.table({"v": values}), path)
    got = [row[0] for row in read_rows(path)[1:]]
    assert all(g[:1] not in TRIGGERS or (g == v and float(g) <= 0) for g, v in zip(got, values))
    assert [unneutralise_cell(g) for g in got] == values
    text = path.read_bytes().decode("utf-8")
    assert list(csv.reader(io.StringIO(text)))[1:] == [[g] for g in got]


def test_python_fallback_spells_the_same(monkeypatch):
    """If a future pyarrow changed its float layout, the exact slow path takes over."""
    from projections.export import float_text

    rng = np.random.default_rng(11)
    x = np.concatenate(
        [rng.standard_normal(3000) * 10.0 ** rng.integers(-12, 20, 3000), [np.nan, -np.inf]]
    )
    f64 = pa.array(list(x) + [None], pa.float64())
    f32 = pa.array(x[:500].astype(np.float32))
    fast = [format_floats(f64).to_pylist(), format_floats(f32).to_pylist()]
    assert float_text._arrow_layout_is_known()
    monkeypatch.setattr(float_text, "_arrow_layout_is_known", lambda: False)
    assert [format_floats(f64).to_pylist(), format_floats(f32).to_pylist()] == fast
