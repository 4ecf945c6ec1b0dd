"""How each operation's cost grows with the ledger, what the streaming paths hold in
memory, and how append throughput holds with several writer processes.

- ``scaling {op}``: the same operation at 10^4, 10^5 and 10^6 stepped metric values
  (10^7 too with ``BENCH_LARGE=1``; ``BENCH_SMOKE=1``: 10^3 and 10^4, one round) —
  ``append`` (batches of 10,000 events into a fresh ledger), ``read`` (``read_batches``),
  ``verify`` (the whole chain), ``rebuild`` (every built-in projection from scratch),
  ``rank`` (``load_study(checkpoints=False).rank()``), ``export csv`` (the study's
  tables). ``extra_info["ns_per_value"]`` should stay flat across sizes (linear cost).
- ``test_memory``: peak traced allocation (``tracemalloc``: Python objects and numpy
  buffers; the LMDB map is file-backed page cache and not counted) in a fresh process
  at each size, printed with ``-s``: ``read`` (``read_batches()`` with its default
  chunk of 64 blocks), the same one block a chunk, ``verify`` and ``rebuild``.
  Streaming paths should stay flat once the ledger outgrows one chunk; a rebuild holds
  the projections' columns, which grow with the values.
- ``writers {n}``: 1, 2 and 4 processes appending their own run's metrics events (batches
  of 1,000, durable commits) into one ledger at once; ``extra_info["events_per_s"]`` is
  the aggregate from "go" to the last writer's end.

``python benchmarks/bench_scaling.py [--json out.json]`` prints the same as one table.
No timing or memory is asserted.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (ROOT, HERE):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from conftest import SMOKE  # noqa: E402
from ledgers import SCALING, SHAPES, event_count, fill, label, ledger_for  # noqa: E402

from ledger import Ledger  # noqa: E402

ROUNDS = 1 if SMOKE else 3
OPS = ["append", "read", "verify", "rebuild", "rank", "export csv"]
WRITERS = [1, 2, 4]
WRITER_EVENTS = 200 if SMOKE else 20_000  # per writer
WRITER_BATCH = 1_000
_count = itertools.count()


def operation(op: str, path: str, values: int, scratch: Path):
    """A zero-argument call doing ``op`` on the ledger at ``path`` (``append`` writes a
    fresh ledger under ``scratch`` instead)."""
    if op == "append":

        def run():
            target = scratch / f"append-{next(_count)}"
            try:
                return fill(target, values)
            finally:
                shutil.rmtree(target, ignore_errors=True)

        return run
    if op == "read":

        def run():
            with Ledger(path, create=False, readonly=True) as ledger:
                return sum(len(b) for b in ledger.read_batches(chunk_blocks=16))

        return run
    if op == "verify":

        def run():
            with Ledger(path, create=False, readonly=True) as ledger:
                report = ledger.verify()
                assert report.ok, report.error
                return report.events

        return run
    if op == "rebuild":
        from projections.base import build_many
        from projections.study import builtin_projections

        def run():
            with Ledger(path, create=False, readonly=True) as ledger:
                return build_many(ledger, builtin_projections(), checkpoints=False)[2].count()

        return run
    if op == "rank":
        from projections.study import load_study

        def run():
            with Ledger(path, create=False, readonly=True) as ledger:
                return len(load_study(ledger, "bench", checkpoints=False).rank().rows)

        return run
    if op == "export csv":
        from projections.export.api import export_study

        def run():
            out = scratch / f"export-{next(_count)}"
            try:
                with Ledger(path, create=False, readonly=True) as ledger:
                    manifest = export_study(ledger, "bench", out, formats="csv", journal=False)
                return manifest["files"]["metrics.csv"]["rows"]
            finally:
                shutil.rmtree(out, ignore_errors=True)

        return run
    raise ValueError(op)


def expected(op: str, values: int) -> int:
    runs, _ = SHAPES[values]
    return {
        "append": event_count(values),
        "read": event_count(values),
        "verify": event_count(values),
        "rebuild": values + 2 * runs,
        "rank": max(1, runs // 2),
        "export csv": values + 2 * runs,
    }[op]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    path = tmp_path_factory.getbasetemp() / "bench-ledgers"
    path.mkdir(exist_ok=True)
    return path


@pytest.mark.parametrize("values", SCALING, ids=[label(v) for v in SCALING])
@pytest.mark.parametrize("op", OPS)
def test_scaling(benchmark, root, tmp_path, op, values):
    benchmark.group = f"scaling {op}"
    path = ledger_for(root, values, checkpoint_behind=None)
    got = benchmark.pedantic(operation(op, path, values, tmp_path), rounds=ROUNDS, iterations=1)
    assert got == expected(op, values)
    benchmark.extra_info["metric_values"] = values
    stats = getattr(benchmark, "stats", None)
    if stats is not None and stats.stats.min:
        benchmark.extra_info["ns_per_value"] = round(stats.stats.min / values * 1e9, 1)


# ----------------------------------------------------------------------------- memory

MEMORY = textwrap.dedent(
    """
    import sys, tracemalloc
    sys.path[:0] = [sys.argv[1], sys.argv[2]]
    from ledger import Ledger
    op, path = sys.argv[3], sys.argv[4]
    if op == "rebuild":
        from projections.base import build_many
        from projections.study import builtin_projections
    ledger = Ledger(path, create=False, readonly=True)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    if op == "read":
        n = sum(len(b) for b in ledger.read_batches())
    elif op == "read, 1 block a chunk":
        n = sum(len(b) for b in ledger.read_batches(chunk_blocks=1))
    elif op == "verify":
        n = ledger.verify().events
    else:
        n = build_many(ledger, builtin_projections(), checkpoints=False)[2].count()
    print(n, tracemalloc.get_traced_memory()[1] - base)
    """
)
MEMORY_OPS = ["read", "read, 1 block a chunk", "verify", "rebuild"]


def peak_memory(op: str, path: str) -> int:
    """Peak traced bytes of ``op`` in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", MEMORY, str(ROOT), str(HERE), op, path],
        capture_output=True,
        text=True,
        check=True,
        timeout=3600,
    )
    return int(done.stdout.split()[1])


