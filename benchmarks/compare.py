"""This ledger beside what a user would pick instead, measured in one run.

    python benchmarks/compare.py [--size N] [--peer-size M] [--rounds R] [--json out.json]

The same seeded event stream (``gen.study_events``: runs of metrics events carrying 5
values each, plus a final result and a finish per run) goes into every system through
one driver interface (``benchmarks/peers``), as wire dicts each system converts itself:

- ``ledger``: ``Ledger.append`` in batches of 10,000 events (every rule, dedupe, the hash
  chain, one durable commit per batch); replay is ``read_batches`` (every event decoded
  to an envelope), and (``ledger, replay as columns``) ``read_frames`` (the metrics
  events as the columns each block stores, the rest decoded: what a rebuild reads);
  "latest value per run and metric" folds the metrics projection from scratch, and
  (``ledger, from a checkpoint``) restores a checkpoint written at the head.
- ``sqlite event log`` (no id, no index: the floor) and ``sqlite event log + unique id``
  (a unique content-hash id and ``INSERT OR IGNORE``: our dedupe guarantee): WAL,
  ``synchronous=FULL``, ``executemany``, one transaction per batch; latest = replay and
  fold in Python.
- ``sqlite runs/metrics``: a row per value, indexed; latest is one windowed SQL query.
- ``mlflow log_batch`` on SQLite and ``optuna journal`` (``JournalFileBackend``) when
  installed (``pip install '.[peers]'``). They are slow, so they run at ``--peer-size``
  values (default 20,000), and their ratios are against this ledger measured at that
  same size in the same run. Optuna stores one value (the objective) per step: its
  rates count the values it stored.

With ``--pg URL`` (a scratch database on a PostgreSQL server), two more systems run on
that server: ``ledger on postgresql`` (this ledger's PostgreSQL backend) and
``postgresql event log + unique id (COPY)`` (psycopg's binary COPY into a table with a
unique content-hash id, one transaction per batch); the latter's ratios are against
``ledger on postgresql`` (PostgreSQL against PostgreSQL).

Each round runs every system once, round-robin (so a load spike hits all of them); the
best round counts. Throughputs are metric values per second (wall clock: durable
commits wait for the disk); ratios are ours ÷ theirs (higher is better for us). The
machine (``nproc``, CPU model, load average before and after) is printed with the table
and written with it as JSON.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (ROOT, HERE):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from gen import study_events  # noqa: E402
from peers import available, drivers  # noqa: E402

BATCH = 10_000
SLOW = ("mlflow log_batch", "optuna journal")
PG_OURS = "ledger on postgresql"
PG_PLAIN = "postgresql event log + unique id (COPY)"
OURS = ("ledger", PG_OURS)


def shape(values: int) -> tuple[int, int]:
    """(runs, steps) for about ``values`` stepped metric values (5 per event)."""
    steps = 2000 if values >= 1_000_000 else 1000 if values >= 100_000 else 200
    return max(1, values // (5 * steps)), steps


def stream(values: int) -> list[dict]:
    runs, steps = shape(values)
    return list(study_events("bench", runs=runs, steps=steps))


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
    }


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("results-ledger", "msgspec", "lmdb", "numpy", "mlflow-skinny", "optuna"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds, result) with the cyclic GC off, as ``build`` runs."""
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    try:
        w, c = time.perf_counter(), time.process_time()
        result = fn()
        return time.perf_counter() - w, time.process_time() - c, result
    finally:
        if was:
            gc.enable()


class Cell:
    """The best (lowest wall time) of several rounds of one operation."""

    def __init__(self) -> None:
        self.wall = float("inf")
        self.cpu = float("inf")

    def add(self, wall: float, cpu: float) -> None:
        if wall < self.wall:
            self.wall, self.cpu = wall, cpu


