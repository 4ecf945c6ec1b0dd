"""Deterministic file writers: the same table gives the same bytes, anywhere, any time.

Each writer takes data that is already built and sorted and pins every choice that
could vary: float spelling, quoting and line endings (CSV), writer options and metadata
(Parquet), key order and non-finite numbers (JSON), document properties and zip entry
times (xlsx). Nothing here reads the clock, the time zone, the locale or the hash seed.
Columns are formatted with Arrow kernels and numpy masks, in batches, so memory follows
the batch size rather than one Python object per cell.

Raises ``ExportError`` (from :mod:`projections.export.safety`) for input the formats
cannot hold; other ``OSError``\\s from the file system pass through.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from projections.export.safety import ExportError, neutralise_array, neutralise_cell

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "CSV_BATCH_ROWS",
    "PARQUET_OPTIONS",
    "XLSX_CREATED",
    "XlsxSpec",
    "canonical_json",
    "format_column",
    "format_floats",
    "to_jsonable",
    "write_csv",
    "write_json",
    "write_parquet",
    "write_xlsx",
]

PathLike = str | os.PathLike[str]

#: Rows formatted and written per step; bounds the extra memory of a CSV export.
CSV_BATCH_ROWS = 65_536

# --------------------------------------------------------------------------- floats


def format_floats(arr: pa.Array) -> pa.Array:
    """Float column -> text in Python ``repr`` form (shortest round trip), nulls kept.

    Arrow's cast already produces the shortest digits but lays them out differently
    from ``repr`` (``1e-7``, ``0.00001``, ``1e+15``, ``1``). The layout depends only on
    the decimal exponent, which a numpy comparison against the powers of ten gives
    exactly, so the rows of each differing band are re-spelled with slicing kernels (no
    regex, no Python per row) and put back with one ``take``. Non-finite values are
    spelled ``NaN``, ``Infinity``, ``-Infinity``. ``float32`` keeps its own shortest
    digits (``0.1``, not ``0.10000000149011612``) in the same layout.
    """
    import pyarrow as pa

    if pa.types.is_float16(arr.type):
        arr = arr.cast(pa.float32())
    if _arrow_layout_is_known():
        return _format_floats_fast(arr)
    return _format_floats_python(arr)


#: Values on both sides of every layout band; if Arrow ever spells one differently
#: from what :func:`_format_floats_fast` expects, the slow but exact path is used.
_LAYOUT_PROBES = tuple(
    float(v)
    for v in (
        "0 -0 1 -7 0.1 1e-4 9.99e-5 2.5e-5 1e-5 1e-6 -1.5e-6 1.5e-7 1e-9 9.9e-10 12345678 "
        "999999999 1e10 -1.5e15 1234567890123456.8 1e16 1e22 5e-324 1.7976931348623157e308 "
        "-123.456 0.30000000000000004"
    ).split()
)


@functools.lru_cache(maxsize=1)
def _arrow_layout_is_known() -> bool:
    import pyarrow as pa

    probes = pa.array(_LAYOUT_PROBES, pa.float64())
    return _format_floats_fast(probes).to_pylist() == [repr(v) for v in _LAYOUT_PROBES]


def _spell(v: float) -> str:
    if math.isfinite(v):
        return repr(v)
    return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")


def _format_floats_python(arr: pa.Array) -> pa.Array:
    import numpy as np
    import pyarrow as pa

    if pa.types.is_float32(arr.type):  # float32's own shortest digits, repr layout
        values = [None if v is None else float(str(np.float32(v))) for v in arr.to_pylist()]
    else:
        values = arr.to_pylist()
    return pa.array([None if v is None else _spell(v) for v in values], pa.string())


def _format_floats_fast(arr: pa.Array) -> pa.Array:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    ftype = np.float32 if pa.types.is_float32(arr.type) else np.float64
    text = pc.cast(arr, pa.string())
    n = len(arr)
    if n == 0:
        return text
    x = arr.to_numpy(zero_copy_only=False)
    valid = np.ones(n, dtype=bool) if arr.null_count == 0 else arr.is_valid().to_numpy(False)
    a = np.abs(x)
    p10 = {k: ftype(f"1e{k}") for k in range(-9, 17)}  # parsed: the float "1eK" reads as

    def band(lo: int, hi: int) -> Any:
        return valid & (a >= p10[lo]) & (a < p10[hi])

    with np.errstate(invalid="ignore"):  # NaN compares False, as intended
        integral = valid & (a < p10[10]) & (np.floor(a) == a)
    bands: list[tuple[Any, Any]] = [
        # Arrow writes integral values without ".0" ("-0", "12345678").
        (integral, lambda s, neg: _join(s, ".0")),
        # Exponents -5, -6: Arrow writes 0.0000ddd, repr d.dde-05.
        (band(-5, -4), lambda s, neg: _small(s, neg, 6, "e-05")),
        (band(-6, -5), lambda s, neg: _small(s, neg, 7, "e-06")),
        # Exponents -7..-9: repr pads the exponent to two digits.
        (band(-9, -6), lambda s, neg: _join(_slice(s, 0, -1), "0", _slice(s, -1, None))),
    ]
    # Exponents 10..15: Arrow writes d.ddde+1K, repr the digits positionally.
    for k in range(10, 16):
        bands.append((band(k, k + 1), lambda s, neg, k=k: _positional(s, neg, k)))
    for value, spelling in ((np.nan, "NaN"), (np.inf, "Infinity"), (-np.inf, "-Infinity")):
        hit = valid & (np.isnan(x) if value != value else x == value)
        bands.append((hit, lambda s, neg, spelling=spelling: pa.repeat(spelling, len(s))))

    pieces = [text]
    index = None
    offset = n
    for mask, respell in bands:
        rows = np.flatnonzero(mask)
        if not rows.size:
            continue
        if index is None:
            index = np.arange(n, dtype=np.int64)
        sel = pa.array(mask)
        pieces.append(respell(pc.filter(text, sel), np.signbit(x[rows])).cast(pa.string()))
        index[rows] = np.arange(offset, offset + rows.size)
        offset += rows.size
    if index is None:
        return text
    return pa.concat_arrays(pieces).take(pa.array(index))


def _join(*parts: Any) -> Any:
    import pyarrow.compute as pc

    return pc.binary_join_element_wise(*parts, "")


def _slice(s: Any, start: int, stop: int | None) -> Any:
    import pyarrow.compute as pc

    return pc.utf8_slice_codeunits(s, start, stop)


def _signed(s: Any, neg: Any) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    if not neg.any():
        return s
    return _join(pc.if_else(pa.array(neg), "-", ""), s)


def _small(s: Any, neg: Any, skip: int, exponent: str) -> Any:
    """``0.0000ddd`` (``skip`` characters before the first digit) -> ``d.dde-05``."""
    import pyarrow.compute as pc

    u = pc.utf8_ltrim(s, "-")
    spelled = _join(_slice(u, skip, skip + 1), ".", _slice(u, skip + 1, None), exponent)
    return _signed(pc.replace_substring(spelled, ".e", "e"), neg)


def _positional(s: Any, neg: Any, k: int) -> Any:
    """``d.ddde+1K`` -> the digits with ``k + 1`` of them before the point, as ``repr``."""
    import pyarrow.compute as pc

    digits = pc.replace_substring(_slice(pc.utf8_ltrim(s, "-"), 0, -4), ".", "")
    padded = _join(digits, "0" * 16)  # at most 17 significant digits
    frac = pc.utf8_rtrim(_slice(padded, k + 1, 17), "0")
    frac = pc.if_else(pc.equal(frac, ""), "0", frac)
    return _signed(_join(_slice(padded, 0, k + 1), ".", frac), neg)


# --------------------------------------------------------------------------- columns


def format_column(arr: pa.Array, *, name: str = "?") -> pa.Array:
    """One column as the text a CSV cell holds: neutralised strings, ``repr`` floats.

    Integers, booleans (``true``/``false``), dates and decimals keep Arrow's spelling;
    timestamps become RFC 3339 (``Z`` when the column has a time zone). Nested and
    binary columns are refused: flatten them first.

    Raises:
        ExportError: a column type CSV cannot hold.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    t = arr.type
    if pa.types.is_dictionary(t):
        return format_column(arr.dictionary_decode(), name=name)
    if pa.types.is_floating(t):
        return format_floats(arr)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or _is_string_view(t):
        return neutralise_array(arr)
    if pa.types.is_timestamp(t):
        if t.tz is not None:
            arr = arr.cast(pa.timestamp(t.unit, "UTC"))
            return pc.strftime(arr, format="%Y-%m-%dT%H:%M:%SZ")
        return pc.strftime(arr, format="%Y-%m-%dT%H:%M:%S")
    if (
        pa.types.is_integer(t)
        or pa.types.is_boolean(t)
        or pa.types.is_date(t)
        or pa.types.is_decimal(t)
        or pa.types.is_null(t)
    ):
        return arr.cast(pa.string())
    raise ExportError(
        f"column {name!r} has type {t}, which CSV cannot hold; "
        "flatten it or convert it to text before exporting"
    )


