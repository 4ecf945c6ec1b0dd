"""R6 map full: a ledger at its ``max_size`` ceiling refuses a batch cleanly; below it,
the map grows (alone, and with 4 processes growing it at once)."""

from __future__ import annotations

import subprocess

import pytest
from rel_common import script, size

from ledger import Ledger, LedgerFull
from ledger.integrity import verify_isolated

KIB = 1024


def _batch(tag: str, n: int = 5, pad: int = 600) -> list[dict]:
    return [
        {"type": "case_created", "study": "s", "case": f"{tag}-{i}", "params": {"pad": "x" * pad}}
        for i in range(n)
    ]


def test_r6_map_full_at_the_ceiling(fast_dir):
    path = f"{fast_dir}/r6.ledger"
    with Ledger(path, map_size=64 * KIB, max_size=256 * KIB) as ledger:
        assert ledger.storage_info()["map_size"] == 64 * KIB
        ledger.append([{"type": "study_created", "study": "s"}])
        sizes = set()
        with pytest.raises(LedgerFull) as info:
            for b in range(10_000):
                head = ledger.head
                last_ok = b
                ledger.append(_batch(f"b{b}"))
                sizes.add(ledger.storage_info()["map_size"])
        assert "reached its max_size ceiling of 262144 bytes" in str(info.value)
        assert "nothing of this batch was written" in str(info.value)
        assert sizes >= {128 * KIB, 256 * KIB}, f"the map did not grow by doubling: {sizes}"
        assert ledger.head == head, "a refused batch moved the head"
        assert not any(e.event.case.startswith(f"b{last_ok}-") for e in ledger.read(since=1))
        assert ledger.storage_info()["ids"] == head.seq
        assert ledger.verify().ok
    assert verify_isolated(path).ok


def test_r6_auto_grow_doubles_and_persists(fast_dir):
    path = f"{fast_dir}/r6.ledger"
    with Ledger(path, map_size=64 * KIB) as ledger:
        ledger.append([{"type": "study_created", "study": "s"}])
        for b in range(20):
            ledger.append(_batch(f"b{b}"))
        grown = ledger.storage_info()["map_size"]
        assert grown >= 128 * KIB and grown % (64 * KIB) == 0
        head = ledger.head
    with Ledger(path, create=False, map_size=64 * KIB) as ledger:  # never shrinks
        assert ledger.storage_info()["map_size"] == grown
        assert ledger.head == head
        assert ledger.verify().ok


@pytest.mark.slow
def test_r6_four_processes_grow_concurrently(fast_dir):
    runs, workers, batches = size(5, 50), 4, 40
    for run in range(runs):
        path = f"{fast_dir}/r6-{run}.ledger"
        with Ledger(path, map_size=1 << 20) as ledger:
            ledger.append([{"type": "study_created", "study": "s"}])
        procs = [
            script("rel_grower.py", path, w, batches, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            for w in range(workers)
        ]
        for p in procs:
            assert p.stdout.readline() == b"ready\n"
        for p in procs:
            p.stdin.write(b"go\n")
            p.stdin.close()
        assert [p.wait(timeout=300) for p in procs] == [0] * workers, f"run {run}"
        report = verify_isolated(path)
        assert report.ok, f"run {run}: {report.error}"
        assert report.events == 1 + workers * batches * 8
        with Ledger(path, create=False, readonly=True) as ledger:
            assert ledger.storage_info()["map_size"] >= 4 << 20
            assert ledger.storage_info()["ids"] == report.events
    print(f"R6: {runs} runs of {workers} processes growing a 1 MiB map: 0 corrupt")


def test_r6_growth_while_other_threads_read(fast_dir):
    """A remap replaces the memory map under every transaction of the process: readers
    in other threads must never see it happen (the remap gate). The readers pause
    between scans: threads spinning on the GIL would only measure CPython's convoy."""
    import threading
    import time

    path = f"{fast_dir}/r6t.ledger"
    errors: list[BaseException] = []
    done = threading.Event()
    with Ledger(path, map_size=64 * KIB) as ledger:
        ledger.append([{"type": "study_created", "study": "s"}])

        def read_loop() -> None:
            try:
                while not done.is_set():
                    seqs = [e.seq for e in ledger.read()]
                    assert seqs == list(range(1, len(seqs) + 1))
                    ledger.verify()
                    time.sleep(0.002)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        readers = [threading.Thread(target=read_loop) for _ in range(2)]
        for t in readers:
            t.start()
        try:
            for b in range(60):
                ledger.append(_batch(f"b{b}", n=8, pad=1500))
        finally:
            done.set()
            for t in readers:
                t.join()
        assert not errors, errors
        assert ledger.storage_info()["map_size"] >= 512 * KIB
        assert ledger.verify().ok