def run_system(name: str, cls: type, values: int, workdir: Path, cells: dict, check: dict) -> None:
    """One round of one system: append, replay, latest (and, for ours, latest from a
    checkpoint at the head), each into ``cells[(name, values, op)]``."""
    driver = cls()
    folder = Path(tempfile.mkdtemp(prefix="cmp-", dir=workdir))
    try:
        events = stream(values)
        batches = [events[i : i + BATCH] for i in range(0, len(events), BATCH)]
        del events
        driver.open(folder)

        def append() -> None:
            for batch in batches:
                driver.append(batch)

        wall, cpu, _ = timed(append)
        driver.close()
        batches.clear()
        cells.setdefault((name, values, "append"), Cell()).add(wall, cpu)
        wall, cpu, count = timed(driver.load)
        cells.setdefault((name, values, "replay"), Cell()).add(wall, cpu)
        wall, cpu, latest = timed(driver.latest)
        cells.setdefault((name, values, "latest"), Cell()).add(wall, cpu)
        check[(name, values)] = (count, latest)
        if name in OURS:
            wall, cpu, again = timed(driver.load_columns)
            cells.setdefault((name, values, "replay (columns)"), Cell()).add(wall, cpu)
            assert again == count, "the columns hold other values than the events"
            driver.checkpoint()
            wall, cpu, again = timed(lambda: driver.latest(checkpoint=True))
            cells.setdefault((name, values, "latest (checkpoint)"), Cell()).add(wall, cpu)
            assert again == latest, "checkpointed latest differs from the fold from scratch"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def agree(check: dict, systems: dict, values: int, name: str) -> str:
    """Every system's latest values must be ours (for the metrics it stores)."""
    ours = check.get(("ledger", values))
    got = check.get((name, values))
    if ours is None or got is None:
        return "n/a"
    _, mine = ours
    count, theirs = got
    want = {k: v for k, v in mine.items() if k in theirs}
    if len(want) != len(theirs) or any(
        abs(theirs[k] - v) > 1e-9 * max(1.0, abs(v)) for k, v in want.items()
    ):
        return "DIFFERS"
    return "ok"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=1_000_000, help="metric values (default 1,000,000)")
    ap.add_argument(
        "--peer-size",
        type=int,
        default=20_000,
        help="values for MLflow and Optuna (default 20,000)",
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--peer-rounds", type=int, default=2)
    ap.add_argument("--no-peers", action="store_true", help="skip MLflow and Optuna")
    ap.add_argument(
        "--skip", action="append", default=[], help="skip a system by name (repeatable)"
    )
    ap.add_argument("--json", dest="json_out", help="write the table here as JSON")
    ap.add_argument("--workdir", help="where the stores are written (default: a temp dir)")
    ap.add_argument(
        "--pg",
        metavar="URL",
        help="also measure PostgreSQL on this server (a scratch database: each round makes a schema)",
    )
    args = ap.parse_args(argv)

    systems = {k: v for k, v in drivers(peers=not args.no_peers).items() if k not in args.skip}
    if args.pg:
        from peers.postgres import drivers as pg_drivers

        systems.update({k: v for k, v in pg_drivers(args.pg).items() if k not in args.skip})
    peer_size = min(args.size, args.peer_size)
    plan: list[tuple[str, int]] = []  # (system, values)
    for name in systems:
        plan.append((name, peer_size if name in SLOW else args.size))
    if any(name in SLOW for name in systems) and peer_size != args.size:
        plan.insert(1, ("ledger", peer_size))

    # Imports are start-up, not the operations measured: load them before the clock.
    import projections.base  # noqa: F401
    import projections.checkpoints  # noqa: F401
    import projections.metrics  # noqa: F401

    load_before = load_average()
    started = _dt.datetime.now(_dt.timezone.utc)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="ledger-compare-"))
    work.mkdir(parents=True, exist_ok=True)
    cells: dict[tuple[str, int, str], Cell] = {}
    check: dict = {}
    try:
        for r in range(max(args.rounds, args.peer_rounds)):
            for name, values in plan:
                if r >= (args.peer_rounds if name in SLOW else args.rounds):
                    continue
                print(
                    f"round {r + 1}: {name} at {values:,} values ...", file=sys.stderr, flush=True
                )
                run_system(name, systems[name], values, work, cells, check)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    load_after = load_average()

    rows = []
    for name, values in plan:
        cls = systems[name]
        stored = values * cls.values_per_event // 5
        row: dict[str, Any] = {"system": name, "values": stored, "stream_values": values}
        for op in ("append", "replay", "latest", "latest (checkpoint)"):
            cell = cells.get((name, values, op))
            if cell is None:
                continue
            ours = cells[(PG_OURS if name == PG_PLAIN else "ledger", values, op)]
            rate = stored / cell.wall
            ours_rate = values / ours.wall
            key = op.replace(" (checkpoint)", "_checkpoint")
            row[f"{key}_s"] = round(cell.wall, 6)
            row[f"{key}_cpu_s"] = round(cell.cpu, 6)
            row[f"{key}_values_per_s"] = round(rate)
            row[f"{key}_ratio"] = round(ours_rate / rate, 2)
        cell = cells.get((name, values, "replay (columns)"))
        base_name = PG_PLAIN if name == PG_OURS else "sqlite event log"
        base = cells.get((base_name, values, "replay"))
        if cell is not None:
            row["replay_columns_s"] = round(cell.wall, 6)
            row["replay_columns_values_per_s"] = round(stored / cell.wall)
            if base is not None:
                row["replay_columns_ratio"] = round(base.wall / cell.wall, 2)
        row["latest_agrees"] = agree(check, systems, values, name) if name != "ledger" else "-"
        rows.append(row)

    info = {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python benchmarks/compare.py "
        + " ".join(_masked(argv if argv is not None else sys.argv[1:])),
        "machine": machine(),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "versions": versions(),
        "installed_peers": available(),
        "size": args.size,
        "peer_size": peer_size,
        "rounds": args.rounds,
        "peer_rounds": args.peer_rounds,
        "batch_events": BATCH,
        "rows": rows,
        "notes": [
            "throughput = metric values per second, wall clock, best round; ratio = ours / theirs at the same size",
            f"MLflow and Optuna run at {peer_size:,} values (they are slow); their ratios are against the ledger at {peer_size:,}",
            "Optuna stores one value (the objective, loss) per step: its counts are the values it stored",
            "replay as columns = the metrics events as the columns each block stores (the rest decoded), as a rebuild reads them; its ratio is against the sqlite event log's replay",
            "latest = each run's value of each metric at its highest step, read from a freshly opened store (time; its ratio is per value stored)",
        ]
        + (
            [
                f"{PG_PLAIN}: ratios against {PG_OURS} on the same server; {PG_OURS}: ratios against the LMDB ledger (above 1: LMDB faster)"
            ]
            if args.pg
            else []
        ),
    }
    print(render(info))
    if args.json_out:
        out = Path(args.json_out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(info, indent=2) + "\n")
    return 0


