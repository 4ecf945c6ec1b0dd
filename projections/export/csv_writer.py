"""Deterministic CSV: the same table gives the same bytes, anywhere, any time.

Floats are spelled as ``repr`` does, text cells and header names are neutralised
against formula injection, quoting and line ends are pinned. Columns are formatted per
batch with Arrow kernels, so memory follows the batch size, not the table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from projections.export.cell_text import format_column, is_plain_text
from projections.export.hashing_sink import Sink, pyarrow_sink
from projections.export.safety import neutralise_cell

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["CSV_BATCH_ROWS", "write_csv"]

#: Rows formatted and written per step; bounds the extra memory of a CSV export.
CSV_BATCH_ROWS = 65_536


def write_csv(
    table: pa.Table, path: Sink, *, batch_rows: int = CSV_BATCH_ROWS, neutralise: bool = True
) -> int:
    """Write ``table`` as deterministic CSV to a path or a binary file object (a
    :class:`~projections.export.hashing_sink.HashingFile` hashes it on the way); return
    the number of data rows.

    Header row; every non-null field quoted (quotes doubled); ``\\n`` line ends; UTF-8
    without BOM; nulls as empty unquoted fields (so an empty string ``""`` stays
    distinct); floats in ``repr`` form; text cells and header names neutralised
    against formula injection. Columns are formatted per batch with Arrow kernels; one
    worker thread formats the next batch while Arrow's CSV writer (which does the
    quoting) writes the current one, so at most two formatted batches are in memory
    and the output order never depends on the threads. ``neutralise=False`` writes
    text cells and header names exactly as they are (``--csv-raw``: for programs that
    join CSV cells with other data; a spreadsheet may then run a cell as a formula).

    Raises:
        ExportError: a column type CSV cannot hold (before anything is written).
    """
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow as pa
    import pyarrow.csv as pacsv

    names = table.column_names
    # Formatting an empty slice refuses unsupported types before the file exists and
    # gives each column's written type.
    empty = [
        _csv_column(table.column(i).slice(0, 0).combine_chunks(), n, neutralise)
        for i, n in enumerate(names)
    ]
    header = neutralise_cell if neutralise else str
    schema = pa.schema([pa.field(header(n), c.type) for n, c in zip(names, empty)])

    def formatted(start: int) -> pa.RecordBatch:
        part = table.slice(start, batch_rows)
        columns = [
            _csv_column(part.column(i).combine_chunks(), n, neutralise) for i, n in enumerate(names)
        ]
        return pa.record_batch(columns, schema=schema)

    options = pacsv.WriteOptions(include_header=True, quoting_style="all_valid")
    starts = list(range(0, table.num_rows, batch_rows))
    with (
        pacsv.CSVWriter(pyarrow_sink(path), schema, write_options=options) as writer,
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


def _csv_column(arr: pa.Array, name: str, neutralise: bool = True) -> pa.Array:
    """Integers, booleans, dates and decimals go to Arrow's CSV writer as they are: it
    spells them exactly as the cast in :func:`format_column` would, without an extra
    string copy. Everything else is formatted here."""
    import pyarrow as pa

    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if is_plain_text(arr.type):
        return arr
    return format_column(arr, name=name, neutralise=neutralise)
