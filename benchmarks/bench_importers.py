"""Importers beside the peers' own readers on the same sources.

- ``import-orfs``: the whole ORFS bundle (494 runs, 4.9 MB) parsed into events by
  ``read_orfs``, beside plain ``json.loads`` of every line (the floor: any importer
  reads the JSON), and parse + append into a fresh ledger (the whole ``ledger import``).
- ``import-csv``: a generated wide CSV of 1,000,000 metric values (100,000 runs x 10
  metric columns, seeded) parsed into 400,001 events by ``read_csv_wide``, beside
  ``pyarrow.csv.read_csv`` of the same file (columns only, no events).

``BENCH_SMOKE=1`` uses 1,000 values. Run either way:

    .venv/bin/python -m pytest benchmarks/bench_importers.py --benchmark-only \
        --benchmark-group-by=group -o addopts=""
    .venv/bin/python benchmarks/bench_importers.py       # a plain table, no pytest
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ledger.importers.csv_import import read_csv_wide  # noqa: E402
from ledger.importers.orfs import read_orfs  # noqa: E402

BUNDLE = ROOT.parent / "shared" / "data" / "orfs" / "metadata-history.jsonl"
SMOKE = os.environ.get("BENCH_SMOKE") == "1"
VALUES = 1_000 if SMOKE else 1_000_000
COLUMNS = 10


def make_csv(path: Path, values: int = VALUES, seed: int = 20240601) -> Path:
    """``run,m0..m9``: half the columns floats (lognormal), half ints; a few empty cells."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rows = values // COLUMNS
    rng = np.random.default_rng(seed)
    cols: dict[str, pa.Array] = {"run": pa.array([f"run-{i:07d}" for i in range(rows)])}
    for c in range(COLUMNS):
        if c % 2:
            data = rng.integers(0, 10_000, rows)
            mask = None
        else:
            data = np.round(rng.lognormal(0.0, 1.0, rows), 6)
            mask = rng.random(rows) < 0.001
        cols[f"m{c}"] = pa.array(data, mask=mask)
    pacsv.write_csv(pa.table(cols), path, pacsv.WriteOptions(quoting_style="none"))
    return path


def orfs_json_loads() -> int:
    with open(BUNDLE, "rb") as fh:
        return sum(1 for line in fh if json.loads(line))


def orfs_read() -> int:
    return len(read_orfs([BUNDLE]).events)


def orfs_import(tmpdir: Path) -> int:
    from ledger import Ledger

    target = Path(tempfile.mkdtemp(dir=tmpdir)) / "b.ledger"
    events = read_orfs([BUNDLE]).events
    with Ledger.open(target) as led:
        n = led.append(events, source=str(BUNDLE)).appended
    shutil.rmtree(target.parent)
    return n


def csv_pyarrow(path: Path) -> int:
    import pyarrow.csv as pacsv

    return pacsv.read_csv(path).num_rows


def csv_read(path: Path) -> int:
    return len(read_csv_wide(path, run="run", metrics=["m*"]).events)


# -- pytest-benchmark ---------------------------------------------------------------

try:
    import pytest
except ImportError:  # the script mode needs no pytest
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture(scope="module")
    def bundle():
        if not BUNDLE.is_file():
            pytest.skip(f"shared ORFS data not found at {BUNDLE}")
        return BUNDLE

    @pytest.fixture(scope="module")
    def wide_csv(tmp_path_factory):
        return make_csv(tmp_path_factory.mktemp("csv") / "wide.csv")

    @pytest.mark.benchmark(group="import-orfs")
    def test_orfs_json_loads_baseline(benchmark, bundle):
        assert benchmark(orfs_json_loads) == 494

    @pytest.mark.benchmark(group="import-orfs")
    def test_orfs_read_orfs(benchmark, bundle):
        assert benchmark(orfs_read) == 3513

    @pytest.mark.benchmark(group="import-orfs")
    def test_orfs_parse_and_append(benchmark, bundle, tmp_path):
        assert benchmark.pedantic(orfs_import, args=(tmp_path,), rounds=3) == 3513

    @pytest.mark.benchmark(group="import-csv")
    def test_csv_pyarrow_baseline(benchmark, wide_csv):
        assert benchmark(csv_pyarrow, wide_csv) == VALUES // COLUMNS

    @pytest.mark.benchmark(group="import-csv")
    def test_csv_read_csv_wide(benchmark, wide_csv):
        rows = VALUES // COLUMNS
        # a study, and per row a case, run_started, final metrics and run_finished
        assert benchmark.pedantic(csv_read, args=(wide_csv,), rounds=3) == 1 + 4 * rows


# -- script mode --------------------------------------------------------------------


def _time(fn, *args, rounds: int = 5) -> tuple[float, float]:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        rows = []
        if BUNDLE.is_file():
            size = BUNDLE.stat().st_size
            for name, fn, args in (
                ("orfs: json.loads every line", orfs_json_loads, ()),
                ("orfs: read_orfs -> events", orfs_read, ()),
                ("orfs: read_orfs + Ledger.append", orfs_import, (tmpdir,)),
            ):
                lo, med = _time(fn, *args, rounds=5)
                rows.append((name, lo, med, f"{size / 1e6:.1f} MB, 494 runs"))
        csv_path = make_csv(tmpdir / "wide.csv")
        size = csv_path.stat().st_size
        for name, fn in (
            ("csv: pyarrow.csv.read_csv", csv_pyarrow),
            ("csv: read_csv_wide -> events", csv_read),
        ):
            lo, med = _time(fn, csv_path, rounds=3)
            rows.append((name, lo, med, f"{VALUES:,} values, {size / 1e6:.1f} MB"))
    width = max(len(r[0]) for r in rows)
    print(f"{'benchmark':<{width}}  {'min s':>8}  {'median s':>8}  source")
    for name, lo, med, note in rows:
        print(f"{name:<{width}}  {lo:8.3f}  {med:8.3f}  {note}")


if __name__ == "__main__":
    main()
