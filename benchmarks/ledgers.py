"""Seeded benchmark ledgers by size, built once per process and shared by the suites.

A size is a count of *stepped* metric values (every target refers to those); the ledger
holds ``gen.study_events``: runs of ``steps`` metrics events of 5 values each, plus a
final result (2 values) and a ``run_finished`` per run. Events are appended in batches
of 10,000 (a bulk load), converted to structs one batch at a time so that 10^7 values
never sit in memory as Python objects at once.

Sizes: ``BENCH_SMOKE=1`` → 1,000 values only; otherwise 100,000 and 1,000,000;
``BENCH_LARGE=1`` adds 10,000,000 to the scaling suite.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from conftest import SMOKE
from gen import study_events

from ledger import Ledger
from ledger.codec import event_from_obj

LARGE = os.environ.get("BENCH_LARGE") == "1"

# values -> (runs, steps): 5 values per stepped event.
SHAPES = {
    1_000: (4, 50),
    10_000: (10, 200),
    100_000: (20, 1_000),
    1_000_000: (100, 2_000),
    10_000_000: (500, 4_000),
}
SIZES = [1_000] if SMOKE else [100_000, 1_000_000]
SCALING = (
    [1_000, 10_000] if SMOKE else [10_000, 100_000, 1_000_000] + ([10_000_000] if LARGE else [])
)


def label(values: int) -> str:
    """10000 -> '10k', 1000000 -> '1M'."""
    for unit, name in ((1_000_000, "M"), (1_000, "k")):
        if values >= unit and values % unit == 0:
            return f"{values // unit}{name}"
    return str(values)


def events_for(values: int, study: str = "bench") -> Iterator[dict]:
    runs, steps = SHAPES[values]
    return study_events(study, runs=runs, steps=steps)


def event_count(values: int) -> int:
    """Events in the ledger of ``values``: study, cases, and per run a start, the
    stepped events, a final and a finish."""
    runs, steps = SHAPES[values]
    return 1 + max(1, runs // 2) + runs * (steps + 3)


def batches(events: Iterable[dict], size: int = 10_000) -> Iterator[list]:
    it = iter(events)
    while chunk := list(itertools.islice(it, size)):
        yield [event_from_obj(e) for e in chunk]


def fill(path: str | os.PathLike[str], values: int, study: str = "bench") -> int:
    """Append the ledger of ``values`` at ``path``; returns its head seq."""
    with Ledger(path) as ledger:
        for batch in batches(events_for(values, study)):
            ledger.append(batch)
        return ledger.head.seq


_built: dict[tuple[str, int, float | None], str] = {}


def ledger_for(root: Path, values: int, *, checkpoint_behind: float | None = 0.01) -> str:
    """The path of the ledger of ``values`` under ``root`` (built on first use), with
    checkpoints of every built-in projection ``checkpoint_behind`` of the head (a
    fraction; None: no checkpoint)."""
    key = (str(root), values, checkpoint_behind)
    if key in _built:
        return _built[key]
    path = root / f"bench-{label(values)}-{checkpoint_behind}.ledger"
    head = fill(path, values)
    if checkpoint_behind is not None:
        from projections.builtins import write_checkpoints

        with Ledger(path) as ledger:
            write_checkpoints(ledger, as_of=head - max(1, int(head * checkpoint_behind)))
    _built[key] = str(path)
    return str(path)


def sqlite_for(root: Path, values: int, *, dedupe: bool = True) -> str:
    """The same events in the SQLite event log baseline (``sqlite_baseline.SqliteLog``)."""
    from sqlite_baseline import SqliteLog

    key = (str(root) + "#sqlite", values, float(dedupe))
    if key in _built:
        return _built[key]
    path = root / f"bench-{label(values)}-{int(dedupe)}.sqlite"
    log = SqliteLog(str(path), dedupe=dedupe)
    try:
        for batch in batches(events_for(values)):
            log.append(batch)
    finally:
        log.close()
    _built[key] = str(path)
    return str(path)