def _masked(args: list[str]) -> list[str]:
    """The command line as printed: a PostgreSQL URL's password masked."""
    from ledger.store.location import mask

    return [mask(a) for a in args]


def _fmt_rate(v: float | None) -> str:
    if v is None:
        return "-"
    if v >= 1e6:
        return f"{v / 1e6:.2f} M/s"
    if v >= 1e3:
        return f"{v / 1e3:.1f} k/s"
    return f"{v:.0f} /s"


def _fmt_ms(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s * 1e3:,.0f} ms" if s >= 0.01 else f"{s * 1e3:.1f} ms"


def render(info: dict) -> str:
    """The table as Markdown (it goes into the README as printed)."""
    m = info["machine"]
    lines = [
        f"{info['date']} · {m['nproc']} CPUs · {m['cpu']} · Python {m['python']} · SQLite {m['sqlite']}",
        f"load average before {info['load_average_before']}, after {info['load_average_after']}",
        f"`{info['command']}`",
        "",
        "| system | values | append | × | replay | × | latest | × |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in info["rows"]:
        cells = [row["system"], f"{row['values']:,}"]
        for op in ("append", "replay", "latest"):
            ratio = row.get(f"{op}_ratio")
            if op == "latest":
                cells.append(_fmt_ms(row.get("latest_s")))
            else:
                cells.append(_fmt_rate(row.get(f"{op}_values_per_s")))
            cells.append("-" if ratio is None else f"{ratio:g}")
        lines.append("| " + " | ".join(cells) + " |")
        if "replay_columns_s" in row:
            ratio = row.get("replay_columns_ratio")
            lines.append(
                f"| {row['system']}, replay as columns | {row['values']:,} | | | "
                f"{_fmt_rate(row['replay_columns_values_per_s'])} | "
                f"{'-' if ratio is None else f'{ratio:g}'} | | |"
            )
        if "latest_checkpoint_s" in row:
            lines.append(
                f"| {row['system']}, latest from a checkpoint | {row['values']:,} | | | | | "
                f"{_fmt_ms(row['latest_checkpoint_s'])} | |"
            )
    lines.append("")
    lines += [f"- {n}" for n in info["notes"]]
    bad = [r["system"] for r in info["rows"] if r.get("latest_agrees") == "DIFFERS"]
    if bad:
        lines.append(f"- WARNING: latest values differ from the ledger's for {', '.join(bad)}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
