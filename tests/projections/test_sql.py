"""projections.sql: read-only DuckDB over the export's tables and the events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("duckdb")

from ledger import Ledger  # noqa: E402
from projections.base import AsOfError, UnknownStudy  # noqa: E402
from projections.sql import SqlError, SqlRefused, query, result_json, tables  # noqa: E402

T0 = 1_700_000_000


def _events() -> list[dict]:
    ev: list[dict] = [
        {
            "type": "study_created",
            "study": "sweep",
            "objectives": [{"metric": "loss", "direction": "min"}],
            "ts": T0,
        }
    ]
    losses = {"a": [0.5, 0.7, 0.6, 0.9], "b": [0.3, 0.2, 0.4, 0.35], "c": [1.0, 1.5, 1.25, 2.0]}
    t = T0
    for case, values in losses.items():
        t += 1
        ev.append(
            {
                "type": "case_created",
                "study": "sweep",
                "case": case,
                "params": {"lr": {"a": 0.1, "b": 0.01, "c": 1}[case]},
                "ts": t,
            }
        )
        for i, v in enumerate(values):
            run = f"{case}-{i}"
            t += 1
            ev.append(
                {
                    "type": "run_started",
                    "study": "sweep",
                    "case": case,
                    "run": run,
                    "seed": i,
                    "ts": t,
                }
            )
            for step in range(3):
                ev.append(
                    {
                        "type": "metrics_recorded",
                        "study": "sweep",
                        "run": run,
                        "step": step,
                        "values": {"loss": v + 1 - step / 4},
                        "ts": t,
                    }
                )
            if run == "b-0":  # a correction: supersedes step 1's value
                ev.append(
                    {
                        "type": "metrics_recorded",
                        "study": "sweep",
                        "run": run,
                        "step": 1,
                        "values": {"loss": 9.0},
                        "ts": t,
                    }
                )
            ev.append(
                {
                    "type": "metrics_recorded",
                    "study": "sweep",
                    "run": run,
                    "values": {"loss": v, "acc": 1 - v},
                    "ts": t + 0.5,
                }
            )
            status = "failed" if (case, i) == ("c", 3) else "completed"
            ev.append(
                {
                    "type": "run_finished",
                    "study": "sweep",
                    "run": run,
                    "status": status,
                    "ts": t + 0.5,
                }
            )
    ev.append(
        {
            "type": "run_invalidated",
            "study": "sweep",
            "run": "a-3",
            "reason": "bad host",
            "ts": t + 1,
        }
    )
    return ev


@pytest.fixture(autouse=True)
def _no_tables_of_other_tests():
    """Each test starts with an empty table cache (a ledger of the same events in
    another test has the same chain hash, so it would serve that test's tables)."""
    from projections.sql import TABLE_CACHE

    TABLE_CACHE.clear()
    yield
    TABLE_CACHE.clear()


@pytest.fixture(scope="module")
def led(fast_base: str):
    """One ledger for the module's read-only tests (on tmpfs: they test queries)."""
    path = Path(fast_base) / f"sql-{id(_events)}.ledger"
    with Ledger(str(path)) as ledger:
        ledger.append(_events())
        yield ledger


@pytest.fixture
def own(tmp_path: Path):
    """A ledger of the test's own, for a test that appends."""
    with Ledger(str(tmp_path / "s.ledger")) as ledger:
        ledger.append(_events())
        yield ledger


def test_group_by_over_runs_equals_stats(led):
    """The same numbers as `ledger stats --by case`: completed, not invalidated runs,
    final values in force."""
    from projections.analytics import api
    from projections.analytics.query import Query

    got = query(
        led,
        "SELECT m.case, count(*) AS n, avg(value) AS mean, median(value) AS median, "
        "stddev_samp(value) AS std, min(value) AS lo, max(value) AS hi "
        "FROM metrics m JOIN runs r USING (study, run) "
        "WHERE m.metric = 'loss' AND m.step IS NULL AND r.status = 'completed' "
        "AND NOT r.invalidated GROUP BY m.case",
    ).to_pylist()
    stats = api.stats(Query(led).study("sweep").runs(status="completed").metric("loss"), by="case")
    want = json.loads(stats.to_json())["groups"]
    assert [g["case"] for g in got] == [g["group"] for g in want] == ["a", "b", "c"]
    for g, w in zip(got, want):
        assert g["n"] == w["count"]
        for key, wkey in [
            ("mean", "mean"),
            ("median", "median"),
            ("std", "std"),
            ("lo", "min"),
            ("hi", "max"),
        ]:
            assert g[key] == pytest.approx(w[wkey], rel=1e-12), (g["case"], key)
    assert got[0]["n"] == 3  # a-3 was invalidated
    assert got[2]["n"] == 3  # c-3 failed


def test_tables_are_the_exports_tables(led, tmp_path):
    import pyarrow.parquet as pq

    from projections.export.api import export_study

    export_study(led, "sweep", tmp_path / "out", formats="parquet", journal=False)
    ours = tables(led, study="sweep", only=["cases", "runs", "metrics"])
    for name, table in ours.items():
        exported = pq.read_table(tmp_path / "out" / "sweep" / f"{name}.parquet")
        assert table.column_names == exported.column_names, name
        assert table.to_pylist() == exported.to_pylist(), name


def test_values_in_force_and_as_of_gives_the_past(led):
    fix = query(
        led,
        "SELECT max(seq) AS s FROM events WHERE run = 'b-0' AND type = "
        "'metrics_recorded' AND seq < (SELECT min(seq) FROM events WHERE run = 'b-1')",
    )
    sql = "SELECT value, seq FROM metrics WHERE run = 'b-0' AND metric = 'loss' AND step = 1"
    correction = fix.to_pylist()[0]["s"] - 1  # the final value comes after it
    assert query(led, sql).to_pylist() == [{"value": 9.0, "seq": correction}]
    before = query(led, sql, as_of=correction - 1).to_pylist()
    assert before == [{"value": 1.05, "seq": correction - 2}]
    assert query(led, "SELECT count(*) AS n FROM events", as_of=10).to_pylist() == [{"n": 10}]
    first = query(led, "SELECT count(*) AS n FROM runs", as_of=4).to_pylist()
    assert first == [{"n": 1}]
    with pytest.raises(AsOfError):
        query(led, sql, as_of=led.head.seq + 5)


def test_events_table(led):
    rows = query(led, "SELECT * FROM events WHERE run = 'a-0' ORDER BY seq").to_pylist()
    assert [r["type"] for r in rows] == ["run_started"] + ["metrics_recorded"] * 4 + [
        "run_finished"
    ]
    assert {r["case"] for r in rows} == {"a"}  # a run's events carry its case
    assert all(len(r["id"]) == 32 for r in rows)
    assert rows[0]["ts"].timestamp() == T0 + 2
    kinds = query(led, "SELECT type, count(*) AS n FROM events GROUP BY type")
    assert kinds.column("type").to_pylist() == sorted(kinds.column("type").to_pylist())


def test_no_order_by_sorts_by_every_column_and_order_by_is_kept(led):
    plain = query(led, 'SELECT "case", run FROM runs WHERE seed < 2').to_pylist()
    assert plain == sorted(plain, key=lambda r: (r["case"], r["run"]))
    desc = query(led, "SELECT run FROM runs ORDER BY run DESC").column("run").to_pylist()
    assert desc == sorted(desc, reverse=True)


def test_same_query_same_bytes(led):
    sql = "SELECT metric, step, avg(value) AS v FROM metrics GROUP BY ALL"
    a, b = query(led, sql), query(led, sql)
    assert a.equals(b)
    assert result_json(a) == result_json(b)


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO runs VALUES (1)",
        "CREATE TABLE x AS SELECT 1",
        "UPDATE runs SET status = 'failed'",
        "DELETE FROM runs",
        "DROP TABLE runs",
        "ATTACH 'other.db' AS other",
        "COPY runs TO 'runs.csv'",
        "EXPORT DATABASE 'dump'",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "PRAGMA enable_profiling",
        "SELECT 1; SELECT 2",
    ],
)
def test_statements_that_are_not_one_select_are_refused(led, sql):
    with pytest.raises(SqlRefused) as info:
        query(led, sql)
    assert "ledger sql" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_csv('{p}')",
        "SELECT * FROM read_parquet('{p}')",
        "SELECT * FROM read_text('{p}')",
        "SELECT * FROM '{p}'",
        "SELECT * FROM glob('{d}/*')",
        "SELECT * FROM read_json_auto('{p}')",
    ],
)
def test_reading_files_is_refused(led, tmp_path, sql):
    target = tmp_path / "secret.csv"
    target.write_text("a,b\n1,2\n")
    with pytest.raises(SqlRefused) as info:
        query(led, sql.format(p=target, d=tmp_path))
    assert "cannot read or write files" in str(info.value)
    assert "\n" not in str(info.value)


