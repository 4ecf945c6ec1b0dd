"""R1 (soak) reader: replays the ledger in a loop, sometimes holding a read transaction
open for a while, until killed; a killed reader leaves a stale slot in the lock file.

    python rel_reader.py LEDGER SEED
"""

from __future__ import annotations

import random
import sys
import time

from ledger import Ledger


def main() -> None:
    path, seed = sys.argv[1], int(sys.argv[2])
    rng = random.Random(seed)
    with Ledger(path, create=False, readonly=True) as ledger:
        print("ready", flush=True)
        while True:
            last = 0
            for batch in ledger.read_batches(chunk_blocks=4):
                assert batch[0].seq == last + 1, "a reader saw a gap"
                last = batch[-1].seq
            if rng.random() < 0.3:
                with ledger._store.env.read():  # a long read transaction, pinning a snapshot
                    time.sleep(rng.uniform(0, 0.05))


if __name__ == "__main__":
    main()
