"""A host recording its runs into its own ledger, one append per batch: started as a
separate process by test_sync_hosts.py (``python sync_host.py LEDGER HOST SKEW RUNS``)."""

from __future__ import annotations

import json
import sys

from sync_streams import run_batches

from ledger import Ledger

if __name__ == "__main__":
    path, host, skew, runs = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    with Ledger(path) as led:
        for batch in run_batches(host, [tuple(r) for r in json.loads(runs)], skew=skew):
            led.append(batch)