def test_sql_errors_are_duckdbs_message_on_one_line(led):
    with pytest.raises(SqlError) as info:
        query(led, "SELECT nope FROM runs")
    text = str(info.value)
    assert text.startswith("Binder Error:") and "nope" in text and "\n" not in text
    with pytest.raises(SqlError, match="^Parser Error: syntax error"):
        query(led, "SELEC 1")


def test_study_filter_and_several_studies(own):
    led = own
    led.append(
        [
            {"type": "study_created", "study": "other", "ts": T0},
            {
                "type": "case_created",
                "study": "other",
                "case": "x",
                "params": {"lr": "high", "depth": 3},
                "ts": T0,
            },
        ]
    )
    cases = query(led, 'SELECT study, "case", "param.lr", "param.depth" FROM cases')
    assert cases.schema.field("param.lr").type == "string"  # float in one, text in the other
    assert cases.to_pylist()[0] == {
        "study": "other",
        "case": "x",
        "param.lr": "high",
        "param.depth": 3,
    }
    assert len(cases) == 4
    only = query(led, "SELECT DISTINCT study FROM cases", study="sweep").to_pylist()
    assert only == [{"study": "sweep"}]
    with pytest.raises(UnknownStudy):
        query(led, "SELECT 1", study="nope")


def test_an_empty_ledger_has_typed_empty_tables(tmp_path):
    with Ledger(str(tmp_path / "e.ledger")) as led:
        led.append([{"type": "study_created", "study": "s"}])
        out = query(led, "SELECT count(*) AS n FROM metrics, runs, cases")
        assert out.to_pylist() == [{"n": 0}]


