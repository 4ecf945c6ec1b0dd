"""``ledger report`` beside ``ledger export --format all`` of the same study (issue 15).

The seeded study of ``benchmarks/report_study.py``: 100 and 1,000 cases, 10 runs each,
a 2,000-step ``loss`` curve per run (2 and 20 million stepped values), two objectives,
ECOs over three stages, 4% failed runs. Each group (``report-100``, ``report-1000``)
puts in one run:

- ``export``: ``export_study(..., formats="all")`` — JSON, CSV, Parquet and xlsx with
  the manifest: the baseline;
- ``report``: ``projections.report.write`` of the same study at the same seq.

Both read and fold the study from the ledger (no checkpoint), so the ratio compares
the whole command. Sizes (the report file, the export folder) go to ``extra_info`` and
are printed. Target: the 1,000-case report under 2x the export's time, under 5 MB.
``BENCH_SMOKE=1``: 20 cases x 2 runs x 50 steps, once.

    .venv/bin/python -m pytest benchmarks/bench_report.py --benchmark-only \
        --benchmark-group-by=group -o addopts="" -s
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from report_study import build

from ledger import Ledger
from projections.export.api import export_study
from projections.report import write

SMOKE = os.environ.get("BENCH_SMOKE") == "1"
SIZES = [20] if SMOKE else [100, 1000]
RUNS, STEPS = (2, 50) if SMOKE else (10, 2000)
ROUNDS = {"rounds": 1, "iterations": 1} if SMOKE else {"rounds": 3, "iterations": 1}


@pytest.fixture(scope="module", params=SIZES, ids=lambda n: f"{n}-cases")
def study(request, tmp_path_factory) -> tuple[int, Path]:
    path = tmp_path_factory.mktemp(f"report-{request.param}") / "s.ledger"
    build(path, cases=request.param, runs=RUNS, steps=STEPS)
    return request.param, path


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    return path


def test_export_all(benchmark, study, tmp_path):
    cases, path = study
    benchmark.group = f"report-{cases}"
    out = tmp_path / "export"
    with Ledger(path, create=False) as led:
        benchmark.pedantic(
            lambda o: export_study(led, "seeded", o, formats="all", journal=False),
            setup=lambda: ((_fresh(out),), {}),
            **ROUNDS,
        )
    benchmark.extra_info["bytes"] = _size(out)
    print(f"\nexport --format all, {cases} cases: {_size(out):,} bytes")


def test_report(benchmark, study, tmp_path):
    cases, path = study
    benchmark.group = f"report-{cases}"
    out = tmp_path / "r.html"
    with Ledger(path, create=False, readonly=True) as led:
        info = benchmark.pedantic(lambda: write(led, "seeded", out), **ROUNDS)
    assert info.bytes < 5 * 1024 * 1024
    benchmark.extra_info["bytes"] = info.bytes
    print(f"\nreport, {cases} cases: {info.bytes:,} bytes")
