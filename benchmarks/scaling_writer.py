"""One writer process of ``bench_scaling.test_writers``: opens the ledger, says
``ready``, waits for ``go`` on stdin, appends its run's metrics events in batches and
prints its start and end (``time.time()``) so the parent can time the whole group.

    python benchmarks/scaling_writer.py LEDGER STUDY RUN EVENTS BATCH
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ledger import Ledger  # noqa: E402


def main() -> None:
    path, study, run, events, batch = sys.argv[1:6]
    n, size = int(events), int(batch)
    stream = [
        {
            "type": "metrics_recorded",
            "study": study,
            "run": run,
            "step": step,
            "values": {
                "loss": 1.0 / (step + 1),
                "acc": 0.5,
                "lr": 0.1,
                "grad_norm": 0.3,
                "throughput": 150,
            },
        }
        for step in range(n)
    ]
    chunks = [stream[i : i + size] for i in range(0, n, size)]
    with Ledger(path) as ledger:
        print("ready", flush=True)
        sys.stdin.readline()
        start = time.time()
        for chunk in chunks:
            ledger.append(chunk)
        end = time.time()
    print(f"{start} {end}", flush=True)


if __name__ == "__main__":
    main()
