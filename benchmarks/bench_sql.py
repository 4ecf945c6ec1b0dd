"""``ledger sql`` over 10^6 metric values beside DuckDB reading the export's Parquet.

A seeded study of 200 runs x 1,000 steps x 5 metrics (1,000,000 stepped values plus
200 finals, 200,600 events appended run by run, as a runner would) is queried. Each
group puts, in one run:

- ``duckdb parquet``: DuckDB (default settings, a fresh connection) reading the
  study's exported ``metrics.parquet`` directly — the baseline (the export itself not
  timed);
- ``ledger sql``: ``projections.sql.query(ledger, sql, study=...)`` — the projections
  folded from the log, the export's metrics table built (values in force, export
  order), handed to a locked-down one-thread DuckDB as Arrow, rows sorted; from the
  second round on, the tables come from the process's table cache (the same head);
- ``ledger sql, no cache``: the same with ``cache=False``, every round folding the log
  (what a ``ledger sql`` command costs with ``--no-cache``);
- ``ledger sql, new process reading the disk cache``: the in-process cache cleared
  before every round, the disk cache (``projections.disk_cache``, in a temporary
  ``LEDGER_CACHE_DIR``) warmed once before: what each ``ledger sql`` command after the
  first at the same position costs, less the interpreter's start and imports;
- ``export + duckdb parquet``: what the same answer costs without ``ledger sql``:
  ``export_study(..., formats="parquet")`` then DuckDB on the file.

Queries: ``group-by`` (count and mean per metric over every value) and ``top-k`` (the
10 runs with the lowest final loss, joined with their runs' status). Target: ``ledger
sql`` within 1.5x of ``duckdb parquet``. ``BENCH_SMOKE=1``: 4 runs x 50 steps, one
round. No timing is asserted.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SMOKE

duckdb = pytest.importorskip("duckdb")

from ledger import Ledger  # noqa: E402
from projections.export.api import export_study  # noqa: E402
from projections.sql import TABLE_CACHE, query  # noqa: E402

RUNS, STEPS = (4, 50) if SMOKE else (200, 1000)
METRICS = ("loss", "acc", "lr", "grad_norm", "val_loss")
ROUNDS = 1 if SMOKE else 5
QUERIES = {
    "group-by": "SELECT metric, count(*) AS n, avg(value) AS mean FROM metrics GROUP BY metric",
    "top-k": (
        "SELECT m.run, r.status, m.value FROM metrics m JOIN runs r USING (study, run) "
        "WHERE m.metric = 'loss' AND m.step IS NULL ORDER BY m.value, m.run LIMIT 10"
    ),
}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """(ledger path, exported parquet folder)."""
    folder = tmp_path_factory.mktemp("sql")
    path = str(folder / "m.ledger")
    rng = np.random.default_rng(0)
    with Ledger(path) as led:
        led.append(
            [{"type": "study_created", "study": "s"}]
            + [{"type": "case_created", "study": "s", "case": f"c{c}"} for c in range(RUNS // 4)]
        )
        for r in range(RUNS):
            run = f"r{r}"
            values = rng.random((STEPS, len(METRICS))).tolist()
            batch = [{"type": "run_started", "study": "s", "case": f"c{r // 4}", "run": run}]
            batch += [
                {
                    "type": "metrics_recorded",
                    "study": "s",
                    "run": run,
                    "step": s,
                    "values": dict(zip(METRICS, v)),
                }  # fmt: skip
                for s, v in enumerate(values)
            ]
            batch.append({"type": "metrics_recorded", "study": "s", "run": run,
                          "values": {"loss": values[-1][0]}})  # fmt: skip
            batch.append({"type": "run_finished", "study": "s", "run": run, "status": "completed"})
            led.append(batch)
        export_study(led, "s", folder / "export", formats="parquet", journal=False)
    return path, folder / "export" / "s"


@pytest.fixture(scope="module", autouse=True)
def cache_dir(tmp_path_factory):
    """The disk cache in a temporary folder, never the user's ``~/.cache``."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LEDGER_CACHE_DIR", str(tmp_path_factory.mktemp("table-cache")))
        yield


def _parquet_sql(sql: str, folder) -> str:
    return sql.replace("FROM metrics", f"FROM read_parquet('{folder}/metrics.parquet')").replace(
        "JOIN runs", f"JOIN read_parquet('{folder}/runs.parquet')"
    )


@pytest.mark.parametrize(
    "how",
    [
        "duckdb parquet",
        "ledger sql",
        "ledger sql, new process reading the disk cache",
        "ledger sql, no cache",
        "export + duckdb parquet",
    ],
)
@pytest.mark.parametrize("name", sorted(QUERIES))
def test_sql(benchmark, study, tmp_path_factory, name, how):
    benchmark.group = f"sql {name} {RUNS * STEPS * len(METRICS):,} values"
    path, folder = study
    sql = QUERIES[name]
    with Ledger(path, readonly=True) as led:
        if how == "duckdb parquet":

            def run():
                con = duckdb.connect()
                try:
                    return con.sql(_parquet_sql(sql, folder)).fetchall()
                finally:
                    con.close()

        elif how.startswith("ledger sql"):
            cache = how != "ledger sql, no cache"
            new_process = "new process" in how
            if new_process:
                query(led, sql, study="s")  # the disk cache warm (a previous command)

            def run():
                if new_process:
                    TABLE_CACHE.clear()
                out = query(led, sql, study="s", cache=cache)
                return [tuple(r.values()) for r in out.to_pylist()]

        else:
            out = tmp_path_factory.mktemp("exp")

            def run():
                export_study(led, "s", out, formats="parquet", journal=False)
                con = duckdb.connect()
                try:
                    return con.sql(_parquet_sql(sql, out / "s")).fetchall()
                finally:
                    con.close()

        rows = benchmark.pedantic(run, rounds=ROUNDS, iterations=1, warmup_rounds=0)
    expected = len(METRICS) if name == "group-by" else min(10, RUNS)
    assert len(rows) == expected
    if how.startswith("ledger sql"):  # the same answer as DuckDB on the export
        con = duckdb.connect()
        assert sorted(rows) == sorted(con.sql(_parquet_sql(sql, folder)).fetchall())
        con.close()
    benchmark.extra_info["values"] = RUNS * STEPS * len(METRICS)
