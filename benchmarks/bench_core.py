"""Append, read+decode and import time of the ledger core, each beside an SQLite event
log measured in the same run (pytest-benchmark groups put them side by side)."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest
from conftest import SMOKE
from gen import as_structs, study_events
from sqlite_baseline import SqliteLog

from ledger import Ledger

EVENTS = as_structs(list(study_events(runs=4 if SMOKE else 20, steps=50 if SMOKE else 1000)))
HEADER = [e for e in EVENTS if e.TYPE in ("study_created", "case_created", "run_started")]
METRICS = [e for e in EVENTS if e.TYPE == "metrics_recorded" and e.step is not None]
_counter = itertools.count()


def _fresh(tmp_path_factory):
    return str(tmp_path_factory.mktemp("b") / f"l{next(_counter)}")


@pytest.mark.parametrize("batch", [1, 100, 10_000])
@pytest.mark.parametrize("store", ["ledger", "sqlite"])
def test_append(benchmark, tmp_path_factory, store, batch):
    """Events per second through one append call per batch (durable commit each)."""
    n = {1: 20 if SMOKE else 200, 100: 200 if SMOKE else 10_000, 10_000: 200 if SMOKE else 20_000}[
        batch
    ]
    size = min(batch, n)
    chunks = [METRICS[i : i + size] for i in range(0, n, size)]
    benchmark.group = f"append batch={batch}"
    benchmark.extra_info.update(events=n, metric_values=5 * n)

    def setup():
        path = _fresh(tmp_path_factory)
        if store == "ledger":
            target = Ledger(path)
            target.append(HEADER)
        else:
            target = SqliteLog(path + ".sqlite")
            target.append(HEADER)
        return (target,), {}

    def run(target):
        for chunk in chunks:
            target.append(chunk)
        target.close()

    benchmark.pedantic(run, setup=setup, rounds=1 if SMOKE else 3, iterations=1)


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    path = _fresh(tmp_path_factory)
    with Ledger(path) as ledger:
        for i in range(0, len(EVENTS), 10_000):
            ledger.append(EVENTS[i : i + 10_000])
    log = SqliteLog(path + ".sqlite")
    for i in range(0, len(EVENTS), 10_000):
        log.append(EVENTS[i : i + 10_000])
    log.close()
    return path


@pytest.mark.parametrize("store", ["ledger", "sqlite"])
def test_read_decode(benchmark, filled, store):
    """Stream every event back as typed structs, in seq order."""
    benchmark.group = "read+decode"
    benchmark.extra_info.update(events=len(EVENTS))
    if store == "ledger":
        ledger = Ledger(filled, create=False)

        def run():
            return sum(len(b) for b in ledger.read_batches())
    else:
        log = SqliteLog(filled + ".sqlite")

        def run():
            return len(log.read())

    assert benchmark(run) == len(EVENTS)


@pytest.mark.parametrize("module", ["ledger", "sqlite3", "pass"])
def test_import_time(benchmark, module):
    """Start-up: `python -c 'import ledger'` beside importing sqlite3 and nothing."""
    benchmark.group = "import"
    code = "pass" if module == "pass" else f"import {module}"
    benchmark.pedantic(
        lambda: subprocess.run([sys.executable, "-c", code], check=True),
        rounds=1 if SMOKE else 10,
        iterations=1,
    )
