"""PostgreSQL on both sides, on the same server: this ledger's PostgreSQL backend, and
the event log a careful engineer writes with psycopg — ``COPY`` (binary) into a table
with a unique content-hash id (BLAKE2b of the canonical msgpack, our dedupe guarantee),
one transaction per batch, a serial seq, no rules, no chain. Replay is a plain
``SELECT`` decoded with the same msgspec decoder as ours; "latest" folds the replayed
events in Python, as for the SQLite event log.

Each ``open`` makes a schema of its own in the database of ``url`` (``compare.py --pg
URL``) and ``close``/the end of the run drops nothing: run it against a scratch
database.
"""

from __future__ import annotations

import itertools
import os
from hashlib import blake2b
from pathlib import Path
from typing import Any

import msgspec

from ledger.events import Event

from .ours import LedgerDriver

_enc = msgspec.msgpack.Encoder(order="deterministic")
_dec = msgspec.msgpack.Decoder(Event)
_counter = itertools.count()


def _schema() -> str:
    return f"cmp_{os.getpid()}_{next(_counter)}"


def drivers(url: str) -> dict[str, type]:
    """The two PostgreSQL systems, bound to the server at ``url``."""

    class PgLedger(LedgerDriver):
        name = "ledger on postgresql"

        def open(self, folder: Path) -> None:
            sep = "&" if "?" in url else "?"
            self.path = f"{url}{sep}schema={_schema()}"
            from ledger import Ledger

            self.ledger = Ledger(self.path)

    class PgEventLog:
        name = "postgresql event log + unique id (COPY)"
        values_per_event = 5

        def open(self, folder: Path) -> None:
            import psycopg

            from ledger.store.location import parse_pg

            self.conninfo = parse_pg(url).conninfo
            self.schema = f'"{_schema()}"'
            self.db = psycopg.connect(self.conninfo, autocommit=True)
            self.db.execute(f"CREATE SCHEMA {self.schema}")
            self.db.execute(
                f"CREATE TABLE {self.schema}.events (seq bigserial PRIMARY KEY, "
                "id bytea NOT NULL UNIQUE, body bytea NOT NULL)"
            )

        def append(self, events: list[dict]) -> None:
            rows = []
            for ev in events:
                body = _enc.encode(ev)
                rows.append((blake2b(body, digest_size=16).digest(), body))
            with self.db.transaction(), self.db.cursor() as cur:
                copy_sql = f"COPY {self.schema}.events (id, body) FROM STDIN (FORMAT BINARY)"
                with cur.copy(copy_sql) as copy:
                    copy.set_types(["bytea", "bytea"])
                    for row in rows:
                        copy.write_row(row)

        def close(self) -> None:
            self.db.close()

        def _replay(self) -> list[Any]:
            import psycopg

            out: list[Any] = []
            with psycopg.connect(self.conninfo) as db, db.cursor(binary=True) as cur:
                cur.execute(f"SELECT body FROM {self.schema}.events ORDER BY seq")
                while rows := cur.fetchmany(8192):
                    out.extend(_dec.decode(body) for (body,) in rows)
            return out

        def load(self) -> int:
            return sum(len(ev.values) for ev in self._replay() if ev.TYPE == "metrics_recorded")

        def latest(self) -> dict[tuple[str, str], float]:
            best: dict[tuple[str, str], tuple[int, float]] = {}
            for ev in self._replay():
                if ev.TYPE != "metrics_recorded" or ev.step is None:
                    continue
                for key, value in ev.values.items():
                    k = (ev.run, key)
                    if k not in best or ev.step >= best[k][0]:
                        best[k] = (ev.step, float(value))
            return {k: v for k, (_, v) in best.items()}

    return {PgLedger.name: PgLedger, PgEventLog.name: PgEventLog}
