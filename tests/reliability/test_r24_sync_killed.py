"""R24 sync killed: ``ledger sync`` SIGKILLed at random moments while its source grows,
then a final sync. Pass: the target holds every source event once, in source order,
``verify`` is ok, and a further sync appends 0. The source's ids are the oracle.

Half the kills land at a random moment after the process starts (start-up, reading,
inside a commit); the other half a random moment after the target has visibly moved,
so some kills surely cut a sync that has copied part of what it had to copy.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time

import pytest
from rel_common import ROOT, size

from ledger import Ledger, LedgerNotFound
from ledger.integrity import verify_isolated
from ledger.replication import CURSORS, cursor_key, is_url, read_cursor

pytestmark = pytest.mark.slow

GROW = 4_000  # events the source gains before each attempt


def grow(path: str, round_: int, rng: random.Random) -> None:
    with Ledger(path) as led:
        events = [{"type": "study_created", "study": f"s{round_}"}]
        events += [
            {
                "type": "case_created",
                "study": f"s{round_}",
                "case": f"c{i}",
                "params": {"x": rng.random()},
            }
            for i in range(GROW - 1)
        ]
        for start in range(0, len(events), 500):  # several blocks, as runners write
            led.append(events[start : start + 500])


def head(path: str) -> int:
    try:
        with Ledger(path, create=False, readonly=True) as led:
            return led.head.seq
    except LedgerNotFound:  # not created yet
        return 0


def start_sync(source: str, target: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "sync", source, target, "--batch", "100"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.fixture(params=["lmdb", "postgresql"])
def target(request, tmp_path):
    """A folder, or a schema on the PostgreSQL server (a kill there cuts a transaction
    the server must roll back)."""
    if request.param == "lmdb":
        return str(tmp_path / "shared.ledger")
    from tests import pg

    return request.getfixturevalue("pg_server").schema_url(pg.new_schema())


def test_r24_sync_killed_at_random_moments_loses_and_duplicates_nothing(tmp_path, seed, target):
    rng = random.Random(seed)
    source = str(tmp_path / "node.ledger")
    # Into PostgreSQL each batch is a round trip to the server: fewer kills in CI.
    kills, cut = size(3 if is_url(target) else 6, 50), 0
    # A first sync, whole, says how long a sync of one growth takes on this machine.
    grow(source, 0, rng)
    began = time.monotonic()
    assert start_sync(source, target).wait() == 0
    span = time.monotonic() - began
    for n in range(1, kills + 1):
        grow(source, n, rng)
        before = head(target)
        proc = start_sync(source, target)
        if n % 2:
            deadline = time.monotonic() + 30
            while head(target) == before and proc.poll() is None:
                assert time.monotonic() < deadline
                time.sleep(0.005)
            time.sleep(rng.uniform(0, 0.05))
        else:
            time.sleep(rng.uniform(0, span))
        proc.kill()
        proc.wait()
        after = head(target)
        cut += before < after < head(source)
        print(f"kill {n}: target {before} -> {after} of {head(source)} (exit {proc.returncode})")
    assert cut >= 1, "no kill landed in the middle of a copy"

    final = subprocess.run(
        [sys.executable, "-m", "cli.main", "sync", source, target, "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert final.returncode == 0, final.stderr
    with Ledger(source, readonly=True) as src, Ledger(target, readonly=True) as dst:
        want = [e.id for e in src.read()]
        got = [e.id for e in dst.read()]
        assert got == want  # every event, once, in source order
        cursor = read_cursor(dst.aux_get(CURSORS, cursor_key(src.ledger_id, None)))
        assert cursor == (src.head.seq, src.head.hash)
    report = verify_isolated(target)
    assert report.ok, report.error
    again = subprocess.run(
        [sys.executable, "-m", "cli.main", "sync", source, target],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert again.stdout.startswith("appended 0 events: nothing new; "), again.stdout
