"""Analytics over a ledger, in-process and as a command (start-up included).

- ``grid``: a seeded study of 200 cases x 10 runs with final metrics (wns, area); the
  in-process benchmarks run the whole API call — load the study (no checkpoint), build
  the query's rows, compute: ``stats`` grouped by case (t intervals; and with a
  1,000-resample bootstrap per case) and ``compare --cases '*'`` (all 19,900 Welch
  pairs, Holm-corrected).
- ``curves``: the projections benchmark's ledger (``gen.study_events``: 100 runs x
  2,000 steps x 5 metrics, 1,000,000 values), curves of ``loss`` — per run best so far,
  plateau and convergence, and a mean curve per case — from a checkpoint at the head
  (what a user has after ``ledger checkpoint``) and cold (a full replay).
- ``command``: ``ledger stats``, ``ledger compare --cases '*'`` and ``ledger curves``
  with ``--json`` in a fresh process, as a user runs them.

Targets (issue 5): each under 0.5 s in-process and under 2 s as a command. No timing is
asserted. ``BENCH_SMOKE=1`` shrinks both ledgers (5 cases x 3 runs; 4 runs x 50 steps).

    .venv/bin/python -m pytest benchmarks/bench_analytics.py --benchmark-only \
        --benchmark-group-by=group -o addopts=""
    .venv/bin/python benchmarks/bench_analytics.py     # a plain table, no pytest
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
for p in (ROOT, HERE):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from conftest import SMOKE  # noqa: E402
from gen import as_structs, study_events  # noqa: E402

from ledger import Ledger  # noqa: E402
from projections.analytics import api  # noqa: E402
from projections.analytics.query import Query  # noqa: E402
from projections.builtins import write_checkpoints  # noqa: E402

CASES, RUNS = (5, 3) if SMOKE else (200, 10)
CURVE_RUNS, STEPS = (4, 50) if SMOKE else (100, 2_000)
ROUNDS = 1 if SMOKE else 5


def grid_events(cases: int = CASES, runs: int = RUNS, seed: int = 7) -> list[dict[str, Any]]:
    """A sizing sweep: case i has 10 runs of wns ~ N(mu_i, 5), area ~ N(100 + i, 2)."""
    rng = np.random.default_rng(seed)
    out: list[dict[str, Any]] = [
        {
            "type": "study_created",
            "study": "grid",
            "objectives": [{"metric": "wns", "direction": "max"}],
        }
    ]
    mu = rng.normal(-50, 20, cases)
    for i in range(cases):
        case = f"c{i:03d}"
        out.append(
            {
                "type": "case_created",
                "study": "grid",
                "case": case,
                "stage": i % 4,
                "params": {"util": 0.5 + 0.1 * (i % 5), "lib": "ab"[i % 2]},
            }
        )
        wns = rng.normal(mu[i], 5, runs)
        area = rng.normal(100 + i, 2, runs)
        for k in range(runs):
            run = f"{case}-r{k}"
            out.append(
                {"type": "run_started", "study": "grid", "case": case, "run": run, "seed": k}
            )
            out.append(
                {
                    "type": "metrics_recorded",
                    "study": "grid",
                    "run": run,
                    "values": {"wns": float(wns[k]), "area": float(area[k])},
                }
            )
            out.append({"type": "run_finished", "study": "grid", "run": run, "status": "completed"})
    return out


def _append(path: str, events: list[Any]) -> None:
    with Ledger(path) as led:
        for i in range(0, len(events), 10_000):
            led.append(events[i : i + 10_000])


def make_grid(folder: Path) -> str:
    path = str(folder / "grid.ledger")
    _append(path, as_structs(grid_events()))
    return path


def make_curves(folder: Path) -> tuple[str, str]:
    """The 1M-value ledger twice: as appended (cold), and with checkpoints at the head."""
    cold = str(folder / "curves-cold.ledger")
    _append(cold, as_structs(list(study_events("bench", runs=CURVE_RUNS, steps=STEPS))))
    warm = str(folder / "curves.ledger")
    shutil.copytree(cold, warm)
    with Ledger(warm) as led:
        write_checkpoints(led)
    return cold, warm


@pytest.fixture(scope="session")
def grid(tmp_path_factory) -> str:
    return make_grid(tmp_path_factory.mktemp("analytics"))


@pytest.fixture(scope="session")
def curves_ledgers(tmp_path_factory) -> tuple[str, str]:
    return make_curves(tmp_path_factory.mktemp("analytics-curves"))


# ------------------------------------------------------------------------- the calls


def stats_call(path: str, bootstrap: int = 0) -> Any:
    with Ledger(path) as led:
        return api.stats(Query(led).study("grid").metric("wns"), by="case", bootstrap=bootstrap)


def compare_call(path: str) -> Any:
    with Ledger(path) as led:
        return api.compare(Query(led).study("grid").metric("wns"), cases=["*"])


def curves_call(path: str) -> Any:
    with Ledger(path) as led:
        return api.curves(Query(led).study("bench").metric("loss"), window=100, min_delta=1e-3)


def command(path: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "--ledger", path, *args, "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


COMMANDS = {
    "stats": ("grid", ["stats", "--study", "grid", "--metric", "wns"]),
    "compare": ("grid", ["compare", "--study", "grid", "--metric", "wns", "--cases", "*"]),
    "curves": ("curves", ["curves", "--study", "bench", "--metric", "loss", "--window", "100"]),
}


# ------------------------------------------------------------------------- in-process


def test_stats_by_case(benchmark, grid):
    benchmark.group = "analytics in-process"
    res = benchmark.pedantic(stats_call, args=(grid,), rounds=ROUNDS, iterations=1)
    assert len(res.data["groups"]) == CASES
    assert all(g["count"] == RUNS for g in res.data["groups"])


def test_stats_by_case_bootstrap(benchmark, grid):
    benchmark.group = "analytics in-process"
    res = benchmark.pedantic(stats_call, args=(grid, 1000), rounds=ROUNDS, iterations=1)
    assert res.data["groups"][0]["boot_low"] is not None


def test_compare_all_pairs(benchmark, grid):
    benchmark.group = "analytics in-process"
    res = benchmark.pedantic(compare_call, args=(grid,), rounds=ROUNDS, iterations=1)
    assert len(res.data["pairs"]) == CASES * (CASES - 1) // 2


def test_curves_from_checkpoint(benchmark, curves_ledgers):
    benchmark.group = "analytics in-process"
    res = benchmark.pedantic(curves_call, args=(curves_ledgers[1],), rounds=ROUNDS, iterations=1)
    assert len(res.data["runs"]) == CURVE_RUNS


def test_curves_cold(benchmark, curves_ledgers):
    benchmark.group = "analytics in-process"
    res = benchmark.pedantic(curves_call, args=(curves_ledgers[0],), rounds=ROUNDS, iterations=1)
    assert len(res.data["runs"]) == CURVE_RUNS


# -------------------------------------------------------------------------- commands


@pytest.mark.parametrize("name", list(COMMANDS))
def test_command(benchmark, name, grid, curves_ledgers):
    benchmark.group = "analytics command (fresh process)"
    which, args = COMMANDS[name]
    path = grid if which == "grid" else curves_ledgers[1]
    res = benchmark.pedantic(command, args=(path, *args), rounds=ROUNDS, iterations=1)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["study"] in ("grid", "bench")


# ------------------------------------------------------------------------ plain table


def _best(fn: Callable[[], Any], rounds: int) -> tuple[float, float]:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def main() -> None:
    rounds = 3 if SMOKE else 5
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        grid_path = make_grid(folder)
        cold, warm = make_curves(folder)
        print(f"ledgers built in {time.perf_counter() - t0:.1f} s")
        rows = [
            ("stats by case (200x10)", lambda: stats_call(grid_path)),
            ("stats by case + bootstrap 1000", lambda: stats_call(grid_path, 1000)),
            ("compare --cases '*' (19,900 pairs)", lambda: compare_call(grid_path)),
            ("curves, from checkpoint", lambda: curves_call(warm)),
            ("curves, cold (full replay)", lambda: curves_call(cold)),
        ]
        for name, (which, args) in COMMANDS.items():
            path = grid_path if which == "grid" else warm
            rows.append((f"ledger {name} (fresh process)", lambda p=path, a=args: command(p, *a)))
        print(f"{'what':<40} {'best s':>8} {'median s':>9}")
        for name, fn in rows:
            best, med = _best(fn, rounds)
            print(f"{name:<40} {best:8.3f} {med:9.3f}")


if __name__ == "__main__":
    main()
