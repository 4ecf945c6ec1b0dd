"""Read, replay, every projection rebuild, rank, analytics and exports at 100,000 and
1,000,000 metric values, each group beside its floor or baseline measured in the same run.

Groups (``{size}`` is 100k or 1M; ``BENCH_SMOKE=1``: 1k, one round each):

- ``replay {size}``: ``read_batches`` (decode only), ``read`` (one envelope at a time),
  ``read(with_hashes=True)`` (the chain recomputed per event), ``read(study=...)`` (the
  study index), ``read_frames`` (metrics events as the columns each block stores, the
  others decoded: what a rebuild reads) — beside the SQLite event log reading and
  decoding the same events.
- ``rebuild scratch {size}``: each built-in projection alone and all four in one pass
  (``build_many``), from seq 0 — beside ``read_batches`` alone (the core's share).
- ``rebuild checkpoint {size}``: the same from checkpoints 1% behind the head.
- ``rank {size}``: ``load_study(...).rank()`` from checkpoints and from scratch, beside
  ``load_study`` alone (the ranking's own share is the difference).
- ``analytics {size}``: ``stats`` (loss by case), ``compare`` (two cases, Welch) and
  ``curves`` (loss, window 100) through the public API, beside ``load_study``.
- ``export {size} {fmt}``: ``export_study`` for json, csv, parquet and xlsx, beside
  ``load_study`` then plain pyarrow writing the same long-form metrics rows (csv and
  parquet; the load is in both, so the ratio is what our tables and writers add).

Rates land in ``extra_info`` (``values_per_s`` from the best round). No timing is
asserted; every test asserts what it computed.

    .venv/bin/python -m pytest benchmarks/bench_replay.py --benchmark-only \
        --benchmark-group-by=group --benchmark-columns=min,median,rounds -o addopts=""
"""

from __future__ import annotations

import gc
import os
import shutil

import pytest
from conftest import SMOKE
from ledgers import SHAPES, SIZES, event_count, label, ledger_for, sqlite_for
from sqlite_baseline import SqliteLog

from ledger import Ledger
from projections.base import build_many
from projections.dag import DagProjection
from projections.metrics import MetricsProjection
from projections.runs import RunsProjection
from projections.stages import SelectionsProjection
from projections.study import load_study

ROUNDS = 1 if SMOKE else 3
PROJECTIONS = {
    "dag": DagProjection,
    "runs": RunsProjection,
    "metrics": MetricsProjection,
    "selections": SelectionsProjection,
}
SIZE_IDS = [label(v) for v in SIZES]


@pytest.fixture(scope="module", params=SIZES, ids=SIZE_IDS)
def sized(request, tmp_path_factory):
    values = request.param
    root = tmp_path_factory.getbasetemp() / "bench-ledgers"
    root.mkdir(exist_ok=True)
    path = ledger_for(root, values)
    ledger = Ledger(path, create=False)
    yield values, ledger
    ledger.close()


def _run(benchmark, fn, values, rounds=ROUNDS):
    """pedantic with the cyclic GC off inside the timed call (as ``build`` does)."""

    def timed():
        was = gc.isenabled()
        gc.disable()
        try:
            return fn()
        finally:
            if was:
                gc.enable()

    result = benchmark.pedantic(timed, rounds=rounds, iterations=1)
    stats = getattr(benchmark, "stats", None)
    if stats is not None and stats.stats.min:
        benchmark.extra_info["values_per_s"] = round(values / stats.stats.min)
    benchmark.extra_info["metric_values"] = values
    return result


# ----------------------------------------------------------------------------- replay


@pytest.mark.parametrize(
    "how", ["read_batches", "read", "with_hashes", "study", "frames", "sqlite"]
)
def test_replay(benchmark, sized, how, tmp_path_factory):
    values, ledger = sized
    benchmark.group = f"replay {label(values)}"
    events = event_count(values)
    if how == "sqlite":
        root = tmp_path_factory.getbasetemp() / "bench-ledgers"
        log = SqliteLog(sqlite_for(root, values))
        try:
            assert _run(benchmark, lambda: len(log.read()), values) == events
        finally:
            log.close()
        return
    fns = {
        "read_batches": lambda: sum(len(b) for b in ledger.read_batches(chunk_blocks=16)),
        "read": lambda: sum(1 for _ in ledger.read()),
        "with_hashes": lambda: sum(1 for _ in ledger.read(with_hashes=True)),
        "study": lambda: sum(len(b) for b in ledger.read_batches(study="bench")),
        "frames": lambda: sum(len(f.other) + f.metrics.count for f in ledger.read_frames()),
    }
    assert _run(benchmark, fns[how], values) == events


# ---------------------------------------------------------------------------- rebuild


def _rebuild(ledger, names, checkpoints):
    return build_many(ledger, [PROJECTIONS[n]() for n in names], checkpoints=checkpoints)


