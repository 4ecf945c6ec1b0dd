"""Drivers that store one event stream in the systems a user would pick instead of this
ledger, behind one small interface, so ``compare.py`` measures them side by side.

Every driver takes the same wire dicts (``gen.study_events``) and does its own
conversion inside the timed ``append`` (as ``Ledger.append`` validates them):

- ``open(folder)``      a fresh store (schema, migrations: not timed)
- ``append(events)``    one batch, committed durably before it returns
- ``close()``
- ``load()``            read everything back from a freshly opened store; returns the
                        number of metric values read
- ``latest()``          {(run, metric): value}: each run's value at its highest step
                        (a later value of the same step supersedes), from a fresh open

``values_per_event`` says how many of an event's 5 metric values the system stores
(Optuna keeps one objective per step). MLflow and Optuna are imported lazily, inside
their drivers, so this package imports with neither installed; ``available()`` names
what is.
"""

from __future__ import annotations

import importlib.util
import sqlite3

__all__ = ["available", "drivers", "durable_sqlite"]


def durable_sqlite(path: str) -> sqlite3.Connection:
    """How every SQLite baseline connects: autocommit off by hand, WAL, and
    ``synchronous=FULL`` (each commit durable, like the ledger's)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    return db


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def available() -> dict[str, bool]:
    """Which optional peers are installed (``pip install '.[peers]'``)."""
    return {
        "mlflow": _has("mlflow") and _has("sqlalchemy") and _has("alembic"),
        "optuna": _has("optuna"),
    }


def drivers(*, peers: bool = True) -> dict:
    """name -> driver class, the optional peers only when installed."""
    from .ours import LedgerDriver
    from .sqlite_events import SqliteEventLog, SqliteEventLogNoId
    from .sqlite_schema import SqliteSchema

    out: dict = {
        "ledger": LedgerDriver,
        "sqlite event log": SqliteEventLogNoId,
        "sqlite event log + unique id": SqliteEventLog,
        "sqlite runs/metrics": SqliteSchema,
    }
    have = available()
    if peers and have["mlflow"]:
        from .mlflow_driver import MlflowDriver

        out["mlflow log_batch"] = MlflowDriver
    if peers and have["optuna"]:
        from .optuna_driver import OptunaDriver

        out["optuna journal"] = OptunaDriver
    return out
