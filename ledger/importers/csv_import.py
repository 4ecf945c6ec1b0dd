"""CSV files as ledger events: wide (a row per run or per sample) and long (a row per value).

The names importers, the CLI and tests use. Each part lives in a module of its own:
``csv_wide`` and ``csv_long`` (the two readers and the file shapes they accept),
``csv_records`` (the file into records with their line numbers), ``csv_roles`` (which
role each column of a wide file plays), ``csv_cells`` (what a cell means: numbers,
steps, statuses, errors, times) and ``csv_events`` (the events of a case and a run).
"""

from __future__ import annotations

from .csv_cells import STATUS_WORDS as STATUS_WORDS
from .csv_cells import status_from_error as status_from_error
from .csv_long import read_csv_long as read_csv_long
from .csv_wide import read_csv_wide as read_csv_wide

__all__ = ["STATUS_WORDS", "read_csv_long", "read_csv_wide", "status_from_error"]