def _is_string_view(t: Any) -> bool:
    import pyarrow as pa

    check = getattr(pa.types, "is_string_view", None)
    return bool(check and check(t))


# --------------------------------------------------------------------------- CSV


def write_csv(table: pa.Table, path: PathLike, *, batch_rows: int = CSV_BATCH_ROWS) -> int:
    """Write ``table`` as deterministic CSV; return the number of data rows.

    Header row; every non-null field quoted (quotes doubled); ``\\n`` line ends; UTF-8
    without BOM; nulls as empty unquoted fields (so an empty string ``""`` stays
    distinct); floats in ``repr`` form; text cells and header names neutralised
    against formula injection. Columns are formatted per batch with Arrow kernels; one
    worker thread formats the next batch while Arrow's CSV writer (which does the
    quoting) writes the current one, so at most two formatted batches are in memory
    and the output order never depends on the threads.

    Raises:
        ExportError: a column type CSV cannot hold (before the file is created).
    """
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow as pa
    import pyarrow.csv as pacsv

    names = table.column_names
    # Formatting an empty slice refuses unsupported types before the file exists and
    # gives each column's written type.
    empty = [
        _csv_column(table.column(i).slice(0, 0).combine_chunks(), n) for i, n in enumerate(names)
    ]
    schema = pa.schema([pa.field(neutralise_cell(n), c.type) for n, c in zip(names, empty)])

    def formatted(start: int) -> pa.RecordBatch:
        part = table.slice(start, batch_rows)
        columns = [_csv_column(part.column(i).combine_chunks(), n) for i, n in enumerate(names)]
        return pa.record_batch(columns, schema=schema)

    options = pacsv.WriteOptions(include_header=True, quoting_style="all_valid")
    starts = list(range(0, table.num_rows, batch_rows))
    with (
        pacsv.CSVWriter(os.fspath(path), schema, write_options=options) as writer,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="csv-format") as pool,
    ):
        pending = pool.submit(formatted, starts[0]) if starts else None
        for following in starts[1:]:
            batch = pending.result()  # type: ignore[union-attr]
            pending = pool.submit(formatted, following)
            writer.write_batch(batch)
        if pending is not None:
            writer.write_batch(pending.result())
    return table.num_rows


