"""Deterministic Parquet: writer options and metadata pinned, so the bytes depend only
on the data and the pyarrow version (which the manifest records)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from projections.export.hashing_sink import Sink, pyarrow_sink, sink_name
from projections.export.safety import ExportError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["PARQUET_OPTIONS", "write_parquet"]

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


def write_parquet(table: pa.Table, path: Sink, *, schema: pa.Schema | None = None) -> int:
    """Write ``table`` as Parquet with pinned options to a path or a binary file object;
    return the number of rows.

    With ``schema``, columns are selected and cast to it first, so the file carries the
    declared types (a reader gets ``int64`` stage, ``float64`` value, …) rather than
    whatever the builder happened to produce. All key-value metadata (schema and field
    level, e.g. pandas') is dropped; the only metadata left is the Arrow schema that
    ``store_schema`` writes, the writer's ``created_by`` (its version, no time) and a
    ``pandas`` entry of our own that makes pandas read nullable integer columns as
    ``Int64`` rather than float64 (:func:`_pandas_hint`).

    Raises:
        ExportError: a column is missing or cannot be cast to ``schema``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if schema is not None:
        missing = [n for n in schema.names if n not in table.column_names]
        if missing:
            raise ExportError(
                f"table for {sink_name(path)!r} lacks column(s) {missing}; "
                f"it has {table.column_names}"
            )
        try:
            table = table.select(schema.names).cast(schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
            raise ExportError(f"cannot cast the table for {sink_name(path)!r}: {exc}") from None
    bare = pa.schema(
        [pa.field(f.name, f.type, f.nullable) for f in table.schema],
        metadata=_pandas_hint(table.schema),
    )
    table = table.cast(bare)  # drops schema- and field-level metadata but the hint
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
    pq.write_table(table, pyarrow_sink(path), **options)
    return table.num_rows


def _pandas_hint(schema: pa.Schema) -> dict[bytes, bytes] | None:
    """A minimal ``pandas`` metadata entry naming the nullable integer columns.

    pandas reads an integer column that may hold nulls (a final value's ``step``, a
    param some cases lack) as float64 by default, turning step 3 into 3.0; with this
    entry ``pandas.read_parquet`` gives them its nullable ``Int64`` instead, whatever
    the rows hold. Other readers (Polars, DuckDB, Arrow) ignore it: their integers are
    nullable already. Canonical JSON: the bytes depend only on the schema.
    """
    import msgspec
    import pyarrow as pa

    columns = [
        {
            "field_name": f.name,
            "metadata": None,
            "name": f.name,
            "numpy_type": "Int64",
            "pandas_type": "int64",
        }
        for f in schema
        if f.nullable
        and pa.types.is_integer(f.type)
        and f.type.bit_width == 64
        and pa.types.is_signed_integer(f.type)
    ]
    if not columns:
        return None
    doc = {"column_indexes": [], "columns": columns, "index_columns": []}
    return {b"pandas": msgspec.json.encode(doc, order="sorted")}
