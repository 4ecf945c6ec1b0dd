"""Deterministic xlsx: one worksheet per table, pinned document properties and zip
entry times, formatting and a chart, and no cell that Excel could run as a formula."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from projections.export.cell_text import format_column
from projections.export.safety import ExportError, neutralise_cell

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["DATE_FORMAT", "XLSX_CREATED", "FieldSheet", "XlsxSpec", "write_xlsx"]

#: The creation time every workbook claims (the zip entries say the same: 1980-01-01).
XLSX_CREATED = datetime(1980, 1, 1, tzinfo=timezone.utc)
_XLSX_MAX_ROWS = 1_048_575  # Excel's 1,048,576 rows less the header
#: How date cells show (UTC; Excel keeps milliseconds at most on screen, the cell's
#: serial number carries the rest).
DATE_FORMAT = "yyyy-mm-dd hh:mm:ss.000"


@dataclass(frozen=True)
class FieldSheet:
    """A two-column sheet of (field, value) rows whose values keep their own types:
    numbers as number cells, ``datetime`` as date cells, text neutralised, None blank."""

    rows: tuple[tuple[str, Any], ...]

    @property
    def column_names(self) -> list[str]:
        return ["field", "value"]

    @property
    def num_rows(self) -> int:
        return len(self.rows)

    @property
    def num_columns(self) -> int:
        return 2


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
    sheets: Mapping[str, pa.Table | FieldSheet],
    path: str | os.PathLike[str],
    spec: XlsxSpec | None = None,
) -> None:
    """Write one worksheet per table, in the mapping's order, with a reproducible zip.

    Text goes through ``write_string`` after neutralisation, so no cell is ever a
    formula; numbers get number formats; timestamps are date cells (UTC, shown as
    :data:`DATE_FORMAT`); NaN and ±inf (which Excel cannot store) are
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
            if isinstance(table, FieldSheet):
                _write_fields(ws, table, header, fmt)
            else:
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


def _check_spec(sheets: Mapping[str, pa.Table | FieldSheet], spec: XlsxSpec) -> None:
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

    for c, name in enumerate(table.column_names):
        ws.write_string(0, c, neutralise_cell(name), header)
        column = table.column(c)
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        write = _column_writer(column.type)
        width = max(len(name), write(ws, c, column, fmt, name))
        ws.set_column(c, c, min(max(width, 6), 60) + 2)
    ws.freeze_panes(1, 0)
    if table.num_columns:
        ws.autofilter(0, 0, max(table.num_rows, 1), table.num_columns - 1)


def _column_writer(t: Any) -> Callable[[Any, int, Any, Any, str], int]:
    """The writer of a column of type ``t``: it writes rows 1.. of column ``c`` and
    returns the width the column needs."""
    import pyarrow as pa

    if pa.types.is_floating(t):
        return _write_floats
    if pa.types.is_integer(t):
        return _write_ints
    if pa.types.is_timestamp(t):
        return _write_dates
    if pa.types.is_boolean(t):
        return _write_bools
    return _write_text


def _write_floats(ws: Any, c: int, column: pa.ChunkedArray, fmt: Any, name: str) -> int:
    """Numbers with a fixed or scientific format; NaN and ±inf as their texts."""
    num = fmt(_float_format(column))
    for r, v in enumerate(column.to_pylist(), start=1):
        if v is None:
            continue
        if math.isfinite(v):
            ws.write_number(r, c, v, num)
        else:
            ws.write_string(r, c, _non_finite(v))
    return 12


def _write_ints(ws: Any, c: int, column: pa.ChunkedArray, fmt: Any, name: str) -> int:
    num = fmt("0")
    for r, v in enumerate(column.to_pylist(), start=1):
        if v is not None:
            ws.write_number(r, c, v, num)
    return 8


def _write_bools(ws: Any, c: int, column: pa.ChunkedArray, fmt: Any, name: str) -> int:
    for r, v in enumerate(column.to_pylist(), start=1):
        if v is not None:
            ws.write_boolean(r, c, v)
    return 6


def _write_text(ws: Any, c: int, column: pa.ChunkedArray, fmt: Any, name: str) -> int:
    """Everything else as the text a CSV cell holds (neutralised)."""
    import pyarrow.compute as pc

    text = format_column(column.combine_chunks(), name=name)
    for r, v in enumerate(text.to_pylist(), start=1):
        if v is not None:
            ws.write_string(r, c, v)
    if not len(text):
        return 0
    return int(pc.max(pc.utf8_length(text)).as_py() or 0)


def _write_dates(ws: Any, c: int, column: pa.ChunkedArray, fmt: Any, name: str) -> int:
    """Timestamps as date cells: the serial number, computed column-wise, with a date
    format (what ``write_datetime`` writes, without a datetime object per cell)."""
    num = fmt(DATE_FORMAT)
    import pyarrow as pa
    import pyarrow.compute as pc

    from projections.export.time_text import excel_serial

    arr = column.combine_chunks()
    unit = arr.type.unit
    per_us = {"s": 1_000_000, "ms": 1_000, "us": 1}
    micros = pc.fill_null(arr.view(pa.int64()), 0).to_numpy()
    micros = micros * per_us[unit] if unit in per_us else micros // 1_000
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    for r, (v, ok) in enumerate(zip(excel_serial(micros).tolist(), valid.tolist()), start=1):
        if ok:
            ws.write_number(r, c, v, num)
    return len(DATE_FORMAT)


def _write_fields(ws: Any, sheet: FieldSheet, header: Any, fmt: Any) -> None:
    """(field, value) rows, each value written as the cell type its Python type says."""
    from projections.export.time_text import excel_serial

    ws.write_string(0, 0, "field", header)
    ws.write_string(0, 1, "value", header)
    widths = [len("field"), len("value")]
    for r, (name, value) in enumerate(sheet.rows, start=1):
        ws.write_string(r, 0, neutralise_cell(name))
        widths[0] = max(widths[0], len(name))
        if value is None:
            continue
        if isinstance(value, bool):
            ws.write_boolean(r, 1, value)
        elif isinstance(value, int):
            ws.write_number(r, 1, value, fmt("0"))
        elif isinstance(value, float) and math.isfinite(value):
            ws.write_number(r, 1, value, fmt("0.000000"))
        elif isinstance(value, datetime):
            when = value.astimezone(timezone.utc) if value.tzinfo else value
            delta = when.replace(tzinfo=timezone.utc) - _EPOCH
            micros = (delta.days * 86_400 + delta.seconds) * 10**6 + delta.microseconds
            ws.write_number(r, 1, float(excel_serial([micros])[0]), fmt(DATE_FORMAT))
            widths[1] = max(widths[1], len(DATE_FORMAT))
        else:
            text = value if isinstance(value, str) else _non_finite(value)
            ws.write_string(r, 1, neutralise_cell(text))
            widths[1] = max(widths[1], len(text))
    for c, w in enumerate(widths):
        ws.set_column(c, c, min(max(w, 6), 60) + 2)
    ws.freeze_panes(1, 0)
    ws.autofilter(0, 0, max(sheet.num_rows, 1), 1)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _non_finite(value: Any) -> str:
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return str(value)
