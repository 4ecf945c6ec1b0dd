"""Start-up as a user sees it: fresh interpreters, wall clock, beside bare Python.

A user pays interpreter start-up, ``site`` (every ``.pth`` file of the venv, an editable
install's finder included) and our imports on every ``ledger`` command and every
``import ledger`` in a runner, so each case here is a new subprocess timed from spawn to
exit. Every round runs each case once, round-robin, so load drift hits them alike; the
table reports the minimum (the least-disturbed run) and the median, and each case beside
``python -c pass`` measured in the same run (ratio and the milliseconds on top of it).

Targets (issue 7): ``import ledger`` under 100 ms, ``ledger --help`` under 300 ms.

- ``python -S -c pass``: the interpreter without ``site`` (the floor nothing can beat).
- ``python -c pass``: the baseline; includes ``site`` and so the editable finder.
- ``import msgspec, lmdb``: our runtime dependencies' own import cost.
- ``import ledger``, ``from ledger import Recorder`` (what a runner actually needs:
  the public classes load their modules on first use) and ``ledger --help``: ours.

``BENCH_SMOKE=1`` runs two rounds. Run either way:

    .venv/bin/python -m pytest benchmarks/bench_startup.py --benchmark-only \
        --benchmark-group-by=group -o addopts=""
    .venv/bin/python benchmarks/bench_startup.py [--rounds 30] [--json out.json]
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SMOKE = os.environ.get("BENCH_SMOKE") == "1"
BASELINE = "python -c pass"


def _ledger_exe(py: str) -> str:
    """The console script next to the interpreter: what a user types."""
    exe = Path(py).with_name("ledger")
    return str(exe) if exe.exists() else shutil.which("ledger") or ""


def cases(py: str = sys.executable) -> dict[str, list[str]]:
    exe = _ledger_exe(py)
    entry = "import sys; sys.argv[0] = 'ledger'; from cli.main import main; main()"
    return {
        "python -S -c pass": [py, "-S", "-c", "pass"],
        BASELINE: [py, "-c", "pass"],
        "import msgspec, lmdb": [py, "-c", "import msgspec, lmdb"],
        "import ledger": [py, "-c", "import ledger"],
        "from ledger import Recorder": [py, "-c", "from ledger import Recorder"],
        "ledger --help": [exe, "--help"] if exe else [py, "-c", entry, "--help"],
    }


def _env(cwd: str, py: str = sys.executable) -> dict[str, str]:
    """No inherited PYTHON* settings (PYTHONPROFILEIMPORTTIME would distort every case);
    the project's root on PYTHONPATH only when it is not installed, so an installed
    project is found the way a user's process finds it (through ``site``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    probe = [py, "-c", "import ledger"]
    if subprocess.run(probe, cwd=cwd, env=env, capture_output=True).returncode != 0:
        env["PYTHONPATH"] = str(ROOT)
    return env


def run_once(argv: list[str], cwd: str, env: dict[str, str]) -> float:
    """Seconds from spawn to exit of one fresh process; raises if it fails."""
    t0 = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def measure(rounds: int, py: str = sys.executable) -> dict[str, list[float]]:
    """Wall-clock seconds per case, one list per case, rounds interleaved. The processes
    run in an empty folder (a user's, not the checkout, which would be on sys.path)."""
    todo = cases(py)
    times: dict[str, list[float]] = {name: [] for name in todo}
    with tempfile.TemporaryDirectory() as cwd:
        env = _env(cwd, py)
        for argv in todo.values():  # warm the page cache and write any stale .pyc once
            run_once(argv, cwd, env)
        for _ in range(rounds):
            for name, argv in todo.items():
                times[name].append(run_once(argv, cwd, env))
    return times


def summarise(times: dict[str, list[float]]) -> list[dict[str, float | str]]:
    base = min(times[BASELINE])
    rows = []
    for name, ts in times.items():
        best = min(ts)
        rows.append(
            {
                "case": name,
                "min_ms": round(best * 1e3, 1),
                "median_ms": round(statistics.median(ts) * 1e3, 1),
                "x_python": round(best / base, 2),
                "over_python_ms": round((best - base) * 1e3, 1),
                "rounds": len(ts),
            }
        )
    return rows


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def render(rows: list[dict[str, float | str]]) -> str:
    head = f"{'case':<30}{'min ms':>9}{'median':>9}{'x python':>10}{'+ms':>8}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['case']:<30}{r['min_ms']:>9.1f}{r['median_ms']:>9.1f}"
            f"{r['x_python']:>10.2f}{r['over_python_ms']:>8.1f}"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------- pytest-benchmark


@pytest.mark.parametrize("case", list(cases()))
def test_startup(benchmark, case, tmp_path):
    """One fresh process per round (pytest-benchmark groups them side by side)."""
    benchmark.group = "startup"
    argv, cwd = cases()[case], str(tmp_path)
    env = _env(cwd)
    run_once(argv, cwd, env)  # warm-up outside the timing
    benchmark.pedantic(lambda: run_once(argv, cwd, env), rounds=1 if SMOKE else 20, iterations=1)


def test_startup_table(benchmark):
    """The interleaved table, every case beside bare Python in the same run; the
    benchmark fixture keeps it in ``make bench`` (``--benchmark-only``)."""
    benchmark.group = "startup table (interleaved)"
    times = benchmark.pedantic(measure, args=(2 if SMOKE else 10,), rounds=1, iterations=1)
    rows = summarise(times)
    by_case = {r["case"]: r for r in rows}
    assert set(by_case) == set(cases())
    assert by_case[BASELINE]["x_python"] == 1.0
    assert all(r["min_ms"] > 0 for r in rows)
    benchmark.extra_info.update({r["case"]: r["min_ms"] for r in rows}, load=_load())
    print("\n" + render(rows))


# ---------------------------------------------------------------- plain table


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=2 if SMOKE else 30)
    ap.add_argument("--json", help="also write the rows (and the load) to this file")
    ap.add_argument(
        "--python",
        default=sys.executable,
        help="the interpreter to measure, e.g. a venv made with `pip install .` only "
        "(its `ledger` script is taken from the same folder)",
    )
    args = ap.parse_args(argv)
    load_before = _load()
    rows = summarise(measure(args.rounds, args.python))
    load_after = _load()
    print(render(rows))
    print(
        f"\n{args.rounds} rounds, interleaved; {args.python}; "
        f"load avg before {load_before}, after {load_after}"
    )
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(
            json.dumps(
                {
                    "rows": rows,
                    "rounds": args.rounds,
                    "python": args.python,
                    "load": [load_before, load_after],
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
