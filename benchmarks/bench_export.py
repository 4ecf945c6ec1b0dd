"""``export_study`` end to end beside plain pyarrow writing the same rows (issue 4).

A seeded study of 100 runs x 2,000 steps x 5 metrics (1,000,000 stepped values plus
500 finals, 200,300 events appended run by run, as a runner would) is exported to
each format. Each group puts, in one run:

- ``plain-pyarrow``: ``pyarrow.csv.write_csv`` / ``pyarrow.parquet.write_table`` with
  their defaults, writing the same rows (cases, runs, metrics; text as plain strings)
  from tables already in memory;
- ``write-stage``: our tables and writers from already-collected records (tables +
  deterministic, neutralising writers hashing each file as they write it + fsync +
  manifest): the same rows, written;
- ``export``: ``export_study`` end to end — reading the study from the ledger and
  folding it (the projections; ``export-load`` times that alone), selecting the values
  in force in export order (``collect``, also in ``export-load``), then the write stage.

``test_peak_memory`` exports each format in a fresh process and prints its peak RSS
(``VmHWM``; ``resource.getrusage`` where there is no ``/proc`` — on Linux a child's
``ru_maxrss`` starts at its parent's peak, since fork copies the address space and
exec records the old one's high-water mark, so it would report pytest's), beside plain pyarrow writing the same rows from a mapped
Arrow file, and the same export from a ledger that also holds ten times as much other
data. Targets: within 1.5x of plain pyarrow for CSV and Parquet, under 300 MB, the
same memory with ten times the other data. ``BENCH_SMOKE=1``: 4 runs x 50 steps.

    .venv/bin/python -m pytest benchmarks/bench_export.py --benchmark-only \
        --benchmark-group-by=group -o addopts="" -s
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from ledger import Ledger
from projections.export.api import export_study

ROOT = Path(__file__).resolve().parents[1]
SMOKE = os.environ.get("BENCH_SMOKE") == "1"
RUNS, STEPS, METRICS = (4, 50, 5) if SMOKE else (100, 2000, 5)
OTHER_STUDIES = 10
T0 = 1_714_521_600
NAMES = ["loss", "accuracy", "f1", "wns", "power"][:METRICS]


def study_batches(study: str, seed: int):
    """The study's events, one append batch per run (a runner's commit)."""
    rng = np.random.default_rng(seed)
    n_cases = max(RUNS // 5, 1)
    setup = [
        {
            "type": "study_created",
            "study": study,
            "objectives": [{"metric": "loss", "direction": "min"}],
            "config": {"lr": 0.1, "api_key": "s3cr3t"},
            "ts": T0,
        }
    ]
    for c in range(n_cases):
        case = f"case-{c:03d}"
        if c == 0:
            setup.append({"type": "case_created", "study": study, "case": case, "ts": T0})
        else:
            setup.append(
                {
                    "type": "eco_applied",
                    "study": study,
                    "case": case,
                    "parent": f"case-{(c - 1) // 2:03d}",
                    "eco": f"eco{c % 3}",
                    "params": {"lr": float(rng.random())},
                    "ts": T0,
                }
            )
    yield setup
    ts = float(T0)
    for r in range(RUNS):
        case = f"case-{r % n_cases:03d}"
        run = f"{case}/r{r // n_cases}"
        values = rng.lognormal(0.0, 1.0, (STEPS, METRICS)).tolist()
        batch = [
            {"type": "run_started", "study": study, "case": case, "run": run, "seed": r, "ts": ts}
        ]
        for step, row in enumerate(values):
            ts += 0.001
            batch.append(
                {
                    "type": "metrics_recorded",
                    "study": study,
                    "run": run,
                    "step": step,
                    "values": dict(zip(NAMES, row)),
                    "ts": ts,
                }
            )
        finals = dict(zip(NAMES, rng.random(METRICS).tolist()))
        batch.append(
            {"type": "metrics_recorded", "study": study, "run": run, "values": finals, "ts": ts}
        )
        batch.append(
            {"type": "run_finished", "study": study, "run": run, "status": "completed", "ts": ts}
        )
        yield batch


def build_ledger(path: Path, others: int = 0) -> Path:
    with Ledger(path) as led:
        for batch in study_batches("big", 7):
            led.append(batch)
        for i in range(others):
            for batch in study_batches(f"other-{i:02d}", 100 + i):
                led.append(batch)
    return path


@pytest.fixture(scope="module")
def ledger_path(tmp_path_factory) -> Path:
    return build_ledger(tmp_path_factory.mktemp("bench-export") / "big.ledger")


@pytest.fixture(scope="module")
def view(ledger_path):
    from projections.study import load_study

    with Ledger(ledger_path, create=False, readonly=True) as led:
        return load_study(led, "big", checkpoints=False)


@pytest.fixture(scope="module")
def plain_tables(view) -> dict[str, pa.Table]:
    """The exported rows as a user would hold them: plain strings, lists as text."""
    from projections.export.tables import (
        cases_table,
        collect,
        csv_ready,
        metrics_table,
        runs_table,
    )

    rec = collect(view)
    out = {}
    for name, t in (
        ("cases", csv_ready(cases_table(rec))),
        ("runs", runs_table(rec)),
        ("metrics", metrics_table(rec)),
    ):
        schema = pa.schema(
            [
                pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type)
                for f in t.schema
            ]
        )
        out[name] = t.cast(schema)
    return out


def _fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


@pytest.fixture(scope="module")
def records(view):
    from projections.export.tables import Redactor, collect

    return collect(view, redactor=Redactor())


def _write_stage(rec, out: Path, fmt: str) -> None:
    """What export_study does after ``collect``: tables, writers, manifest."""
    from projections.export.csv_writer import write_csv
    from projections.export.hashing_sink import write_hashed
    from projections.export.manifest import build_manifest
    from projections.export.parquet_writer import write_parquet
    from projections.export.snapshot import write_snapshot
    from projections.export.tables import (
        cases_table,
        csv_ready,
        metrics_table,
        runs_table,
    )

    tables = {"cases": cases_table(rec), "runs": runs_table(rec), "metrics": metrics_table(rec)}
    # As export_study does: each file hashed while it is written, none read back.
    if fmt == "csv":
        files = {
            f"{n}.csv": lambda p, t=t: write_hashed(p, lambda s: write_csv(csv_ready(t), s))
            for n, t in tables.items()
        }
    else:
        files = {
            f"{n}.parquet": lambda p, t=t: write_hashed(p, lambda s: write_parquet(t, s))
            for n, t in tables.items()
        }
    write_snapshot(
        out,
        "big",
        files,
        manifest=lambda infos: build_manifest(
            ledger_id="x",
            study="big",
            as_of=rec.as_of,
            head_hash="0" * 64,
            files=infos,
            redacted=rec.redactor.report(),
        ),
    )


def _plain(tables: dict[str, pa.Table], out: Path, fmt: str) -> None:
    for name, t in tables.items():
        if fmt == "csv":
            pacsv.write_csv(t, os.fspath(out / f"{name}.csv"))
        else:
            pq.write_table(t, os.fspath(out / f"{name}.parquet"))


ROUNDS = dict(rounds=3, iterations=1, warmup_rounds=0)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_plain_pyarrow(benchmark, plain_tables, tmp_path, fmt):
    benchmark.group = f"export-{fmt}"
    out = tmp_path / "plain"
    benchmark.pedantic(_plain, setup=lambda: ((plain_tables, _fresh(out), fmt), {}), **ROUNDS)
    benchmark.extra_info["rows"] = sum(t.num_rows for t in plain_tables.values())


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_write_stage(benchmark, records, tmp_path, fmt):
    benchmark.group = f"export-{fmt}"
    benchmark.pedantic(
        _write_stage, setup=lambda: ((records, _fresh(tmp_path / "w"), fmt), {}), **ROUNDS
    )


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json", "xlsx"])
def test_export(benchmark, ledger_path, tmp_path, fmt):
    benchmark.group = f"export-{fmt}"
    with Ledger(ledger_path, create=False) as led:

        def once(out: Path) -> None:
            export_study(led, "big", out, formats=[fmt], journal=False)

        benchmark.pedantic(once, setup=lambda: ((_fresh(tmp_path / "e"),), {}), **ROUNDS)


def test_load_study(benchmark, ledger_path):
    """The projections' share of an export: reading and folding the study."""
    from projections.study import load_study

    benchmark.group = "export-load"
    with Ledger(ledger_path, create=False, readonly=True) as led:
        benchmark.pedantic(lambda: load_study(led, "big", checkpoints=False), **ROUNDS)