def _csv_column(arr: pa.Array, name: str) -> pa.Array:
    """Integers, booleans, dates and decimals go to Arrow's CSV writer as they are: it
    spells them exactly as the cast in :func:`format_column` would, without an extra
    string copy. Everything else is formatted here."""
    import pyarrow as pa

    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    t = arr.type
    if (
        pa.types.is_integer(t)
        or pa.types.is_boolean(t)
        or pa.types.is_date(t)
        or pa.types.is_decimal(t)
        or pa.types.is_null(t)
    ):
        return arr
    return format_column(arr, name=name)


# --------------------------------------------------------------------------- Parquet

#: Writer options pinned so the bytes depend only on the data and the pyarrow version.
#: Options a given pyarrow does not know are left out (the manifest records the version).
PARQUET_OPTIONS: dict[str, Any] = {
    "version": "2.6",
    "data_page_version": "1.0",
    "compression": "zstd",
    "compression_level": 3,
    "use_dictionary": True,
    "dictionary_pagesize_limit": 1 << 20,
    "write_statistics": True,
    "store_schema": True,
    "row_group_size": 1 << 20,
    "data_page_size": 1 << 20,
    "write_batch_size": 1024,
    "use_byte_stream_split": False,
    "use_compliant_nested_type": True,
    "write_page_index": False,
    "write_page_checksum": False,
    "coerce_timestamps": None,
    "allow_truncated_timestamps": False,
    "sorting_columns": None,
}