def test_result_json_spells_times_decimals_and_nan(led):
    out = query(
        led,
        "SELECT min(started_ts) AS t, sum(seed) AS s, 'NaN'::DOUBLE AS x, [1, 2] AS l FROM runs",
    )
    doc = result_json(out)
    assert doc["columns"] == ["t", "s", "x", "l"]
    t, s, x, lst = doc["rows"][0]
    assert t == "2023-11-14T22:13:22.000000Z" and s == 18 and x != x and lst == [1, 2]


def _with_second_study(led: Ledger) -> None:
    """Another study whose metric events interleave with sweep's, so one read of the
    log holds both studies' times in the same frames."""
    evs: list[dict] = [
        {"type": "study_created", "study": "other", "ts": T0},
        {"type": "case_created", "study": "other", "case": "x", "ts": T0},
        {"type": "run_started", "study": "other", "case": "x", "run": "x-0", "ts": T0},
        {"type": "run_started", "study": "sweep", "case": "a", "run": "a-9", "ts": T0 + 99},
    ]
    for step in range(3):
        evs.append(
            {
                "type": "metrics_recorded",
                "study": "other",
                "run": "x-0",
                "step": step,
                "values": {"loss": float(step)},
                "ts": T0 + 100 + step,
            }
        )
        evs.append(
            {
                "type": "metrics_recorded",
                "study": "sweep",
                "run": "a-9",
                "step": step,
                "values": {"loss": float(step)},
                "ts": T0 + 200 + step,
            }
        )
    led.append(evs)


@pytest.mark.parametrize("study", [None, "sweep", "other"])
def test_metrics_alone_is_the_metrics_built_with_the_others(own, study):
    """``metrics`` without ``cases`` or ``runs`` skips their records, not a column."""
    _with_second_study(own)
    alone = tables(own, study=study, only=["metrics"])["metrics"]
    full = tables(own, study=study)["metrics"]
    assert alone.equals(full) and alone.schema.equals(full.schema)
    assert alone.column("ts").null_count == 0


@pytest.mark.parametrize("study", [None, "sweep"])
def test_the_times_are_the_logs_after_a_checkpoint(own, study):
    """The times come from the read that folds the projections; a checkpoint moves where
    the folding starts, never which times are read (every value's, from seq 0)."""
    from projections.builtins import write_checkpoints
    from projections.export.tables import collect, ledger_event_times, metrics_table
    from projections.study import load_study

    write_checkpoints(own)
    _with_second_study(own)
    head = own.head.seq
    got = tables(own, study=study, only=["metrics"])["metrics"]
    want = [
        metrics_table(
            collect(
                load_study(own, s, head, checkpoints=False),
                event_times=lambda s=s: ledger_event_times(own, s, head),
            )
        )
        for s in ([study] if study else ["other", "sweep"])
    ]
    import pyarrow as pa

    assert got.to_pylist() == pa.concat_tables(want).to_pylist()