def test_collect(benchmark, view):
    """Values in force, export order, redaction: from a built view to export columns."""
    from projections.export.tables import collect

    benchmark.group = "export-load"
    benchmark.pedantic(lambda: collect(view), **ROUNDS)


PEAK = textwrap.dedent(
    """
    import os, resource, sys, time
    sys.path.insert(0, sys.argv[1])
    fmt, source, out = sys.argv[2], sys.argv[3], sys.argv[4]
    t = time.perf_counter()
    if source.endswith(".arrow"):  # plain pyarrow, the rows mapped from an Arrow file
        import pyarrow as pa, pyarrow.csv as pacsv, pyarrow.parquet as pq
        table = pa.ipc.open_file(pa.memory_map(source)).read_all()
        if fmt == "csv":
            pacsv.write_csv(table, os.path.join(out, "metrics.csv"))
        else:
            pq.write_table(table, os.path.join(out, "metrics.parquet"))
    else:
        from ledger import Ledger
        from projections.export.api import export_study
        with Ledger(source, create=False) as led:
            export_study(led, "big", out, formats=[fmt], journal=False)
    seconds = time.perf_counter() - t
    try:  # this process's own high-water mark
        with open("/proc/self/status") as fh:
            kib = next(int(l.split()[1]) for l in fh if l.startswith("VmHWM:"))
    except (OSError, StopIteration):
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(kib, seconds)
    """
)