def _parquet_options() -> dict[str, Any]:
    import inspect

    import pyarrow.parquet as pq

    known = inspect.signature(pq.write_table).parameters
    return {k: v for k, v in PARQUET_OPTIONS.items() if k in known}


def write_parquet(table: pa.Table, path: PathLike, *, schema: pa.Schema | None = None) -> int:
    """Write ``table`` as Parquet with pinned options; return the number of rows.

    With ``schema``, columns are selected and cast to it first, so the file carries the
    declared types (a reader gets ``int64`` stage, ``float64`` value, …) rather than
    whatever the builder happened to produce. All key-value metadata (schema and field
    level, e.g. pandas') is dropped; the only metadata left is the Arrow schema that
    ``store_schema`` writes and the writer's ``created_by`` (its version, no time).

    Raises:
        ExportError: a column is missing or cannot be cast to ``schema``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if schema is not None:
        missing = [n for n in schema.names if n not in table.column_names]
        if missing:
            raise ExportError(
                f"table for {os.fspath(path)!r} lacks column(s) {missing}; "
                f"it has {table.column_names}"
            )
        try:
            table = table.select(schema.names).cast(schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
            raise ExportError(f"cannot cast the table for {os.fspath(path)!r}: {exc}") from None
    bare = pa.schema([pa.field(f.name, f.type, f.nullable) for f in table.schema])
    table = table.cast(bare)  # drops schema- and field-level metadata
    options = _parquet_options()
    # Dictionary-encode text only: on a million distinct float values a dictionary is
    # pure overhead (it falls back anyway) and costs ~40 MB of peak memory.
    options["use_dictionary"] = [
        f.name
        for f in table.schema
        if pa.types.is_string(f.type)
        or pa.types.is_large_string(f.type)
        or pa.types.is_dictionary(f.type)
    ]
    pq.write_table(table, os.fspath(path), **options)
    return table.num_rows


# --------------------------------------------------------------------------- JSON


def to_jsonable(obj: Any) -> Any:
    """A copy of ``obj`` that msgspec encodes canonically.

    Non-finite floats become the strings DESIGN §2 prescribes (msgspec would write
    ``null``); numpy scalars and arrays become Python numbers and lists; tuples become
    lists; sets become sorted lists (their iteration order follows the hash seed);
    mapping keys must be strings (ints are converted).

    Raises:
        ExportError: a mapping key that is not a string or an int.
    """
    if isinstance(obj, float):  # np.float64 too (a float subclass msgspec refuses)
        if math.isfinite(obj):
            return float(obj)
        return "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
    if obj is None or type(obj) in (str, bool, int):
        return obj
    if isinstance(obj, bool):
        return bool(obj)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if isinstance(k, bool) or not isinstance(k, (str, int)):
                raise ExportError(
                    f"JSON object keys must be strings; got {k!r} ({type(k).__name__})"
                )
            out[str(k)] = to_jsonable(v)
        return out
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted(to_jsonable(v) for v in obj)
    if isinstance(obj, (datetime, date)):
        if isinstance(obj, datetime) and obj.tzinfo is not None:
            obj = obj.astimezone(timezone.utc)
        return obj
    tolist = getattr(obj, "tolist", None)  # numpy scalars and arrays
    if callable(tolist):
        return to_jsonable(tolist())
    return obj


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, 2-space indent, ``\\n`` at the end, shortest floats, UTF-8."""
    import msgspec

    raw = msgspec.json.encode(to_jsonable(obj), order="sorted")
    return msgspec.json.format(raw, indent=2) + b"\n"


