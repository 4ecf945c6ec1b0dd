"""R17 worker: open and close the same ledger ``count`` times, reading each time.

python rel_openclose.py LEDGER COUNT
"""

from __future__ import annotations

import sys

from ledger import Ledger


def main() -> None:
    path, count = sys.argv[1], int(sys.argv[2])
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(count):
        with Ledger(path, create=False, readonly=i % 2 == 0) as ledger:
            assert ledger.head.seq >= 1


if __name__ == "__main__":
    main()
