"""``ledger append FILE`` on a JSON Lines file, as a user runs it: a fresh process,
interpreter start-up and imports included, into a fresh ledger each round.

Groups (``{size}``: 100k and 1M stepped metric values, 5 per event, i.e. about 20,000
and 200,000 lines; ``BENCH_SMOKE=1``: 1k, one round):

- ``cli append {size}``: ``ledger append FILE --json`` (one atomic batch: every rule,
  dedupe, the chain) and the same file appended again (every line a duplicate) —
  beside the careful engineer's script run the same way (``json.loads`` per line, then
  the SQLite event log with a unique content-hash id: WAL, ``synchronous=FULL``,
  ``executemany``, one transaction), the same call in-process
  (``Ledger.append_jsonl``: what the command adds is start-up and rendering), and
  ``python -c pass`` (the interpreter's own start-up).

No timing is asserted; every round checks what was appended.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap

import pytest
from conftest import ROOT, SMOKE
from ledgers import SIZES, event_count, events_for, label

from ledger import Ledger

ROUNDS = 1 if SMOKE else 3
_count = itertools.count()

SQLITE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    sys.path[:0] = [sys.argv[3], sys.argv[4]]
    from pathlib import Path
    from peers.sqlite_events import SqliteEventLog
    with open(sys.argv[1], "rb") as fh:
        events = [json.loads(line) for line in fh]
    log = SqliteEventLog()
    log.open(Path(sys.argv[2]))
    log.append(events)
    log.close()
    print(len(events))
    """
)


@pytest.fixture(scope="module", params=SIZES, ids=[label(v) for v in SIZES])
def jsonl(request, tmp_path_factory):
    values = request.param
    path = tmp_path_factory.mktemp("jsonl") / f"events-{label(values)}.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for ev in events_for(values):
            fh.write(json.dumps(ev, separators=(",", ":")))
            fh.write("\n")
    return values, str(path)


def _cli(ledger_path: str, source: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "--ledger", ledger_path, "append", source, "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def _rates(benchmark, values: int, events: int) -> None:
    stats = getattr(benchmark, "stats", None)
    if stats is not None and stats.stats.min:
        benchmark.extra_info["values_per_s"] = round(values / stats.stats.min)
        benchmark.extra_info["events_per_s"] = round(events / stats.stats.min)
    benchmark.extra_info.update(metric_values=values, events=events)


@pytest.mark.parametrize(
    "how", ["ledger append", "re-append", "sqlite script", "in-process", "python -c pass"]
)
def test_cli_append(benchmark, tmp_path_factory, jsonl, how):
    values, source = jsonl
    events = event_count(values)
    benchmark.group = f"cli append {label(values)}"

    def fresh() -> str:
        return str(tmp_path_factory.mktemp("cli") / f"l{next(_count)}")

    if how == "ledger append":
        res = benchmark.pedantic(
            _cli, setup=lambda: ((fresh(), source), {}), rounds=ROUNDS, iterations=1
        )
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["appended"] == events
    elif how == "re-append":
        path = fresh()
        first = _cli(path, source)
        assert first.returncode == 0, first.stderr
        res = benchmark.pedantic(_cli, args=(path, source), rounds=ROUNDS, iterations=1)
        assert res.returncode == 0, res.stderr
        out = json.loads(res.stdout)
        assert (out["appended"], out["duplicates"]) == (0, events)
    elif how == "sqlite script":

        def run(folder: str) -> subprocess.CompletedProcess:
            os.makedirs(folder)
            return subprocess.run(
                [
                    sys.executable,
                    "-c",
                    SQLITE_SCRIPT,
                    source,
                    folder,
                    str(ROOT),
                    str(ROOT / "benchmarks"),
                ],
                capture_output=True,
                text=True,
                check=False,
            )

        res = benchmark.pedantic(run, setup=lambda: ((fresh(),), {}), rounds=ROUNDS, iterations=1)
        assert res.returncode == 0, res.stderr
        assert int(res.stdout) == events
    elif how == "in-process":

        def run(path: str) -> int:
            with open(source, "rb") as fh:
                lines = fh.read().splitlines()
            with Ledger(path) as ledger:
                return ledger.append_jsonl(lines, source=source).appended

        assert (
            benchmark.pedantic(run, setup=lambda: ((fresh(),), {}), rounds=ROUNDS, iterations=1)
            == events
        )
    else:
        res = benchmark.pedantic(
            subprocess.run, args=([sys.executable, "-c", "pass"],), rounds=ROUNDS, iterations=1
        )
        assert res.returncode == 0
        return
    _rates(benchmark, values, events)
