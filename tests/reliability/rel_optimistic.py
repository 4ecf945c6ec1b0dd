"""R3 worker: ``count`` conditional appends, each decided at the head it read.

    python rel_optimistic.py LEDGER WORKER COUNT OUT

Waits for a line on stdin before starting (so that all workers race), writes
``win V`` / ``lose V ACTUAL`` lines to OUT.
"""

from __future__ import annotations

import os
import sys

from ledger import HeadMoved, Ledger


def main() -> None:
    path, worker, count, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    ledger = Ledger(path, create=False)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    print("ready", flush=True)
    sys.stdin.readline()
    lines = []
    for i in range(count):
        while True:
            v = ledger.head.seq
            event = {
                "type": "case_created",
                "study": "s",
                "case": f"p{worker}-{i}",
                "id": f"p{worker}-{i}",
                "params": {"decided_at": v},
            }
            try:
                r = ledger.append([event], expected_head=v)
            except HeadMoved as exc:
                assert exc.expected == v and exc.actual > v, (exc.expected, exc.actual, v)
                lines.append(f"lose {v} {exc.actual}")
                continue
            assert r.appended == 1 and r.first_seq == v + 1, r
            lines.append(f"win {v}")
            break
    os.write(fd, ("\n".join(lines) + "\n").encode())
    ledger.close()


if __name__ == "__main__":
    main()
