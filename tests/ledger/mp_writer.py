"""A writer process for the multi-process tests: appends N batches of metrics to its own run."""

import sys

from ledger import Ledger

path, writer, batches, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
with Ledger(path) as ledger:
    ledger.append(
        [
            {"type": "study_created", "study": "mp"},
            {"type": "case_created", "study": "mp", "case": "c"},
            {"type": "run_started", "study": "mp", "case": "c", "run": writer},
        ]
    )
    for b in range(batches):
        ledger.append(
            [
                {
                    "type": "metrics_recorded",
                    "study": "mp",
                    "run": writer,
                    "step": b * size + i,
                    "values": {"x": i},
                }
                for i in range(size)
            ]
        )
print("done")