@pytest.mark.parametrize("start", ["scratch", "checkpoint"])
@pytest.mark.parametrize("which", ["read_batches", *PROJECTIONS, "all"])
def test_rebuild(benchmark, sized, which, start):
    values, ledger = sized
    benchmark.group = f"rebuild {start} {label(values)}"
    runs, steps = SHAPES[values]
    if which == "read_batches":
        if start == "checkpoint":
            pytest.skip("the floor is measured from scratch only")
        got = _run(
            benchmark, lambda: sum(len(b) for b in ledger.read_batches(chunk_blocks=16)), values
        )
        assert got == event_count(values)
        return
    names = list(PROJECTIONS) if which == "all" else [which]
    built = _run(benchmark, lambda: _rebuild(ledger, names, start == "checkpoint"), values)
    assert all(p.seq == ledger.head.seq for p in built)
    if "metrics" in names:
        metrics = built[names.index("metrics")]
        assert metrics.count() == values + 2 * runs


# ------------------------------------------------------------------------------- rank


@pytest.mark.parametrize("how", ["load_study", "rank", "rank scratch"])
def test_rank(benchmark, sized, how):
    values, ledger = sized
    benchmark.group = f"rank {label(values)}"
    runs, _ = SHAPES[values]
    if how == "load_study":
        view = _run(benchmark, lambda: load_study(ledger, "bench"), values, rounds=ROUNDS * 3)
        assert view.metrics.count() == values + 2 * runs
        return
    scratch = how == "rank scratch"
    ranking = _run(
        benchmark,
        lambda: load_study(ledger, "bench", checkpoints=not scratch).rank(),
        values,
        rounds=ROUNDS if scratch else ROUNDS * 3,
    )
    assert len(ranking.rows) == max(1, runs // 2)


# -------------------------------------------------------------------------- analytics


@pytest.mark.parametrize("call", ["load_study", "stats", "compare", "curves"])
def test_analytics(benchmark, sized, call):
    from projections.analytics import api
    from projections.analytics.query import Query

    values, ledger = sized
    benchmark.group = f"analytics {label(values)}"
    runs, _ = SHAPES[values]
    cases = max(1, runs // 2)
    calls = {
        "load_study": lambda: load_study(ledger, "bench"),
        "stats": lambda: api.stats(Query(ledger).study("bench").metric("loss"), by="case"),
        "compare": lambda: api.compare(Query(ledger).study("bench").metric("loss"), a="c0", b="c1"),
        "curves": lambda: api.curves(
            Query(ledger).study("bench").metric("loss"), window=100, min_delta=1e-3
        ),
    }
    res = _run(benchmark, calls[call], values)
    if call == "stats":
        assert len(res.data["groups"]) == cases
    elif call == "compare":
        assert res.data["n_a"] == res.data["n_b"] == runs // cases
    elif call == "curves":
        assert len(res.data["runs"]) == runs


# ----------------------------------------------------------------------------- export


def _plain_pyarrow(ledger, fmt, out):
    """What plain pyarrow writes for the same rows: the metrics long table (text
    columns as plain strings), from the projection's columns."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    view = load_study(ledger, "bench")
    parts = []
    for finals in (False, True):
        t = view.metrics.long_table("bench", finals=finals)
        runs = np.array([r for _, r in t["runs"]], dtype=object)
        names = np.array(t["metrics"], dtype=object)
        parts.append(
            pa.table(
                {
                    "run": pa.array(runs[t["run"]], pa.string()),
                    "metric": pa.array(names[t["metric"]], pa.string()),
                    "step": pa.array(t["step"], pa.int64(), mask=t["step"] < 0),
                    "value": t["value"],
                    "seq": t["seq"],
                }
            )
        )
    table = pa.concat_tables(parts)
    if fmt == "csv":
        pacsv.write_csv(table, os.fspath(out / "metrics.csv"))
    else:
        pq.write_table(table, os.fspath(out / "metrics.parquet"))
    return table.num_rows


@pytest.mark.parametrize("how", ["export_study", "plain pyarrow"])
@pytest.mark.parametrize("fmt", ["json", "csv", "parquet", "xlsx"])
def test_export(benchmark, sized, fmt, how, tmp_path):
    from projections.export.api import export_study

    values, ledger = sized
    benchmark.group = f"export {label(values)} {fmt}"
    runs, steps = SHAPES[values]
    out = tmp_path / "out"

    def fresh():
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()

    if how == "plain pyarrow":
        if fmt not in ("csv", "parquet"):
            pytest.skip("plain pyarrow writes tables: csv and parquet")

        def plain():
            fresh()
            return _plain_pyarrow(ledger, fmt, out)

        assert _run(benchmark, plain, values) == values + 2 * runs
        return

    def ours():
        fresh()
        return export_study(ledger, "bench", out, formats=fmt, journal=False)

    manifest = _run(benchmark, ours, values)
    assert manifest["as_of"] == ledger.head.seq
    if fmt in ("csv", "parquet"):
        rows = {name: f["rows"] for name, f in manifest["files"].items()}
        assert rows[f"metrics.{fmt}"] == values + 2 * runs