def write_json(obj: Any, path: PathLike) -> None:
    """Write :func:`canonical_json` of ``obj`` to ``path``."""
    Path(path).write_bytes(canonical_json(obj))


# --------------------------------------------------------------------------- xlsx

#: The creation time every workbook claims (the zip entries say the same: 1980-01-01).
XLSX_CREATED = datetime(1980, 1, 1, tzinfo=timezone.utc)
_XLSX_MAX_ROWS = 1_048_575  # Excel's 1,048,576 rows less the header


@dataclass(frozen=True)
class XlsxSpec:
    """What the report highlights: the ranking metric and the per-stage chart.

    ``direction`` is ``"min"`` when a lower ranking metric is better (the colour scale
    then runs green -> red from low to high) and ``"max"`` when higher is better. A
    ``None`` sheet or column turns that feature off.
    """

    ranking_sheet: str | None = "rankings"
    ranking_column: str | None = "score"
    direction: str = "min"
    chart_sheet: str | None = "summary"
    chart_category: str = "stage"
    chart_value: str = "best"
    chart_title: str = "Best score per stage"
    title: str = ""


def _float_format(arr: pa.ChunkedArray) -> str:
    import numpy as np

    x = arr.to_numpy()
    x = np.abs(x[np.isfinite(x) & (x != 0)])
    if x.size and (x.min() < 1e-4 or x.max() >= 1e7):
        return "0.00E+00"
    return "0.000000"


def write_xlsx(
    sheets: Mapping[str, pa.Table], path: PathLike, spec: XlsxSpec | None = None
) -> None:
    """Write one worksheet per table, in the mapping's order, with a reproducible zip.

    Text goes through ``write_string`` after neutralisation, so no cell is ever a
    formula; numbers get number formats; NaN and ±inf (which Excel cannot store) are
    written as the texts ``NaN``/``Infinity``/``-Infinity``; nulls are left blank. The
    ranking column gets a 3-colour scale oriented by ``spec.direction``, and a line
    chart of ``chart_value`` by ``chart_category`` sits beside the chart sheet's data.
    Document properties are pinned (created ``1980-01-01``, no author) and the zip is
    built in memory, whose entries xlsxwriter dates 1980-01-01, so neither the clock
    nor ``TZ`` reaches the bytes.

    Raises:
        ExportError: a sheet name Excel refuses, a table over Excel's row limit, a
            spec that names a missing sheet or column, or an unsupported column type.
    """
    import xlsxwriter
    from xlsxwriter.utility import xl_col_to_name

    spec = spec or XlsxSpec()
    if spec.direction not in ("min", "max"):
        raise ExportError(f"XlsxSpec.direction must be 'min' or 'max', not {spec.direction!r}")
    _check_spec(sheets, spec)
    workbook = xlsxwriter.Workbook(
        os.fspath(path),
        {
            "in_memory": True,
            "strings_to_numbers": False,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "nan_inf_to_errors": False,
        },
    )
    workbook.set_properties(
        {"title": neutralise_cell(spec.title), "author": "", "company": "", "created": XLSX_CREATED}
    )
    header = workbook.add_format({"bold": True, "bottom": 1})
    formats: dict[str, Any] = {}

    def fmt(num_format: str) -> Any:
        if num_format not in formats:
            formats[num_format] = workbook.add_format({"num_format": num_format})
        return formats[num_format]

    try:
        for sheet_name, table in sheets.items():
            if table.num_rows > _XLSX_MAX_ROWS:
                raise ExportError(
                    f"sheet {sheet_name!r} has {table.num_rows} rows, over Excel's limit of "
                    f"{_XLSX_MAX_ROWS}; export this table as CSV or Parquet instead"
                )
            try:
                ws = workbook.add_worksheet(sheet_name)
            except Exception as exc:  # xlsxwriter's InvalidWorksheetName & co.
                raise ExportError(
                    f"sheet name {sheet_name!r} is not valid in Excel: {exc}"
                ) from None
            _write_sheet(ws, table, header, fmt)
            n = table.num_rows
            if sheet_name == spec.ranking_sheet and spec.ranking_column and n:
                col = xl_col_to_name(table.column_names.index(spec.ranking_column))
                good, bad = "#63BE7B", "#F8696B"
                low, high = (good, bad) if spec.direction == "min" else (bad, good)
                ws.conditional_format(
                    f"{col}2:{col}{n + 1}",
                    {
                        "type": "3_color_scale",
                        "min_color": low,
                        "mid_color": "#FFEB84",
                        "max_color": high,
                    },
                )
            if sheet_name == spec.chart_sheet and n:
                cat = table.column_names.index(spec.chart_category)
                val = table.column_names.index(spec.chart_value)
                chart = workbook.add_chart({"type": "line"})
                chart.add_series(
                    {
                        "name": neutralise_cell(spec.chart_value),
                        "categories": [sheet_name, 1, cat, n, cat],
                        "values": [sheet_name, 1, val, n, val],
                        "marker": {"type": "circle"},
                    }
                )
                chart.set_title({"name": neutralise_cell(spec.chart_title)})
                chart.set_x_axis({"name": neutralise_cell(spec.chart_category)})
                chart.set_y_axis({"name": neutralise_cell(spec.chart_value)})
                chart.set_legend({"none": True})
                ws.insert_chart(1, table.num_columns + 1, chart)
    finally:
        workbook.close()


