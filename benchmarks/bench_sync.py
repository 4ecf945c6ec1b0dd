"""``ledger sync`` against what a user would do without it, in the same run.

Groups (``{size}``: 100k and 1M stepped metric values, 5 per event, i.e. about 20,000
and 200,000 events; ``BENCH_SMOKE=1``: 1k, one round):

- ``sync {size}``: copy a whole ledger into a fresh one, each as a fresh process as a
  user runs it: ``ledger sync SOURCE TARGET`` beside the plain replication pipe
  ``ledger --ledger SOURCE log --json | ledger --ledger TARGET append -`` (the target
  of the sync is >= 3x the pipe), and ``ledger.sync`` called in-process (what the
  command adds is start-up); and the same two commands into a fresh PostgreSQL ledger
  (a schema in a database of the tests' server, ``tests/pg.py``; skipped without one).
- ``sync follow latency``: one event appended to SOURCE, until it is visible in TARGET
  through a running ``ledger sync --follow`` at the default poll (target: median under
  1 s), beside the time until a running ``ledger log --follow`` prints it (the same
  poll: the floor for anything that polls).

No timing is asserted; every round checks what was copied.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time

import pytest
from conftest import ROOT, SMOKE
from ledgers import SIZES, event_count, label, ledger_for

import ledger
from ledger import Ledger

ROUNDS = 1 if SMOKE else 3
LATENCY_ROUNDS = 3 if SMOKE else 21
_count = itertools.count()
PY = sys.executable


@pytest.fixture(scope="module", params=SIZES, ids=[label(v) for v in SIZES])
def source(request, tmp_path_factory):
    root = tmp_path_factory.mktemp("sync-src")
    return request.param, ledger_for(root, request.param, checkpoint_behind=None)


def _fresh(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("sync-dst") / f"t{next(_count)}.ledger")


@pytest.fixture(scope="module")
def pg_database():
    """A database of its own on the tests' PostgreSQL server, dropped at the end."""
    sys.path.insert(0, str(ROOT))
    from tests import pg

    with pg.server() as found:
        if isinstance(found, str):
            pytest.skip(found)
        yield found


def _head(location: str) -> int:
    with Ledger.open(location, create=False, readonly=True) as led:
        return led.head.seq


def _cli_sync(src: str, dst: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PY, "-m", "cli.main", "sync", src, dst, "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def _pipe(src: str, dst: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        f"{PY} -m cli.main --ledger '{src}' log --json "
        f"| {PY} -m cli.main --ledger '{dst}' append - --json",
        shell=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


HOW = [
    "ledger sync",
    "log --json | append",
    "ledger.sync in-process",
    "ledger sync to PostgreSQL",
    "log --json | append to PostgreSQL",
]


@pytest.mark.parametrize("how", HOW)
def test_sync(benchmark, request, tmp_path_factory, source, how):
    values, src = source
    events = event_count(values)
    benchmark.group = f"sync {label(values)}"
    if "PostgreSQL" in how:
        from tests import pg

        database = request.getfixturevalue("pg_database")

        def fresh() -> str:
            return database.schema_url(f"bench_{pg.new_schema()}")
    else:

        def fresh() -> str:
            return _fresh(tmp_path_factory)

    if how.startswith("ledger sync"):
        res = benchmark.pedantic(
            _cli_sync, setup=lambda: ((src, fresh()), {}), rounds=ROUNDS, iterations=1
        )
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["appended"] == events
    elif how.startswith("log --json"):
        res = benchmark.pedantic(
            _pipe, setup=lambda: ((src, fresh()), {}), rounds=ROUNDS, iterations=1
        )
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["appended"] == events
    else:
        result = benchmark.pedantic(
            ledger.sync, setup=lambda: ((src, fresh()), {}), rounds=ROUNDS, iterations=1
        )
        assert result.appended == events
    stats = getattr(benchmark, "stats", None)
    if stats is not None and stats.stats.min:
        benchmark.extra_info["values_per_s"] = round(values / stats.stats.min)
        benchmark.extra_info["events_per_s"] = round(events / stats.stats.min)
    benchmark.extra_info.update(metric_values=values, events=events)


class _Follower:
    """A running ``ledger sync --follow`` (or ``ledger log --follow``) at the default
    poll, and a way to time one event from its append to where it shows."""

    def __init__(self, folder, how: str) -> None:
        self.source = str(folder / "node.ledger")
        self.target = str(folder / "shared.ledger")
        self.n = 0
        with Ledger(self.source) as led, Ledger(self.target):
            led.append([{"type": "study_created", "study": "follow"}])
        if how == "sync --follow":
            args = ["sync", self.source, self.target, "--follow"]
        else:
            args = ["--ledger", self.source, "log", "--follow", "--json"]
        self.proc = subprocess.Popen(
            [PY, "-m", "cli.main", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.how = how
        self.wait_visible(1)

    def wait_visible(self, seq: int) -> None:
        deadline = time.monotonic() + 60
        if self.how == "sync --follow":
            while _head(self.target) < seq:
                assert self.proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.002)
            return
        while True:  # log --follow prints one line per event
            line = self.proc.stdout.readline()
            assert line, "log --follow ended"
            if json.loads(line)["seq"] >= seq:
                return

    def one(self, led: Ledger) -> None:
        self.n += 1
        result = led.append([{"type": "case_created", "study": "follow", "case": f"c{self.n}"}])
        self.wait_visible(result.head_seq)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.communicate(timeout=30)


@pytest.mark.parametrize("how", ["sync --follow", "log --follow"])
def test_follow_latency(benchmark, tmp_path, how):
    benchmark.group = "sync follow latency"
    follower = _Follower(tmp_path, how)
    try:
        with Ledger(follower.source) as led:
            # A pause between rounds, so each append lands at a random point of the poll.
            benchmark.pedantic(
                follower.one,
                args=(led,),
                setup=lambda: time.sleep(0.05 + (next(_count) % 7) / 20),
                rounds=LATENCY_ROUNDS,
                iterations=1,
            )
    finally:
        follower.close()
