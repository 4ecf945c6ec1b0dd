"""`ledger import` end to end, beside the peers' own readers on the same sources.

What a user waits for is the command, not the parser: these time the whole CLI path
(parse, settle existing studies, one atomic append per file, render), in-process through
click's CliRunner and as a real ``ledger`` subprocess (interpreter start-up and imports
included), into a fresh ledger each round.

- ``import-cli-orfs``: the whole ORFS bundle (494 runs, 4.9 MB), beside ``json.loads``
  of every line (the peer's floor); also the re-import (every event a duplicate) and
  ``--normalise-time ns``.
- ``import-cli-csv``: the seeded 1,000,000-value wide CSV of ``bench_importers.py``
  (100,000 runs x 10 metrics), beside ``pyarrow.csv.read_csv`` and the stdlib ``csv``
  reader. pandas is not a dependency of this project (nor in its venv), so pyarrow, the
  faster of the two, is the peer.

``BENCH_SMOKE=1`` uses a 1,000-value CSV. Run either way:

    .venv/bin/python -m pytest benchmarks/bench_import_cli.py --benchmark-only \
        --benchmark-group-by=group -o addopts=""
    .venv/bin/python benchmarks/bench_import_cli.py     # a plain table, no pytest
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from bench_importers import BUNDLE, COLUMNS, VALUES, make_csv  # noqa: E402

CSV_FLAGS = ["--run", "run", "--metric", "m*"]


def _cli(ledger: Path, *args: str) -> dict:
    from click.testing import CliRunner  # noqa: TID251 - this benchmark drives the CLI itself

    from cli.main import cli

    r = CliRunner().invoke(cli, ["--ledger", str(ledger), "import", *args, "--json"])
    if r.exit_code != 0:
        raise RuntimeError(r.stderr or r.stdout)
    return json.loads(r.stdout)


def _fresh(tmpdir: Path) -> Path:
    return Path(tempfile.mkdtemp(dir=tmpdir)) / "b.ledger"


def _drop(ledger: Path) -> None:
    shutil.rmtree(ledger.parent, ignore_errors=True)


# -- the sources' peers ------------------------------------------------------------------


def orfs_json_loads() -> int:
    with open(BUNDLE, "rb") as fh:
        return sum(1 for line in fh if json.loads(line))


def csv_pyarrow(path: Path) -> int:
    import pyarrow.csv as pacsv

    return pacsv.read_csv(path).num_rows


def csv_stdlib(path: Path) -> int:
    with open(path, newline="") as fh:
        return sum(1 for _ in csv.reader(fh)) - 1


# -- the command -------------------------------------------------------------------------


def orfs_cli(tmpdir: Path, *extra: str) -> int:
    target = _fresh(tmpdir)
    try:
        return _cli(target, "orfs", str(BUNDLE), *extra)["appended"]
    finally:
        _drop(target)


def orfs_cli_again(target: Path) -> int:
    return _cli(target, "orfs", str(BUNDLE))["duplicates"]


def csv_cli(tmpdir: Path, path: Path) -> int:
    target = _fresh(tmpdir)
    try:
        return _cli(target, "csv", str(path), *CSV_FLAGS)["appended"]
    finally:
        _drop(target)


def csv_parse(path: Path) -> list:
    from ledger.importers import read_csv_wide

    return read_csv_wide(path, run="run", metrics=["m*"]).events


def csv_append_only(tmpdir: Path, events: list) -> int:
    """The ledger's share: ``Ledger.append`` of events already parsed."""
    from ledger import Ledger

    target = _fresh(tmpdir)
    try:
        with Ledger(target, create=True) as led:
            return led.append(events, source="wide.csv").appended
    finally:
        _drop(target)


