"""R6 worker: append ``batches`` batches of bulky events to a ledger with a small map, so
that several processes grow it at the same time.

    python rel_grower.py LEDGER WORKER BATCHES
"""

from __future__ import annotations

import sys

from ledger import Ledger


def main() -> None:
    path, worker, batches = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with Ledger(path, create=False) as ledger:
        print("ready", flush=True)
        sys.stdin.readline()
        for b in range(batches):
            ledger.append(
                [
                    {
                        "type": "case_created",
                        "study": "s",
                        "case": f"g{worker}-{b}-{i}",
                        "params": {"pad": f"{worker}:{b}:{i}:" + "x" * 2000},
                    }
                    for i in range(8)
                ]
            )


if __name__ == "__main__":
    main()
