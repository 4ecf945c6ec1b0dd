"""R1 crash-kill (release blocker) and R2 ack-lost retry, as docs/reliability.md specifies.

Writers (separate processes) append batches of 1-40 events and ack each commit in an
oracle file; the parent kills them with SIGKILL at random points 0-100 ms after they are
up, restarts them, and at the end lets each one resume for a few more batches. The
checker then demands: no acked event lost, no torn batch, no duplicate id, seqs 1..n,
the chain verifies, head == (n, H_n), the id index holds n entries, and every writer's
batch numbers are contiguous from 0 (so resuming continued where it stopped).
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import threading
import time
from collections import defaultdict

import msgspec
import pytest
from rel_common import SOAK, make_batch, read_acks, script, size

from ledger import Ledger
from ledger.integrity import verify_isolated

pytestmark = pytest.mark.slow

_ID = re.compile(r"^w(\d+)-b(\d+)-e(\d+)$")


def _standby(path, acks, writer, seed):
    with open(f"{acks}.stderr", "ab") as err:  # what a writer that fails says
        return script(
            "rel_writer.py",
            path,
            acks,
            writer,
            seed,
            -1,
            0.2,
            "--standby",
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
        )


def _said(acks):
    try:
        with open(f"{acks}.stderr", "rb") as fh:
            return fh.read().decode(errors="replace")[-2000:]
    except FileNotFoundError:
        return ""


def _run_slot(path, acks, writer, seed, kills, errors, stats, delay=(0.0, 0.1)):
    """Kill the slot's writer ``kills`` times, ``delay`` seconds (0-100 ms) after each
    (re)start; a standby writer (already started, waiting for "go") takes over at once
    after each kill."""
    rng = random.Random(f"{seed}:kill:{writer}")
    standby = _standby(path, acks, writer, seed)
    for _ in range(kills):
        proc, standby = standby, _standby(path, acks, writer, seed)
        proc.stdin.write(b"go -1\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        if line != b"ready\n":
            proc.wait()
            errors.append(f"writer {writer} did not start ({proc.returncode}): {_said(acks)}")
            break
        time.sleep(rng.uniform(*delay))
        proc.kill()
        proc.wait()
        proc.stdin.close()
        proc.stdout.close()
        if proc.returncode != -9:
            errors.append(f"writer {writer} exited with {proc.returncode}: {_said(acks)}")
            break
        stats["kills"] += 1
    standby.stdin.write(b"go 3\n")  # the final resume: three more batches, then exit
    standby.stdin.close()
    if standby.wait(timeout=120) != 0:
        errors.append(f"writer {writer}: final resume exited {standby.returncode}: {_said(acks)}")
    standby.stdout.close()


def check_crash_stream(path: str, ack_files: dict[int, str], seed: int) -> dict[str, int]:
    """The R1/R2 checker: raises AssertionError on any lost, torn or duplicated event."""
    return check_crash_stream_with_extra(path, ack_files, seed, extra=0)


def check_crash_stream_with_extra(
    path: str, ack_files: dict[int, str], seed: int, *, extra: int
) -> dict[str, int]:
    """The checker, for a ledger that also holds ``extra`` events of no writer (first
    and last)."""
    report = verify_isolated(path)
    assert report.ok, report.error
    with Ledger(path, create=False, readonly=True) as ledger:
        everything = list(ledger.read(with_hashes=True))
        head = ledger.head
        n = len(everything)
        assert [e.seq for e in everything] == list(range(1, n + 1)), "seq not contiguous"
        assert head.seq == n and report.head_seq == n
        assert head.hash == everything[-1].hash.hex() == ledger.hash_at(n) == report.head_hash
        assert ledger.storage_info()["ids"] == n, "id index and log disagree"
    envs = [e for e in everything if _ID.match(e.id)]
    assert len(envs) == n - extra
    ids = [e.id for e in everything]
    assert len(set(ids)) == n, f"{n - len(set(ids))} duplicate event ids"
    present: dict[tuple[int, int], list] = defaultdict(list)
    for env in envs:
        m = _ID.match(env.id)
        assert m, f"unexpected id {env.id!r}"
        w, b, i = map(int, m.groups())
        present[(w, b)].append((i, env))
    torn = lost = acked_batches = acked_events = ack_lost = 0
    for w, acks in ack_files.items():
        lines = read_acks(acks)
        batches = sorted(b for (ww, b) in present if ww == w)
        assert batches == list(range(len(batches))), f"writer {w}: batch numbers have gaps"
        for b in batches:
            expected = make_batch(w, b, seed)
            got = sorted(present[(w, b)], key=lambda t: t[0])
            if len(got) != len(expected):
                torn += 1
                continue
            for (i, env), want in zip(got, expected):
                stored = msgspec.to_builtins(env.event)
                want = {k: v for k, v in want.items() if k != "id"}
                assert stored == want, f"w{w} b{b} e{i}: stored {stored} != sent {want}"
        acked = {b: k for kind, b, k, _ in lines if kind == "ack"}
        acked_batches += len(acked)
        acked_events += sum(acked.values())
        for b, k in acked.items():
            lost += k - len(present.get((w, b), []))
        ack_lost += sum(1 for x in lines if x[0] == "acklost")
        last = max(acked) if acked else -1
        assert batches and batches[-1] == last, (
            f"writer {w}: log ends at {batches[-1:]}, acks at {last}"
        )
    assert torn == 0, f"{torn} torn batches"
    assert lost == 0, f"{lost} acknowledged events lost"
    return {
        "events": n,
        "acked_batches": acked_batches,
        "acked_events": acked_events,
        "ack_lost_resent": ack_lost,
    }


def test_r1_crash_kill(tmp_path, seed):
    kills, writers = size(200, 5000), size(4, 8)
    kill_writers_and_check(str(tmp_path / "r1.ledger"), tmp_path, seed, kills, writers, "R1")


def kill_writers_and_check(
    location: str, tmp_path, seed, kills: int, writers: int, label: str, delay=(0.0, 0.1)
) -> None:
    """``writers`` writer slots on ``location`` (a path or a PostgreSQL URL), ``kills``
    SIGKILLs among them (each ``delay`` seconds after a writer is ready),
    then every R1 property checked (R1, and R20 on PostgreSQL)."""
    acks = {w: str(tmp_path / f"acks-{w}.txt") for w in range(writers)}
    errors: list[str] = []
    stats: dict[str, int] = defaultdict(int)
    per_slot = [kills // writers + (1 if w < kills % writers else 0) for w in range(writers)]
    started = time.monotonic()
    threads = [
        threading.Thread(
            target=_run_slot,
            args=(location, acks[w], w, seed, per_slot[w], errors, stats, delay),
        )
        for w in range(writers)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    for error in errors:  # whole, in the captured output (the assertion shortens them)
        print(error)
    assert not errors, errors
    assert stats["kills"] == kills
    figures = check_crash_stream(location, acks, seed)
    print(
        f"{label}: {stats['kills']} SIGKILLs survived among {writers} writers in {elapsed:.1f} s; "
        f"{figures['events']} events, {figures['acked_batches']} acked batches "
        f"({figures['acked_events']} events), {figures['ack_lost_resent']} batches re-sent "
        "after a lost ack; 0 lost, 0 torn, 0 duplicates"
    )
    assert figures["acked_batches"] >= writers * 4, "writers made too little progress to test"


def _reader_slot(path, seed, kills, errors, stats, slot):
    rng = random.Random(f"{seed}:reader:{slot}")
    for _ in range(kills):
        proc = script("rel_reader.py", path, rng.randrange(1 << 30), stdout=subprocess.PIPE)
        if proc.stdout.readline() != b"ready\n":
            proc.wait()
            errors.append(f"reader {slot} failed with {proc.returncode}")
            return
        time.sleep(rng.uniform(0.0, 0.1))
        proc.kill()
        proc.wait()
        proc.stdout.close()
        if proc.returncode != -9:
            errors.append(f"reader {slot} exited with {proc.returncode}")
            return
        stats["reader_kills"] += 1


@pytest.mark.soak
@pytest.mark.skipif(not SOAK, reason="the reader-kill variant of R1 runs with SOAK=1 (make soak)")
def test_r1_reader_kills(tmp_path, seed):
    """Readers killed with -9 leave stale slots; writers and new readers carry on."""
    writers, readers, kills = 4, 4, size(200, 2000)
    path = str(tmp_path / "r1r.ledger")
    acks = {w: str(tmp_path / f"acks-{w}.txt") for w in range(writers)}
    with Ledger(path) as ledger:
        ledger.append([{"type": "study_created", "study": "readers"}])
    errors: list[str] = []
    stats: dict[str, int] = defaultdict(int)
    threads = [
        threading.Thread(
            target=_run_slot, args=(path, acks[w], w, seed, kills // writers, errors, stats)
        )
        for w in range(writers)
    ] + [
        threading.Thread(target=_reader_slot, args=(path, seed, kills // readers, errors, stats, r))
        for r in range(readers)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with Ledger(path, create=False) as ledger:
        assert ledger.append([{"type": "case_created", "study": "readers", "case": "end"}]).appended
    figures = check_crash_stream_with_extra(path, acks, seed, extra=2)
    print(
        f"R1 readers: {stats['reader_kills']} reader kills, {stats['kills']} writer kills; {figures}"
    )


def test_oracle_skips_torn_lines(tmp_path):
    """A kill can cut an ack where it crosses a page boundary; the next writer ends the
    torn line and the checker counts that batch as unacked (not as an ack of k=1)."""
    from rel_common import open_acks

    acks = str(tmp_path / "acks")
    with open(acks, "wb") as fh:
        fh.write(b"ack 0 3 .\nack 1 1")  # "ack 1 12 .\n" cut after 7 bytes
    fd = open_acks(acks)
    os.write(fd, b"resend 0 0 3 .\n")
    os.close(fd)
    assert read_acks(acks) == [("ack", 0, 3, 0), ("resend", 0, 0, 3)]
