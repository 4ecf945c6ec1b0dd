"""The PostgreSQL backend beside what a careful engineer would write with psycopg, on the
same server in the same run:

- append (batches of 4,096 and 10,000 events): ``Ledger.append`` — every rule, dedupe,
  the hash chain, blocks with metric columns, one transaction locking the head row —
  beside a plain ``COPY`` into an events table with a unique content-hash id (one
  transaction per batch; no rules, no chain) and, outside smoke runs, MLflow's
  ``log_batch`` on a PostgreSQL backend store;
- replay: every event back as typed structs (``read_batches``), and as frames
  (``read_frames``, what rebuilds read), beside a plain ``SELECT`` of the baseline's rows
  decoded with the same msgspec decoder;
- writers: aggregate append throughput of 1, 2, 4 and 8 writer processes on one ledger
  (the head lock serialises commits; preparation overlaps).

Needs a server (``tests/pg.py`` finds one as the tests do); skipped without one.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import time

import msgspec
import pytest
from conftest import SMOKE
from gen import as_structs, study_events

from ledger import Ledger
from ledger.events import InputEvent

try:  # the same type hashlib exports, without loading OpenSSL
    from _blake2 import blake2b
except ImportError:  # pragma: no cover
    from hashlib import blake2b

RUNS, STEPS = (2, 100) if SMOKE else (20, 5000)
EVENTS = as_structs(list(study_events(runs=RUNS, steps=STEPS)))
HEADER = [e for e in EVENTS if e.TYPE in ("study_created", "case_created", "run_started")]
METRICS = [e for e in EVENTS if e.TYPE == "metrics_recorded" and e.step is not None]
_schemas = itertools.count()
_encode = msgspec.msgpack.Encoder(order="deterministic").encode
_decode = msgspec.msgpack.Decoder(InputEvent)


@pytest.fixture(scope="module")
def server():
    psycopg = pytest.importorskip("psycopg")
    from tests import pg

    with pg.server() as found:
        if isinstance(found, str):
            pytest.skip(found)
        yield found, psycopg


def _url(server) -> str:
    found, _ = server
    return found.schema_url(f"b_{os.getpid()}_{next(_schemas)}")


class PlainPg:
    """A careful engineer's event log in PostgreSQL: COPY (binary) into a table with a
    unique content-hash id, one transaction per batch; a serial seq."""

    def __init__(self, psycopg, url: str) -> None:
        from ledger.store.location import parse_pg

        where = parse_pg(url)
        self.schema = f'"{where.schema}_plain"'
        self.conn = psycopg.connect(where.conninfo, autocommit=True)
        self.conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
        self.conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self.schema}.events (seq bigserial PRIMARY KEY, "
            "id bytea NOT NULL UNIQUE, body bytea NOT NULL)"
        )

    def append(self, events) -> None:
        rows = []
        for event in events:
            body = _encode(event)
            rows.append((blake2b(body, digest_size=16).digest(), body))
        with self.conn.transaction(), self.conn.cursor() as cur:
            with cur.copy(
                f"COPY {self.schema}.events (id, body) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(["bytea", "bytea"])
                for row in rows:
                    copy.write_row(row)

    def replay(self) -> int:
        n = 0
        with self.conn.cursor(binary=True) as cur:
            cur.execute(f"SELECT body FROM {self.schema}.events ORDER BY seq")
            while rows := cur.fetchmany(8192):
                n += len([_decode.decode(body) for (body,) in rows])
        return n

    def close(self) -> None:
        self.conn.close()


class MlflowPg:
    """MLflow's tracking store on the same PostgreSQL server (``log_batch``, at most
    1,000 metrics a call): what a user would pick instead."""

    def __init__(self, url: str, conninfo: str) -> None:
        import logging

        from mlflow import MlflowClient
        from mlflow.entities import Metric

        logging.getLogger("alembic").setLevel(logging.WARNING)
        self.Metric = Metric
        self.client = MlflowClient(conninfo.replace("postgresql://", "postgresql+psycopg://", 1))
        exp = self.client.create_experiment(f"bench-{os.getpid()}-{next(_schemas)}")
        self.run_id = self.client.create_run(exp).info.run_id

    def append(self, events) -> None:
        metrics = [
            self.Metric(key, float(value), 0, event.step)
            for event in events
            for key, value in event.values.items()
        ]
        for i in range(0, len(metrics), 1000):
            self.client.log_batch(self.run_id, metrics=metrics[i : i + 1000])


@pytest.mark.parametrize("batch", [4096, 10_000])
@pytest.mark.parametrize("store", ["ledger", "plain-copy", "mlflow"])
def test_pg_append(benchmark, server, store, batch):
    """Events per second appended to PostgreSQL, one transaction per batch."""
    found, psycopg = server
    n = min(len(METRICS), 2 * batch if SMOKE else 60_000)
    if store == "mlflow":
        if SMOKE:
            pytest.skip("MLflow's migrations on PostgreSQL take ~20 s: full runs only")
        pytest.importorskip("mlflow")
        pytest.importorskip("sqlalchemy")
        n = min(n, 5000)  # about 100x slower: a smaller stream, the same shape
    chunks = [METRICS[i : i + batch] for i in range(0, n, batch)]
    benchmark.group = f"pg append batch={batch}"
    benchmark.extra_info.update(events=n, metric_values=5 * n)

    def setup():
        url = _url(server)
        if store == "ledger":
            target = Ledger(url)
            target.append(HEADER)
        elif store == "plain-copy":
            target = PlainPg(psycopg, url)
        else:
            target = MlflowPg(url, found.database_url)
        return (target,), {}

    def run(target):
        for chunk in chunks:
            target.append(chunk)
        if hasattr(target, "close"):
            target.close()

    benchmark.pedantic(run, setup=setup, rounds=1 if SMOKE else 3, iterations=1)


@pytest.fixture(scope="module")
def filled(server):
    _, psycopg = server
    url = _url(server)
    plain = PlainPg(psycopg, url)
    with Ledger(url) as ledger:
        for i in range(0, len(EVENTS), 10_000):
            ledger.append(EVENTS[i : i + 10_000])
            plain.append(EVENTS[i : i + 10_000])
    return url, plain


@pytest.mark.parametrize(
    "how", ["ledger read_batches", "ledger read_frames", "plain select+decode"]
)
def test_pg_replay(benchmark, filled, how):
    """Every event back from the server, decoded."""
    url, plain = filled
    benchmark.group = "pg replay"
    benchmark.extra_info.update(events=len(EVENTS))
    if how == "plain select+decode":
        result = benchmark.pedantic(plain.replay, rounds=1 if SMOKE else 5, iterations=1)
        assert result == len(EVENTS)
        return
    ledger = Ledger(url, create=False, readonly=True)
    if how == "ledger read_batches":
        result = benchmark.pedantic(
            lambda: sum(len(b) for b in ledger.read_batches()),
            rounds=1 if SMOKE else 5,
            iterations=1,
        )
        assert result == len(EVENTS)
    else:
        benchmark.pedantic(
            lambda: sum(f.metrics.count for f in ledger.read_frames()),
            rounds=1 if SMOKE else 5,
            iterations=1,
        )
    ledger.close()


def _writer(url: str, writer: int, batches: int, size: int, go, done) -> None:
    with Ledger(url) as ledger:
        study = f"w{writer}"
        ledger.append(
            [
                {"type": "study_created", "study": study},
                {"type": "case_created", "study": study, "case": "c"},
                {"type": "run_started", "study": study, "case": "c", "run": "r"},
            ]
        )
        events = [
            msgspec.structs.replace(e, study=study, run="r") for e in METRICS[: batches * size]
        ]
        go.wait()
        start = time.perf_counter()
        for i in range(batches):
            ledger.append(events[i * size : (i + 1) * size])
        done.put((start, time.perf_counter()))


@pytest.mark.parametrize("writers", [1, 2, 4, 8])
def test_pg_writers(benchmark, server, writers):
    """Aggregate events per second with several writer processes on one ledger
    (batches of 1,000). Timed from the start signal to the last writer's report: the
    processes are spawned, connected and have prepared their events in the round's
    setup, so the figure is appending alone (compare rows: ``events`` grows with the
    writers, so equal times mean throughput scaling with them)."""
    if SMOKE and writers > 2:
        pytest.skip("smoke runs start 1 and 2 writers (8 spawned interpreters take seconds)")
    batches, size = (2, 100) if SMOKE else (20, 1000)
    benchmark.group = "pg writers (aggregate)"
    benchmark.extra_info.update(writers=writers, events=writers * batches * size)
    ctx = multiprocessing.get_context("spawn")

    def setup():
        url = _url(server)
        with Ledger(url):
            pass
        go, done = ctx.Event(), ctx.Queue()
        procs = [
            ctx.Process(target=_writer, args=(url, w, batches, size, go, done))
            for w in range(writers)
        ]
        for p in procs:
            p.start()
        time.sleep(0.5 if SMOKE else 3)  # every writer connected and prepared
        return (procs, go, done), {}

    def run(procs, go, done):
        go.set()
        spans = [done.get(timeout=300) for _ in procs]
        wall = max(end for _, end in spans) - min(start for start, _ in spans)
        benchmark.extra_info.setdefault("events_per_s", []).append(
            round(writers * batches * size / wall)
        )

    def teardown(procs, go, done):
        for p in procs:
            p.join()

    benchmark.pedantic(run, setup=setup, teardown=teardown, rounds=1 if SMOKE else 3, iterations=1)
