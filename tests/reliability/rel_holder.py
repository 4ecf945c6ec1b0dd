"""R4/R5 worker: hold a transaction open until killed.

python rel_holder.py LEDGER read MAX_READERS   # a read transaction (a reader slot)
python rel_holder.py LEDGER write              # a write transaction with a half-written key
"""

from __future__ import annotations

import sys
import time

from ledger.store import lmdb_env as _lmdb


def main() -> None:
    path, mode = sys.argv[1], sys.argv[2]
    if mode == "read":
        shared = _lmdb.acquire(path, create=False, max_readers=int(sys.argv[3]))
        txn = shared.env.begin(write=False)
        txn.get(b"head_seq", db=shared.dbs["meta"])
    else:
        shared = _lmdb.acquire(path, create=False)
        txn = shared.env.begin(write=True)
        txn.put(b"\xff" * 8, b"half-written", db=shared.dbs["events"])
        txn.put(b"head_seq", (10**6).to_bytes(8, "big"), db=shared.dbs["meta"])
    print("ready", flush=True)
    time.sleep(600)


if __name__ == "__main__":
    main()
