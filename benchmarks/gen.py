"""A seeded generator of realistic event streams: metrics events carry 5 values each,
the shape every performance target refers to."""

from __future__ import annotations

import random
from collections.abc import Iterator

METRICS = ("loss", "acc", "lr", "grad_norm", "throughput")


def study_events(
    study: str = "bench", runs: int = 10, steps: int = 100, seed: int = 0
) -> Iterator[dict]:
    rng = random.Random(seed)
    yield {
        "type": "study_created",
        "study": study,
        "objectives": [{"metric": "loss", "direction": "min"}],
    }
    for r in range(runs):
        case = f"c{r % max(1, runs // 2)}"
        if r < max(1, runs // 2):
            yield {
                "type": "case_created",
                "study": study,
                "case": case,
                "params": {"lr": 0.1 * (r + 1)},
            }
    for r in range(runs):
        case = f"c{r % max(1, runs // 2)}"
        run = f"r{r}"
        yield {"type": "run_started", "study": study, "case": case, "run": run, "seed": r}
        loss = 1.0
        for step in range(steps):
            loss *= 0.999 - rng.random() * 0.001
            yield {
                "type": "metrics_recorded",
                "study": study,
                "run": run,
                "step": step,
                "values": {
                    "loss": loss,
                    "acc": 1 - loss,
                    "lr": 0.1,
                    "grad_norm": rng.random(),
                    "throughput": rng.randint(100, 200),
                },
            }
        yield {
            "type": "metrics_recorded",
            "study": study,
            "run": run,
            "values": {"loss": loss, "acc": 1 - loss},
        }
        yield {"type": "run_finished", "study": study, "run": run, "status": "completed"}


def as_structs(events: list[dict]) -> list:
    from ledger.codec import event_from_obj

    return [event_from_obj(e) for e in events]
