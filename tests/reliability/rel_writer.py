"""R1/R16 writer: appends its batches forever (or --extra more), acking each after commit.

The ack file is the oracle: ``ack B K .`` is appended (one write) only after the append of
batch B returned. On start the writer re-sends its last acked batch (which must be all
duplicates) and then the next one, which may have been committed before the kill that
lost its ack: it must then be all duplicates too, never a partial batch.

    python rel_writer.py LEDGER ACKS WRITER SEED [EXTRA] [ACK_DELAY_PROB] [--standby]

With --standby the writer starts, imports, and waits for a line ``go EXTRA`` on stdin
before it reads its acks and opens the ledger: R1 keeps one ready per slot, so a restart
after a kill does not wait for an interpreter start-up.
"""

from __future__ import annotations

import os
import random
import sys
import time

from rel_common import last_acked, make_batch, open_acks

from ledger import Ledger


def fail(fd: int, text: str) -> None:
    os.write(fd, f"error {text} .\n".encode())
    sys.stderr.write(text + "\n")
    sys.exit(3)


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--standby"]
    path, acks, writer, seed = args[0], args[1], int(args[2]), int(args[3])
    extra = int(args[4]) if len(args) > 4 else -1
    delay_prob = float(args[5]) if len(args) > 5 else 0.0
    if "--standby" in sys.argv:
        if path.startswith("postgresql://"):
            import psycopg  # noqa: F401 - imported while waiting, not after "go" (R20)
        go = sys.stdin.readline().split()
        if not go or go[0] != "go":
            return
        extra = int(go[1])
    jitter = random.Random(f"{seed}:{writer}:{os.getpid()}")
    last = last_acked(acks)
    fd = open_acks(acks)
    ledger = Ledger(path)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    if last >= 0:
        batch = make_batch(writer, last, seed)
        r = ledger.append(batch)
        if r.appended or r.duplicates != len(batch):
            fail(fd, f"re-sent acked batch {last}: appended {r.appended}, dup {r.duplicates}")
        os.write(fd, f"resend {last} {r.appended} {r.duplicates} .\n".encode())
    b = last + 1
    stop = b + extra if extra >= 0 else None
    while stop is None or b < stop:
        batch = make_batch(writer, b, seed)
        r = ledger.append(batch)
        if r.appended + r.duplicates != len(batch):
            fail(fd, f"batch {b}: appended {r.appended} + dup {r.duplicates} != {len(batch)}")
        if r.duplicates:
            if b != last + 1 or r.appended:
                fail(fd, f"batch {b}: torn or unexpected duplicates ({r.appended}/{r.duplicates})")
            os.write(fd, f"acklost {b} {r.appended} {r.duplicates} .\n".encode())
        if delay_prob and jitter.random() < delay_prob:
            time.sleep(jitter.uniform(0, 0.004))  # widen the commit-to-ack window
        os.write(fd, f"ack {b} {len(batch)} .\n".encode())
        b += 1
    ledger.close()


if __name__ == "__main__":
    main()
