"""An SQLite event log as a careful engineer writes it: WAL, ``synchronous=FULL``,
``executemany`` in one transaction per batch, msgpack bodies decoded back into the same
typed events as ours. With a unique content-hash id (BLAKE2b of the canonical msgpack,
``INSERT OR IGNORE``) it gives our dedupe guarantee; without it, it is the bare floor.
Without the id it has no secondary index at all (the bare floor); with it, also an
index by study (as ours reads a study). No rules are checked, no chain is kept. "Latest" folds the replayed events in Python,
the only way to answer it from an event log."""

from __future__ import annotations

import os
import sqlite3
from hashlib import blake2b
from pathlib import Path

import msgspec

from ledger.events import Event

from . import durable_sqlite

_enc = msgspec.msgpack.Encoder(order="deterministic")
_dec = msgspec.msgpack.Decoder(Event)


class SqliteEventLog:
    name = "sqlite event log + unique id"
    values_per_event = 5
    dedupe = True

    def open(self, folder: Path) -> None:
        self.path = os.fspath(folder / "events.sqlite")
        self.db = self._connect()
        unique = "UNIQUE" if self.dedupe else ""
        self.db.execute(
            f"CREATE TABLE events (seq INTEGER PRIMARY KEY, id BLOB {unique}, "
            "study TEXT NOT NULL, type TEXT NOT NULL, body BLOB NOT NULL)"
        )
        if self.dedupe:
            self.db.execute("CREATE INDEX events_by_study ON events(study, seq)")
        self.verb = "INSERT OR IGNORE" if self.dedupe else "INSERT"

    def _connect(self) -> sqlite3.Connection:
        return durable_sqlite(self.path)

    def append(self, events: list[dict]) -> None:
        encode = _enc.encode
        if self.dedupe:
            rows = []
            for ev in events:
                body = encode(ev)
                rows.append((blake2b(body, digest_size=16).digest(), ev["study"], ev["type"], body))
            sql = f"{self.verb} INTO events (id, study, type, body) VALUES (?, ?, ?, ?)"
        else:
            rows = [(ev["study"], ev["type"], encode(ev)) for ev in events]
            sql = "INSERT INTO events (study, type, body) VALUES (?, ?, ?)"
        self.db.execute("BEGIN")
        self.db.executemany(sql, rows)
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()

    def _replay(self) -> list:
        db = self._connect()
        try:
            decode = _dec.decode
            return [decode(b) for (b,) in db.execute("SELECT body FROM events ORDER BY seq")]
        finally:
            db.close()

    def load(self) -> int:
        return sum(len(ev.values) for ev in self._replay() if ev.TYPE == "metrics_recorded")

    def latest(self) -> dict[tuple[str, str], float]:
        best: dict[tuple[str, str], tuple[int, float]] = {}
        for ev in self._replay():
            if ev.TYPE != "metrics_recorded" or ev.step is None:
                continue
            step = ev.step
            for name, value in ev.values.items():
                key = (ev.run, name)
                old = best.get(key)
                if old is None or step >= old[0]:
                    best[key] = (step, value)
        return {k: float(v) for k, (_, v) in best.items()}


class SqliteEventLogNoId(SqliteEventLog):
    name = "sqlite event log"
    dedupe = False
