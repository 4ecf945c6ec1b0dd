"""R3 optimistic concurrency: 4 processes x 250 ``append(ev, expected_head=v)``."""

from __future__ import annotations

import subprocess
from collections import Counter

import pytest
from rel_common import script, size

from ledger import HeadMoved, Ledger

pytestmark = pytest.mark.slow


def test_expected_head_refuses_a_moved_head(fast_dir):
    with Ledger(f"{fast_dir}/r3.ledger") as ledger:
        ledger.append([{"type": "study_created", "study": "s"}], expected_head=0)
        with pytest.raises(HeadMoved) as info:
            ledger.append([{"type": "case_created", "study": "s", "case": "a"}], expected_head=0)
        assert str(info.value) == (
            "the head moved: expected head seq 0, the ledger is at 1; re-read the state and "
            "decide again"
        )
        assert ledger.head.seq == 1


def test_r3_one_winner_per_version(fast_dir):
    workers, per = 4, size(250, 2500)
    path = f"{fast_dir}/r3.ledger"
    with Ledger(path) as ledger:
        ledger.append([{"type": "study_created", "study": "s"}])
    outs = [f"{fast_dir}/r3-{w}.txt" for w in range(workers)]
    procs = [
        script(
            "rel_optimistic.py",
            path,
            w,
            per,
            outs[w],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        for w in range(workers)
    ]
    for p in procs:
        assert p.stdout.readline() == b"ready\n"
    for p in procs:
        p.stdin.write(b"go\n")
        p.stdin.close()
    assert [p.wait(timeout=300) for p in procs] == [0] * workers
    wins: Counter[int] = Counter()
    losses = 0
    for out in outs:
        for line in open(out).read().splitlines():
            kind, v, *_ = line.split()
            if kind == "win":
                wins[int(v)] += 1
            else:
                losses += 1
    n = workers * per
    assert sum(wins.values()) == n
    assert sorted(wins) == list(range(1, n + 1)), "a version had no winner"
    assert set(wins.values()) == {1}, "a version had two winners"
    with Ledger(path, create=False, readonly=True) as ledger:
        envs = list(ledger.read())[1:]
        assert ledger.head.seq == n + 1
        assert ledger.verify().ok
    # Never a silent overwrite: every event landed right after the head it was decided on.
    assert all(e.event.params["decided_at"] == e.seq - 1 for e in envs)
    assert len({e.id for e in envs}) == n
    print(f"R3: {n} conditional appends by {workers} processes, {losses} head-moved refusals")