def test_memory(benchmark, root):
    """Runs once (it measures memory, not time); the benchmark fixture only keeps it in
    ``make bench`` (``--benchmark-only`` skips tests without one)."""
    benchmark.group = "scaling memory"
    rows = []

    def measure():
        for values in SCALING:
            path = ledger_for(root, values, checkpoint_behind=None)
            rows.append((values, [peak_memory(op, path) for op in MEMORY_OPS]))

    benchmark.pedantic(measure, rounds=1, iterations=1)
    for values, peaks in rows:
        benchmark.extra_info[label(values)] = {op: p for op, p in zip(MEMORY_OPS, peaks)}
    print("\npeak traced memory, MiB (tracemalloc, fresh process):")
    print(f"  {'values':>12s} " + " ".join(f"{op:>22s}" for op in MEMORY_OPS))
    for values, peaks in rows:
        print(f"  {values:>12,d} " + " ".join(f"{p / 2**20:22.1f}" for p in peaks))
    assert all(p > 0 for _, peaks in rows for p in peaks)


# ---------------------------------------------------------------------------- writers


def run_writers(
    n: int, folder: Path, events: int = WRITER_EVENTS, batch: int = WRITER_BATCH
) -> float:
    """``n`` writer processes appending ``events`` each at once; returns the seconds from
    "go" to the last writer's end."""
    path = str(folder / f"writers-{n}-{next(_count)}")
    runs = [f"w{i}" for i in range(n)]
    with Ledger(path) as ledger:
        ledger.append(
            [
                {"type": "study_created", "study": "bench"},
                {"type": "case_created", "study": "bench", "case": "c"},
            ]
            + [{"type": "run_started", "study": "bench", "case": "c", "run": r} for r in runs]
        )
        head0 = ledger.head.seq
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(HERE / "scaling_writer.py"),
                path,
                "bench",
                r,
                str(events),
                str(batch),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for r in runs
    ]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready"
        go = time.time()
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        ends = []
        for p in procs:
            out, _ = p.communicate(timeout=3600)
            ends.append(float(out.split()[1]))
            assert p.returncode == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    with Ledger(path, create=False) as ledger:
        assert ledger.head.seq == head0 + n * events
    shutil.rmtree(path, ignore_errors=True)
    return max(ends) - go


