"""R8 oracle: for each path read on stdin, a digest of what the store holds, read with
plain lmdb (none of the ledger's code): every (key, value) of the events table plus the
head in meta. Prints ``ok HEX`` or ``error TEXT``; a damaged file may kill this process
(SIGBUS), which the parent sees as end of output and counts as unreadable.
"""

from __future__ import annotations

import hashlib
import sys

import lmdb


def digest(path: str) -> str:
    env = lmdb.open(path, readonly=True, lock=False, max_dbs=16, subdir=True)
    try:
        h = hashlib.sha256()
        events = env.open_db(b"events", create=False)
        meta = env.open_db(b"meta", create=False)
        with env.begin() as txn:
            for key, value in txn.cursor(events):
                h.update(len(key).to_bytes(4, "big") + key + len(value).to_bytes(4, "big") + value)
            for name in (b"head_seq", b"head_hash"):
                h.update(b"|" + (txn.get(name, db=meta) or b"<none>"))
        return h.hexdigest()
    finally:
        env.close()


def main() -> None:
    for line in sys.stdin:
        try:
            answer = "ok " + digest(line.strip())
        except Exception as exc:
            answer = f"error {type(exc).__name__}: {exc}".replace("\n", " ")
        sys.stdout.write(answer + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
