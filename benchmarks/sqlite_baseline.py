"""What a careful engineer would build instead: an SQLite event log.

WAL with ``synchronous=FULL`` (durable commits, like ours), ``executemany`` in one
transaction per batch, and a unique index on a content-hash event id so that a re-sent
batch is deduplicated (``INSERT OR IGNORE``) — the same guarantee the ledger gives.
"""

from __future__ import annotations

from hashlib import blake2b

import msgspec
from peers import durable_sqlite

from ledger.events import Event

_enc = msgspec.msgpack.Encoder(order="deterministic")
_dec = msgspec.msgpack.Decoder(Event)


class SqliteLog:
    def __init__(self, path: str, *, dedupe: bool = True) -> None:
        self.db = durable_sqlite(path)
        idx = "UNIQUE" if dedupe else ""
        self.db.execute(
            f"CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, id BLOB {idx}, "
            "study TEXT, type TEXT, body BLOB)"
        )
        if dedupe:
            self.db.execute("CREATE INDEX IF NOT EXISTS by_study ON events(study, seq)")
        self.dedupe = dedupe

    def append(self, events: list) -> None:
        rows = []
        for ev in events:
            body = _enc.encode(ev)
            rows.append((blake2b(body, digest_size=16).digest(), ev.study, ev.TYPE, body))
        verb = "INSERT OR IGNORE" if self.dedupe else "INSERT"
        self.db.execute("BEGIN")
        self.db.executemany(f"{verb} INTO events (id, study, type, body) VALUES (?, ?, ?, ?)", rows)
        self.db.execute("COMMIT")

    def read(self) -> list:
        return [_dec.decode(b) for (b,) in self.db.execute("SELECT body FROM events ORDER BY seq")]

    def close(self) -> None:
        self.db.close()
