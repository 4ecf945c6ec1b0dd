"""Helpers for the integration tests: what a ledger holds, as plain data."""

from __future__ import annotations

from typing import Any

from ledger import Ledger


def in_force(path: str, study: str) -> dict[tuple[str, str, int | None], float]:
    """(run, metric, step) -> the value in force (the export's metrics table)."""
    from projections.sql import tables

    with Ledger(path, readonly=True) as led:
        rows = tables(led, study=study, only=["metrics"])["metrics"].to_pylist()
    return {(r["run"], r["metric"], r["step"]): r["value"] for r in rows}


def events(path: str, study: str | None = None) -> list[Any]:
    with Ledger(path, readonly=True) as led:
        return [e for e in led.read() if study is None or e.event.study == study]


def runs(path: str, study: str) -> list[dict[str, Any]]:
    from projections.sql import tables

    with Ledger(path, readonly=True) as led:
        return tables(led, study=study, only=["runs"])["runs"].to_pylist()
