"""R12 writer: a realistic study (cases, runs, per-step and final metrics, finishes) in
batches with explicit ids and timestamps, resumable like rel_writer.py: it re-sends its
last acked batch and carries on, so a run killed any number of times ends with exactly
the events of an uninterrupted one.

    python rel_study_writer.py LEDGER ACKS SEED BATCHES
"""

from __future__ import annotations

import os
import random
import sys

from rel_common import last_acked, open_acks

from ledger import Ledger


def study_batches(seed: int, count: int) -> list[list[dict]]:
    rng = random.Random(seed)
    ts = 1_767_225_600  # fixed clock: 2026-01-01T00:00:00Z
    batches: list[list[dict]] = [
        [
            {
                "type": "study_created",
                "study": "chip",
                "config": {"platform": "asap7", "objectives": "wns"},
                "objectives": [{"metric": "wns", "direction": "max"}],
            }
        ]
    ]
    for b in range(1, count):
        events: list[dict] = []
        case = f"c{b:03d}"
        events.append(
            {
                "type": "case_created",
                "study": "chip",
                "case": case,
                "stage": b % 3,
                "params": {"util": round(rng.uniform(0.3, 0.9), 3), "name": f"=cmd{b}"},
            }
        )
        for r in range(rng.randint(1, 3)):
            run = f"{case}-r{r}"
            events.append(
                {"type": "run_started", "study": "chip", "case": case, "run": run, "seed": r}
            )
            for step in range(rng.randint(0, 4)):
                events.append(
                    {
                        "type": "metrics_recorded",
                        "study": "chip",
                        "run": run,
                        "step": step,
                        "values": {"loss": rng.random(), "area": rng.randint(100, 999)},
                    }
                )
            status = rng.choice(["completed", "completed", "failed"])
            if status == "completed":
                events.append(
                    {
                        "type": "metrics_recorded",
                        "study": "chip",
                        "run": run,
                        "values": {"wns": rng.gauss(0, 1), "power": rng.random() * 3},
                    }
                )
            events.append({"type": "run_finished", "study": "chip", "run": run, "status": status})
        batches.append(events)
    for b, events in enumerate(batches):
        for i, event in enumerate(events):
            event["id"] = f"s{b}-{i}"
            event["ts"] = ts + b * 60 + i
    return batches


def main() -> None:
    path, acks, seed, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    batches = study_batches(seed, count)
    last = last_acked(acks)
    fd = open_acks(acks)
    with Ledger(path) as ledger:
        print("ready", flush=True)
        for b in range(max(last, 0), count):
            result = ledger.append(batches[b])
            if result.appended not in (0, len(batches[b])):
                sys.exit(f"batch {b} torn: {result}")
            os.write(fd, f"ack {b} {len(batches[b])} .\n".encode())


if __name__ == "__main__":
    main()
