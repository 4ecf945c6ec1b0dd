"""R20: writer processes on several "hosts" killed with SIGKILL, on one PostgreSQL ledger.

The R1 battery against a real server: 4 writer processes (standing in for 4 hosts; each
writes its own study) append batches of 1-40 events to one PostgreSQL ledger and ack each
commit in an oracle file; the parent kills them with SIGKILL at random moments and
restarts them. The R1 checker then demands 0 acked events lost, 0 torn batches, 0
duplicate ids, seqs 1..n, the chain verifying, head == (n, H_n), one id entry per event
and every writer's batch numbers contiguous from 0.
"""

from __future__ import annotations

import pytest
from rel_common import size
from test_r01_crash_kill import kill_writers_and_check

pytestmark = pytest.mark.slow


def test_r20_pg_writers_killed(tmp_path, seed, pg_url):
    kills, writers = size(40, 2000), 4
    # Each writer is killed 100-600 ms after it says ready (R1: 0-100 ms): a round trip
    # to a server is slower than an LMDB commit, and each life must commit something.
    kill_writers_and_check(pg_url, tmp_path, seed, kills, writers, "R20", delay=(0.1, 0.6))