@pytest.mark.parametrize("n", WRITERS)
def test_writers(benchmark, tmp_path, n):
    benchmark.group = "writers"
    seconds = []

    def run():
        seconds.append(run_writers(n, tmp_path))

    benchmark.pedantic(run, rounds=ROUNDS, iterations=1)
    best = min(seconds)
    benchmark.extra_info.update(
        writers=n,
        events=n * WRITER_EVENTS,
        events_per_s=round(n * WRITER_EVENTS / best),
        metric_values_per_s=round(5 * n * WRITER_EVENTS / best),
    )


# ------------------------------------------------------------------------ plain table


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(
        description="scaling table: cost per value by size, memory, writers"
    )
    ap.add_argument("--rounds", type=int, default=ROUNDS)
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="ledger-scaling-"))
    result: dict = {
        "sizes": SCALING,
        "load_average_before": list(os.getloadavg()),
        "ops": {},
        "memory": {},
    }
    try:
        for values in SCALING:
            path = ledger_for(work, values, checkpoint_behind=None)
            for op in OPS:
                fn = operation(op, path, values, work)
                best = float("inf")
                for _ in range(args.rounds):
                    t = time.perf_counter()
                    fn()
                    best = min(best, time.perf_counter() - t)
                result["ops"].setdefault(op, {})[values] = best
                print(
                    f"{op:10s} {values:>11,d} {best:9.3f} s {best / values * 1e9:8.1f} ns/value",
                    flush=True,
                )
            result["memory"][values] = {op: peak_memory(op, path) for op in MEMORY_OPS}
            print(f"memory     {values:>11,d} " + json.dumps(result["memory"][values]), flush=True)
        result["writers"] = {}
        for n in WRITERS:
            best = min(run_writers(n, work) for _ in range(args.rounds))
            result["writers"][n] = n * WRITER_EVENTS / best
            print(f"writers {n}: {n * WRITER_EVENTS / best:,.0f} events/s aggregate", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["load_average_after"] = list(os.getloadavg())
    print(render(result))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


def render(result: dict) -> str:
    sizes = result["sizes"]
    lines = [
        f"load average before {result['load_average_before']}, after {result['load_average_after']}",
        "",
        "ns per metric value (best round); growth = ns/value at the size ÷ ns/value at the smallest",
        "",
        "| operation | " + " | ".join(label(v) for v in sizes) + " | growth at the largest |",
        "| --- |" + " ---: |" * (len(sizes) + 1),
    ]
    for op, by in result["ops"].items():
        ns = [by[v] / v * 1e9 for v in sizes]
        lines.append(
            f"| {op} | " + " | ".join(f"{x:,.0f}" for x in ns) + f" | {ns[-1] / ns[0]:.2f}x |"
        )
    lines += [
        "",
        "peak traced memory, MiB",
        "",
        "| path | " + " | ".join(label(v) for v in sizes) + " |",
    ]
    lines.append("| --- |" + " ---: |" * len(sizes))
    for op in MEMORY_OPS:
        lines.append(
            f"| {op} | "
            + " | ".join(f"{result['memory'][v][op] / 2**20:,.1f}" for v in sizes)
            + " |"
        )
    if result.get("writers"):
        one = result["writers"][1]
        lines += [
            "",
            "| writer processes | events/s (aggregate) | × one writer |",
            "| ---: | ---: | ---: |",
        ]
        for n, rate in result["writers"].items():
            lines.append(f"| {n} | {rate:,.0f} | {rate / one:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