def subprocess_cli(tmpdir: Path, *args: str) -> int:
    target = _fresh(tmpdir)
    exe = Path(sys.executable).with_name("ledger")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "cli.main"]
    try:
        out = subprocess.run(
            [*cmd, "--ledger", str(target), "import", *args, "--json"],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        return json.loads(out.stdout)["appended"]
    finally:
        shutil.rmtree(target.parent, ignore_errors=True)


# -- pytest-benchmark --------------------------------------------------------------------

try:
    import pytest
except ImportError:  # the script mode needs no pytest
    pytest = None  # type: ignore[assignment]

if pytest is not None:
    EVENTS_CSV = 1 + 4 * (VALUES // COLUMNS)

    @pytest.fixture(scope="module")
    def bundle():
        if not BUNDLE.is_file():
            pytest.skip(f"shared ORFS data not found at {BUNDLE}")
        return BUNDLE

    @pytest.fixture(scope="module")
    def wide_csv(tmp_path_factory):
        return make_csv(tmp_path_factory.mktemp("csv") / "wide.csv")

    @pytest.mark.benchmark(group="import-cli-orfs")
    def test_orfs_json_loads_baseline(benchmark, bundle):
        assert benchmark(orfs_json_loads) == 494

    @pytest.mark.benchmark(group="import-cli-orfs")
    def test_orfs_cli(benchmark, bundle, tmp_path):
        assert benchmark.pedantic(orfs_cli, args=(tmp_path,), rounds=3) == 3513

    @pytest.mark.benchmark(group="import-cli-orfs")
    def test_orfs_cli_reimport(benchmark, bundle, tmp_path):
        target = tmp_path / "again.ledger"
        _cli(target, "orfs", str(BUNDLE))
        assert benchmark.pedantic(orfs_cli_again, args=(target,), rounds=3) == 3512

    @pytest.mark.benchmark(group="import-cli-csv")
    def test_csv_pyarrow_baseline(benchmark, wide_csv):
        assert benchmark(csv_pyarrow, wide_csv) == VALUES // COLUMNS

    @pytest.mark.benchmark(group="import-cli-csv")
    def test_csv_cli(benchmark, wide_csv, tmp_path):
        assert benchmark.pedantic(csv_cli, args=(tmp_path, wide_csv), rounds=1) == EVENTS_CSV


# -- script mode -------------------------------------------------------------------------


def _time(fn, *args, rounds: int) -> tuple[float, float]:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times)


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        if BUNDLE.is_file():
            note = f"{BUNDLE.stat().st_size / 1e6:.1f} MB, 494 runs, 3,513 events"
            again = tmpdir / "again.ledger"
            _cli(again, "orfs", str(BUNDLE))
            for name, fn, args, rounds in (
                ("orfs: json.loads every line (peer)", orfs_json_loads, (), 5),
                ("orfs: ledger import (in-process)", orfs_cli, (tmpdir,), 5),
                ("orfs: ledger import (subprocess)", subprocess_cli,
                 (tmpdir, "orfs", str(BUNDLE)), 3),
                ("orfs: ledger import --normalise-time ns", orfs_cli,
                 (tmpdir, "--normalise-time", "ns"), 3),
                ("orfs: re-import, all duplicates", orfs_cli_again, (again,), 3),
            ):  # fmt: skip
                lo, med = _time(fn, *args, rounds=rounds)
                rows.append((name, lo, med, rounds, note))
        path = make_csv(tmpdir / "wide.csv")
        note = f"{VALUES:,} values, {path.stat().st_size / 1e6:.1f} MB, " + (
            f"{1 + 4 * (VALUES // COLUMNS):,} events"
        )
        for name, fn, args, rounds in (
            ("csv: pyarrow.csv.read_csv (peer)", csv_pyarrow, (path,), 5),
            ("csv: stdlib csv.reader (peer)", csv_stdlib, (path,), 3),
            ("csv: read_csv_wide only (the parse)", csv_parse, (path,), 1),
            ("csv: Ledger.append only (parsed events)", csv_append_only,
             (tmpdir, csv_parse(path)), 1),
            ("csv: ledger import (in-process)", csv_cli, (tmpdir, path), 3),
            ("csv: ledger import (subprocess)", subprocess_cli,
             (tmpdir, "csv", str(path), *CSV_FLAGS), 1),
        ):  # fmt: skip
            lo, med = _time(fn, *args, rounds=rounds)
            rows.append((name, lo, med, rounds, note))
    width = max(len(r[0]) for r in rows)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average at the end: {load:.1f} on {os.cpu_count()} cores")
    print(f"{'benchmark':<{width}}  {'min s':>8}  {'median s':>8}  rounds  source")
    for name, lo, med, rounds, note in rows:
        print(f"{name:<{width}}  {lo:8.3f}  {med:8.3f}  {rounds:>6}  {note}")


if __name__ == "__main__":
    main()
