"""The deterministic file writers under the name they were first imported by.

Each format has its own module — :mod:`.csv_writer`, :mod:`.parquet_writer`,
:mod:`.json_writer`, :mod:`.xlsx_writer` — with the cell text CSV and xlsx share in
:mod:`.cell_text` and :mod:`.float_text`, and the sink that hashes a file while it is
written in :mod:`.hashing_sink`. Nothing in them reads the clock, the time zone, the
locale or the hash seed. This module re-exports their public names so that
``from projections.export.writers import write_csv`` keeps working.
"""

from __future__ import annotations

from projections.export.cell_text import format_column as format_column
from projections.export.csv_writer import CSV_BATCH_ROWS as CSV_BATCH_ROWS
from projections.export.csv_writer import write_csv as write_csv
from projections.export.float_text import format_floats as format_floats
from projections.export.json_writer import canonical_json as canonical_json
from projections.export.json_writer import to_jsonable as to_jsonable
from projections.export.json_writer import write_json as write_json
from projections.export.parquet_writer import PARQUET_OPTIONS as PARQUET_OPTIONS
from projections.export.parquet_writer import write_parquet as write_parquet
from projections.export.xlsx_writer import XLSX_CREATED as XLSX_CREATED
from projections.export.xlsx_writer import XlsxSpec as XlsxSpec
from projections.export.xlsx_writer import write_xlsx as write_xlsx

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
