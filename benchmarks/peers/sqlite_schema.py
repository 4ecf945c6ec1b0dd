"""An SQLite runs/metrics schema as a careful engineer writes it: WAL,
``synchronous=FULL``, ``executemany`` in one transaction per batch, one row per metric
value with an index on (run, key, step, seq), runs keyed by (study, run). "Latest" is
one SQL query with a window function over that index (a later value of the same step
supersedes: ``seq`` is the insertion order)."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

from . import durable_sqlite

SCHEMA = """
CREATE TABLE studies (study TEXT PRIMARY KEY, body TEXT) WITHOUT ROWID;
CREATE TABLE cases (study TEXT NOT NULL, case_id TEXT NOT NULL, params TEXT,
                    PRIMARY KEY (study, case_id)) WITHOUT ROWID;
CREATE TABLE runs (run_pk INTEGER PRIMARY KEY, study TEXT NOT NULL, run TEXT NOT NULL,
                   case_id TEXT NOT NULL, status TEXT, UNIQUE (study, run));
CREATE TABLE metrics (seq INTEGER PRIMARY KEY, run_pk INTEGER NOT NULL, key TEXT NOT NULL,
                      step INTEGER, value REAL);
CREATE INDEX metrics_by_run ON metrics (run_pk, key, step, seq);
"""

LATEST = """
SELECT r.run, x.key, x.value FROM (
  SELECT run_pk, key, value,
         ROW_NUMBER() OVER (PARTITION BY run_pk, key ORDER BY step DESC, seq DESC) AS rn
  FROM metrics WHERE step IS NOT NULL
) AS x JOIN runs AS r USING (run_pk) WHERE x.rn = 1
"""


class SqliteSchema:
    name = "sqlite runs/metrics"
    values_per_event = 5

    def open(self, folder: Path) -> None:
        self.path = os.fspath(folder / "runs.sqlite")
        self.db = self._connect()
        self.db.executescript(SCHEMA)
        self.run_pk: dict[tuple[str, str], int] = {}

    def _connect(self) -> sqlite3.Connection:
        return durable_sqlite(self.path)

    def append(self, events: list[dict]) -> None:
        db = self.db
        rows = []
        db.execute("BEGIN")
        for ev in events:
            kind = ev["type"]
            if kind == "metrics_recorded":
                pk = self.run_pk[(ev["study"], ev["run"])]
                step = ev.get("step")
                rows.extend((pk, k, step, v) for k, v in ev["values"].items())
            elif kind == "run_started":
                cur = db.execute(
                    "INSERT INTO runs (study, run, case_id) VALUES (?, ?, ?)",
                    (ev["study"], ev["run"], ev["case"]),
                )
                self.run_pk[(ev["study"], ev["run"])] = cur.lastrowid
            elif kind == "run_finished":
                db.execute(
                    "UPDATE runs SET status = ? WHERE study = ? AND run = ?",
                    (ev["status"], ev["study"], ev["run"]),
                )
            elif kind == "case_created":
                db.execute(
                    "INSERT INTO cases VALUES (?, ?, ?)",
                    (ev["study"], ev["case"], json.dumps(ev.get("params"))),
                )
            elif kind == "study_created":
                db.execute("INSERT INTO studies VALUES (?, ?)", (ev["study"], json.dumps(ev)))
        db.executemany("INSERT INTO metrics (run_pk, key, step, value) VALUES (?, ?, ?, ?)", rows)
        db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()

    def load(self) -> int:
        db = self._connect()
        try:
            rows = db.execute(
                "SELECT r.run, m.key, m.step, m.value FROM metrics AS m "
                "JOIN runs AS r USING (run_pk) ORDER BY m.seq"
            ).fetchall()
            return len(rows)
        finally:
            db.close()

    def latest(self) -> dict[tuple[str, str], float]:
        db = self._connect()
        try:
            return {(run, key): value for run, key, value in db.execute(LATEST)}
        finally:
            db.close()
