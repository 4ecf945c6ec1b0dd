"""Export writers beside plain pyarrow on the same long-form metrics table.

Each group puts the baseline (``pyarrow.csv.write_csv`` / ``pyarrow.parquet.write_table``
with their defaults) and our deterministic, neutralising writer in one run, over
1,000,000 rows (study, case, run, stage, metric, step, value) from a seeded generator.
``BENCH_SMOKE=1`` uses 1,000 rows. Target (issue 4): within 1.5x of plain pyarrow.

The ``*-hash`` groups compare the two ways of getting the manifest's SHA-256: writing
the file and reading it back (``file_info``, what snapshots did before), and hashing
the bytes on their way to the file (``write_hashed``, what they do now).

    .venv/bin/python -m pytest benchmarks/bench_export_writers.py --benchmark-only \
        --benchmark-group-by=group -o addopts=""
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from projections.export.csv_writer import write_csv
from projections.export.float_text import format_floats
from projections.export.hashing_sink import write_hashed
from projections.export.manifest import file_info
from projections.export.parquet_writer import write_parquet

ROOT = Path(__file__).resolve().parents[1]
ROWS = 1_000 if os.environ.get("BENCH_SMOKE") == "1" else 1_000_000

METRICS_SCHEMA = pa.schema(
    [
        pa.field("study", pa.string(), nullable=False),
        pa.field("case", pa.string(), nullable=False),
        pa.field("run", pa.string(), nullable=False),
        pa.field("stage", pa.int64(), nullable=False),
        pa.field("metric", pa.string(), nullable=False),
        pa.field("step", pa.int64()),
        pa.field("value", pa.float64()),
    ]
)


def metrics_table(rows: int = ROWS, seed: int = 20240601) -> pa.Table:
    """A sorted long-form metrics table: 1,000 cases, 5 metrics, losses ~ lognormal."""
    rng = np.random.default_rng(seed)
    names = np.array([f"case-{i:04d}" for i in range(1000)])
    case_idx = rng.integers(0, 1000, rows)
    attempt = rng.integers(1, 3, rows)
    cases = names[case_idx]
    table = pa.table(
        {
            "study": pa.array(np.full(rows, "sweep-1")),
            "case": pa.array(cases),
            "run": pa.array(np.char.add(np.char.add(cases, "/r"), attempt.astype(str))),
            "stage": pa.array(case_idx // 200, pa.int64()),
            "metric": pa.array(
                np.array(["loss", "accuracy", "f1", "wns", "power"])[rng.integers(0, 5, rows)]
            ),
            "step": pa.array(rng.integers(0, 10_000, rows), pa.int64()),
            "value": pa.array(rng.lognormal(0.0, 2.0, rows)),
        },
        schema=METRICS_SCHEMA,
    )
    return table.sort_by(
        [
            ("case", "ascending"),
            ("run", "ascending"),
            ("metric", "ascending"),
            ("step", "ascending"),
        ]
    )


@pytest.fixture(scope="module")
def table() -> pa.Table:
    return metrics_table()


@pytest.mark.benchmark(group="export-csv")
def test_csv_plain_pyarrow(benchmark, table, tmp_path):
    benchmark(pacsv.write_csv, table, os.fspath(tmp_path / "plain.csv"))
    benchmark.extra_info["rows"] = table.num_rows


@pytest.mark.benchmark(group="export-csv")
def test_csv_write_csv(benchmark, table, tmp_path):
    benchmark(write_csv, table, tmp_path / "ours.csv")
    benchmark.extra_info["rows"] = table.num_rows


@pytest.mark.benchmark(group="export-parquet")
def test_parquet_plain_pyarrow(benchmark, table, tmp_path):
    benchmark(pq.write_table, table, os.fspath(tmp_path / "plain.parquet"))
    benchmark.extra_info["rows"] = table.num_rows


@pytest.mark.benchmark(group="export-parquet")
def test_parquet_write_parquet(benchmark, table, tmp_path):
    benchmark(write_parquet, table, tmp_path / "ours.parquet", schema=METRICS_SCHEMA)
    benchmark.extra_info["rows"] = table.num_rows


def _then_reread(write, path):
    rows = write(path)
    return file_info(path, rows)


@pytest.mark.benchmark(group="csv-hash")
def test_csv_write_then_reread(benchmark, table, tmp_path):
    benchmark(_then_reread, lambda p: write_csv(table, p), tmp_path / "reread.csv")


@pytest.mark.benchmark(group="csv-hash")
def test_csv_hashed_while_written(benchmark, table, tmp_path):
    benchmark(write_hashed, tmp_path / "hashed.csv", lambda s: write_csv(table, s))


@pytest.mark.benchmark(group="parquet-hash")
def test_parquet_write_then_reread(benchmark, table, tmp_path):
    write = lambda p: write_parquet(table, p, schema=METRICS_SCHEMA)  # noqa: E731
    benchmark(_then_reread, write, tmp_path / "reread.parquet")


@pytest.mark.benchmark(group="parquet-hash")
def test_parquet_hashed_while_written(benchmark, table, tmp_path):
    write = lambda s: write_parquet(table, s, schema=METRICS_SCHEMA)  # noqa: E731
    benchmark(write_hashed, tmp_path / "hashed.parquet", write)


@pytest.mark.benchmark(group="format-floats")
def test_floats_arrow_cast(benchmark, table):
    value = table.column("value").combine_chunks()
    benchmark(pc.cast, value, pa.string())


@pytest.mark.benchmark(group="format-floats")
def test_floats_repr_form(benchmark, table):
    value = table.column("value").combine_chunks()
    benchmark(format_floats, value)


PEAK_MEMORY = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    sys.path.insert(0, sys.argv[2])
    import pyarrow as pa, pyarrow.csv as pacsv, pyarrow.parquet as pq
    from bench_export_writers import METRICS_SCHEMA
    from projections.export.csv_writer import write_csv
    from projections.export.parquet_writer import write_parquet
    table = pa.ipc.open_file(pa.memory_map(sys.argv[4])).read_all()  # zero-copy: no pool use
    pool = pa.default_memory_pool()
    before = pool.max_memory()
    out = sys.argv[5]
    {"plain-csv": lambda: pacsv.write_csv(table, out), "write_csv": lambda: write_csv(table, out),
     "plain-parquet": lambda: pq.write_table(table, out),
     "write_parquet": lambda: write_parquet(table, out, schema=METRICS_SCHEMA)}[sys.argv[3]]()
    print(before, pool.max_memory(), pool.backend_name)
    """
)


def test_peak_memory_beside_plain_pyarrow(table, tmp_path):
    """Peak Arrow allocation of each writer in a fresh process (printed with -s).

    The child maps the table from an Arrow IPC file (no allocation), so the memory
    pool's peak is what the writer itself allocated: formatted batches, encoders,
    buffers. It is the figure that must not grow with the table for CSV.
    """
    source = tmp_path / "input.arrow"
    with pa.ipc.new_file(os.fspath(source), table.schema) as sink:
        sink.write_table(table)
    print(f"\nArrow memory pool peak while writing {ROWS:,} rows, MiB:")
    for writer in ("plain-csv", "write_csv", "plain-parquet", "write_parquet"):
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                PEAK_MEMORY,
                os.fspath(ROOT / "benchmarks"),
                os.fspath(ROOT),
                writer,
                os.fspath(source),
                os.fspath(tmp_path / writer),
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        )
        before, peak, backend = done.stdout.split()
        extra = (int(peak) - int(before)) / 2**20
        print(f"  {writer:14s} {extra:8.1f}  ({backend})")
