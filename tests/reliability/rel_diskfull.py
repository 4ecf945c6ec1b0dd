"""R7 worker: fill the disk as seen by this process (RLIMIT_FSIZE, SIGXFSZ ignored), then
free it, and report what happened as JSON on stdout.

    python rel_diskfull.py LEDGER LIMIT_BYTES
"""

from __future__ import annotations

import json
import resource
import signal
import sys

from ledger import Ledger, LedgerWriteFailed


def batch(tag: str) -> list[dict]:
    return [
        {"type": "case_created", "study": "s", "case": f"{tag}-{i}", "params": {"pad": "x" * 900}}
        for i in range(6)
    ]


def main() -> None:
    path, limit = sys.argv[1], int(sys.argv[2])
    out: dict = {}
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    ledger = Ledger(path)
    flags = ledger._store.env.env.flags()
    out["writemap"], out["sync"], out["metasync"] = (
        flags["writemap"],
        flags["sync"],
        flags["metasync"],
    )
    ledger.append([{"type": "study_created", "study": "s"}])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    n = 0
    head = ledger.head
    try:
        while n < 100_000:
            head = ledger.head
            ledger.append(batch(f"b{n}"))
            n += 1
    except LedgerWriteFailed as exc:
        out["error"] = str(exc)
    out["batches"] = n
    out["head_before"] = list(head)
    out["head_after"] = list(ledger.head)
    out["failed_batch_visible"] = any(
        e.event.case.startswith(f"b{n}-") for e in ledger.read(since=1)
    )
    ledger.close()
    with Ledger(path, create=False) as again:  # reopens after the failure
        report = again.verify()
        out["verify_after_reopen"] = [report.ok, report.head_seq, report.head_hash]
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))  # space freed
        result = again.append(batch("after"))
        out["append_after_free"] = [result.appended, result.first_seq, result.head_seq]
        out["prefix_kept"] = again.hash_at(head.seq) == head.hash
        out["verify_final"] = again.verify().ok
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