def _check_spec(sheets: Mapping[str, pa.Table], spec: XlsxSpec) -> None:
    wanted = []
    if spec.ranking_sheet is not None and spec.ranking_column is not None:
        wanted.append((spec.ranking_sheet, spec.ranking_column))
    if spec.chart_sheet is not None:
        wanted += [(spec.chart_sheet, spec.chart_category), (spec.chart_sheet, spec.chart_value)]
    for sheet, column in wanted:
        if sheet not in sheets:
            raise ExportError(f"XlsxSpec names sheet {sheet!r}; the workbook has {list(sheets)}")
        if column not in sheets[sheet].column_names:
            raise ExportError(
                f"XlsxSpec names column {column!r} of sheet {sheet!r}; "
                f"it has {sheets[sheet].column_names}"
            )


def _write_sheet(ws: Any, table: pa.Table, header: Any, fmt: Any) -> None:
    """Write one table column by column (xlsxwriter is pure Python: one call per cell)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for c, name in enumerate(table.column_names):
        ws.write_string(0, c, neutralise_cell(name), header)
        column = table.column(c)
        t = column.type
        if pa.types.is_dictionary(t):
            column = column.cast(t.value_type)
            t = t.value_type
        width = len(name)
        if pa.types.is_floating(t):
            num = fmt(_float_format(column))
            for r, v in enumerate(column.to_pylist(), start=1):
                if v is None:
                    continue
                if math.isfinite(v):
                    ws.write_number(r, c, v, num)
                else:
                    ws.write_string(
                        r, c, "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
                    )
            width = max(width, 12)
        elif pa.types.is_integer(t):
            num = fmt("0")
            for r, v in enumerate(column.to_pylist(), start=1):
                if v is not None:
                    ws.write_number(r, c, v, num)
            width = max(width, 8)
        elif pa.types.is_boolean(t):
            for r, v in enumerate(column.to_pylist(), start=1):
                if v is not None:
                    ws.write_boolean(r, c, v)
            width = max(width, 6)
        else:
            text = format_column(column.combine_chunks(), name=name)
            for r, v in enumerate(text.to_pylist(), start=1):
                if v is not None:
                    ws.write_string(r, c, v)
            if len(text):
                longest = pc.max(pc.utf8_length(text)).as_py()
                width = max(width, longest or 0)
        ws.set_column(c, c, min(max(width, 6), 60) + 2)
    ws.freeze_panes(1, 0)
    if table.num_columns:
        ws.autofilter(0, 0, max(table.num_rows, 1), table.num_columns - 1)
