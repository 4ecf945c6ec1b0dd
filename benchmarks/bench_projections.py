"""Rebuilding every built-in projection, and `ledger rank`, over 1,000,000 metric values.

The ledger (100 runs x 2,000 steps x 5 metrics, in metrics events of 5 values, plus a
final result per run) is generated once per session with ``Ledger.append`` in batches of
10,000 events. Targets (issue 3): from scratch at least 1,000,000 metric values per
second; from a checkpoint 1% behind the head under 100 ms. ``read+decode only`` is the
floor the ledger core sets (reading and decoding every envelope, folding nothing), in
the same group so the projections' own share is visible. No timing is asserted.

BENCH_SMOKE=1 shrinks the ledger to 4 runs x 50 steps.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys

import pytest
from conftest import ROOT, SMOKE
from gen import as_structs, study_events

from ledger import Ledger
from projections.base import build_many
from projections.builtins import write_checkpoints
from projections.study import builtin_projections, load_study

RUNS, STEPS = (4, 50) if SMOKE else (100, 2_000)
VALUES = RUNS * STEPS * 5  # stepped metric values (finals come on top: 2 per run)


@pytest.fixture(scope="session")
def bench_ledger(tmp_path_factory):
    """The 1M-value ledger, with checkpoints written 1% behind the head."""
    path = str(tmp_path_factory.mktemp("proj") / "bench.ledger")
    events = as_structs(list(study_events("bench", runs=RUNS, steps=STEPS)))
    ledger = Ledger(path)
    for i in range(0, len(events), 10_000):
        ledger.append(events[i : i + 10_000])
    head = ledger.head.seq
    mark = head - max(1, head // 100)
    write_checkpoints(ledger, as_of=mark)
    yield ledger, head, mark
    ledger.close()


def _rate(benchmark, values: int) -> None:
    stats = getattr(benchmark, "stats", None)
    if stats is not None and stats.stats.min:
        benchmark.extra_info["values_per_s_best"] = round(values / stats.stats.min)


def test_read_decode_only(benchmark, bench_ledger):
    ledger, head, _ = bench_ledger
    benchmark.group = "rebuild every built-in projection"
    benchmark.extra_info.update(events=head, metric_values=VALUES)

    def run():
        was = gc.isenabled()
        gc.disable()
        try:
            return sum(len(b) for b in ledger.read_batches(0, head, chunk_blocks=16))
        finally:
            if was:
                gc.enable()

    assert benchmark.pedantic(run, rounds=1 if SMOKE else 5, iterations=1) == head
    _rate(benchmark, VALUES)


def test_rebuild_from_scratch(benchmark, bench_ledger):
    ledger, head, _ = bench_ledger
    benchmark.group = "rebuild every built-in projection"
    benchmark.extra_info.update(events=head, metric_values=VALUES)

    def run():
        return build_many(ledger, builtin_projections(), checkpoints=False)

    projections = benchmark.pedantic(run, rounds=1 if SMOKE else 5, iterations=1)
    assert projections[2].count() == VALUES + 2 * RUNS
    _rate(benchmark, VALUES)


def test_rebuild_from_checkpoint(benchmark, bench_ledger):
    ledger, head, mark = bench_ledger
    benchmark.group = "rebuild every built-in projection"
    benchmark.extra_info.update(events=head, checkpoint_seq=mark, replayed_events=head - mark)

    def run():
        return build_many(ledger, builtin_projections())

    projections = benchmark.pedantic(run, rounds=1 if SMOKE else 20, iterations=1)
    assert projections[2].count() == VALUES + 2 * RUNS


def test_rank_cli(benchmark, bench_ledger):
    """`ledger rank --json` as a user runs it: a fresh process (start-up and imports
    included) that restores the checkpoints, replays the last 1% and ranks."""
    ledger, head, _ = bench_ledger
    benchmark.group = "ledger rank"
    args = [
        sys.executable,
        "-m",
        "cli.main",
        "--ledger",
        ledger.path,
        "rank",
        "--study",
        "bench",
        "--json",
    ]

    def run():
        return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False)

    result = benchmark.pedantic(run, rounds=1 if SMOKE else 5, iterations=1)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["ranking"]


def test_rank_in_process(benchmark, bench_ledger):
    """The library call behind `ledger rank`: checkpoints, replay of the last 1%, rank."""
    ledger, head, _ = bench_ledger
    benchmark.group = "ledger rank"

    def run():
        return load_study(ledger, "bench").rank()

    ranking = benchmark.pedantic(run, rounds=1 if SMOKE else 10, iterations=1)
    assert len(ranking.rows) == max(1, RUNS // 2)


def test_rank_from_scratch(benchmark, bench_ledger):
    """The same ranking with no checkpoint: the whole study is folded first."""
    ledger, head, _ = bench_ledger
    benchmark.group = "ledger rank"

    def run():
        return load_study(ledger, "bench", checkpoints=False).rank()

    ranking = benchmark.pedantic(run, rounds=1 if SMOKE else 3, iterations=1)
    assert len(ranking.rows) == max(1, RUNS // 2)
