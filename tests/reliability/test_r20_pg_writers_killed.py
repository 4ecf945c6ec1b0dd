"""R20: writer processes on several "hosts" killed with SIGKILL, on one PostgreSQL ledger.

The R1 battery against a real server: 4 writer processes (standing in for 4 hosts; each
writes its own study) append batches of 1-40 events to one PostgreSQL ledger and ack each
commit in an oracle file; the parent kills them with SIGKILL at random moments and
restarts them. The R1 checker then demands 0 acked events lost, 0 torn batches, 0
duplicate ids, seqs 1..n, the chain verifying, head == (n, H_n), one id entry per event
and every writer's batch numbers contiguous from 0.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import pytest
from rel_common import size
from test_r01_crash_kill import _run_slot, check_crash_stream

pytestmark = pytest.mark.slow


def test_r20_pg_writers_killed(tmp_path, seed, pg_url):
    kills, writers = size(40, 2000), 4
    acks = {w: str(tmp_path / f"acks-{w}.txt") for w in range(writers)}
    errors: list[str] = []
    stats: dict[str, int] = defaultdict(int)
    per_slot = [kills // writers + (1 if w < kills % writers else 0) for w in range(writers)]
    started = time.monotonic()
    # Each writer is killed 100-600 ms after it says ready (R1: 0-100 ms): a round trip
    # to a server is slower than an LMDB commit, and each life must commit something.
    delay = (0.1, 0.6)
    threads = [
        threading.Thread(
            target=_run_slot, args=(pg_url, acks[w], w, seed, per_slot[w], errors, stats, delay)
        )
        for w in range(writers)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    for error in errors:
        print(error)
    assert not errors, errors
    assert stats["kills"] == kills
    figures = check_crash_stream(pg_url, acks, seed)
    print(
        f"R20: {stats['kills']} SIGKILLs among {writers} writers on PostgreSQL in {elapsed:.1f} s; "
        f"{figures['events']} events, {figures['acked_batches']} acked batches, "
        f"{figures['ack_lost_resent']} re-sent after a lost ack; 0 lost, 0 torn, 0 duplicates"
    )
    assert figures["acked_batches"] >= writers * 4, "writers made too little progress to test"