def test_the_tables_read_the_log_once(own, monkeypatch):
    """Projections, metric times and all: one read of the frames, none of envelopes
    unless ``events`` is queried."""
    reads: list[str] = []
    for name in ("read_frames", "read_batches", "read"):
        method = getattr(own, name)
        monkeypatch.setattr(
            own, name, lambda *a, _m=method, _n=name, **k: (reads.append(_n), _m(*a, **k))[1]
        )
    query(own, "SELECT m.run, r.status FROM metrics m JOIN runs r USING (run)", study="sweep")
    assert reads == ["read_frames"]
    reads.clear()
    query(own, "SELECT count(*) FROM cases, events")
    assert sorted(reads) == ["read_batches", "read_frames"]


def test_event_times_by_table_or_by_search_agree():
    """A study dense in the log takes its times from a table indexed by seq, a sparse
    one by binary search: the same times, and a seq with no event is an error."""
    import numpy as np

    from projections.base import ProjectionError
    from projections.export.tables import _times_of

    for gap in (1, 1_000_000):
        event_seqs = np.arange(1, 5001, dtype=np.int64) * gap
        event_ts = event_seqs * 7 + 3
        seq = event_seqs[np.random.default_rng(0).integers(0, 5000, 20_000)]
        assert (_times_of(seq, event_seqs, event_ts) == seq * 7 + 3).all()
        for bad in (seq[0] + 1 if gap > 1 else 6000, 0):
            with pytest.raises(ProjectionError, match="missing"):
                _times_of(np.append(seq, bad), event_seqs, event_ts)


def count_reads(led: Ledger, monkeypatch) -> list[str]:
    """The names of the log reads made on ``led`` from now on (also used by the
    disk cache's tests)."""
    reads: list[str] = []
    for name in ("read_frames", "read_batches"):
        method = getattr(led, name)
        monkeypatch.setattr(
            led, name, lambda *a, _m=method, _n=name, **k: (reads.append(_n), _m(*a, **k))[1]
        )
    return reads


def test_a_second_query_at_the_same_position_reads_no_log(own, monkeypatch):
    from projections.sql import TABLE_CACHE

    sql = "SELECT m.run, m.step, m.value, e.seq FROM metrics m JOIN events e USING (seq)"
    first = query(own, sql)
    reads = count_reads(own, monkeypatch)
    assert query(own, sql).equals(first)
    assert reads == [] and len(TABLE_CACHE) == 2
    assert query(own, sql, cache=False).equals(first)
    assert sorted(reads) == ["read_batches", "read_frames"]


def test_the_cache_never_serves_another_log_prefix(own, tmp_path):
    """Keyed by the chain hash at the position: an append moves the head (new tables),
    the old position still serves the old prefix, and another ledger of as many events
    but other values gets its own."""
    sql = "SELECT sum(value) AS s, count(*) AS n FROM metrics"
    before = own.head.seq
    was = query(own, sql).to_pylist()
    _with_second_study(own)
    now = query(own, sql).to_pylist()
    assert now != was and now == query(own, sql, cache=False).to_pylist()
    assert query(own, sql, as_of=before).to_pylist() == was
    events = _events()
    for ev in events:
        if ev["type"] == "metrics_recorded":
            ev["values"] = {k: v + 1 for k, v in ev["values"].items()}
    with Ledger(str(tmp_path / "other.ledger")) as other:
        other.append(events)
        assert other.head.seq == before
        got = query(other, sql).to_pylist()
    assert got != was and got[0]["n"] == was[0]["n"]


def test_a_log_that_moved_under_the_build_is_not_kept(own, monkeypatch):
    from projections.sql import TABLE_CACHE

    hashes = iter(["a" * 64, "b" * 64])
    monkeypatch.setattr(own, "hash_at", lambda seq: next(hashes))
    query(own, "SELECT count(*) FROM runs")
    assert len(TABLE_CACHE) == 0


def test_the_table_cache_is_bounded_least_recently_used_out():
    import pyarrow as pa

    from projections.table_cache import TableCache

    def table(n: int) -> pa.Table:
        return pa.table({"x": pa.array(range(n), pa.int64())})  # 8 bytes a row

    cache = TableCache(max_bytes=800)
    cache.put("k1", {"a": table(40), "b": table(40)})
    assert cache.bytes == 640 and set(cache.get("k1", ["a", "b", "c"])) == {"a", "b"}
    cache.get("k1", ["a"])  # a is now the most recently used
    cache.put("k2", {"a": table(40)})
    assert cache.get("k1", ["a", "b"]).keys() == {"a"} and cache.bytes == 640
    cache.put("k3", {"big": table(101)})  # over the whole budget: not kept, none evicted
    assert cache.get("k3", ["big"]) == {} and len(cache) == 2
    cache.clear()
    assert len(cache) == 0 and cache.bytes == 0