def _peak(fmt: str, source: Path, out: Path) -> tuple[float, float]:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            PEAK,
            os.fspath(ROOT),
            fmt,
            os.fspath(source),
            os.fspath(_fresh(out)),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    )
    kib, seconds = done.stdout.split()
    return int(kib) / 1024, float(seconds)


def test_peak_memory(benchmark, ledger_path, plain_tables, tmp_path_factory):
    """Peak RSS of a fresh process per export, printed with -s and kept in extra_info.

    Wrapped in ``benchmark`` (one round) so that ``--benchmark-only`` runs it; its time
    is only that of the measurements. No asserts: figures.
    """
    benchmark.group = "export-peak-rss"
    base = tmp_path_factory.mktemp("peak")
    arrow = base / "metrics.arrow"
    with pa.ipc.new_file(os.fspath(arrow), plain_tables["metrics"].schema) as sink:
        sink.write_table(plain_tables["metrics"])
    crowded = build_ledger(base / "crowded.ledger", others=OTHER_STUDIES)
    size = sum(p.stat().st_size for p in crowded.iterdir()) / 2**20

    def measure() -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for fmt in ("csv", "parquet", "json", "xlsx"):
            row: dict[str, float] = {}
            if fmt in ("csv", "parquet"):
                row["plain_mib"], row["plain_s"] = _peak(fmt, arrow, base / "plain")
            row["export_mib"], row["export_s"] = _peak(fmt, ledger_path, base / "ours")
            row["crowded_mib"], row["crowded_s"] = _peak(fmt, crowded, base / "crowded")
            out[fmt] = row
        return out

    figures = benchmark.pedantic(measure, rounds=1, iterations=1)
    benchmark.extra_info.update(
        {f"{k}.{m}": v for k, row in figures.items() for m, v in row.items()}
    )
    values = RUNS * STEPS * METRICS
    print(f"\npeak RSS, MiB (fresh process; {values:,} stepped values; wall s in brackets)")
    print(f"  {'format':8s} {'plain pyarrow':>16s} {'export':>16s} {'export, 10x other data':>26s}")
    for fmt, row in figures.items():
        plain = f"{row['plain_mib']:7.0f} [{row['plain_s']:5.2f}]" if "plain_mib" in row else "-"
        print(
            f"  {fmt:8s} {plain:>16s} {row['export_mib']:7.0f} [{row['export_s']:5.2f}]"
            f" {row['crowded_mib']:16.0f} [{row['crowded_s']:5.2f}]"
        )
    print(f"  (the crowded ledger holds {OTHER_STUDIES} more studies like it: {size:,.0f} MiB)")
