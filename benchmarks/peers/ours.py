"""This project behind the driver interface: ``Ledger.append`` of the wire dicts (every
rule, dedupe and the hash chain on), ``read_batches`` to replay (``read_frames`` as columns), and the metrics
projection for the latest values (from scratch, or from a checkpoint at the head)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ledger import Ledger


def latest_from(metrics: Any) -> dict[tuple[str, str], float]:
    """Each run's value of each metric at its highest step: ``MetricsProjection.latest``
    (one row per run and metric, in force), keyed by (run, metric) names."""
    t = metrics.latest()
    runs, names = t["runs"], t["metrics"]
    return {
        (runs[r][1], names[m]): v
        for r, m, v in zip(t["run"].tolist(), t["metric"].tolist(), t["value"].tolist())
    }


class LedgerDriver:
    name = "ledger"
    values_per_event = 5

    def open(self, folder: Path) -> None:
        self.path = os.fspath(folder / "results.ledger")
        self.ledger = Ledger(self.path)

    def append(self, events: list[dict]) -> None:
        self.ledger.append(events)

    def close(self) -> None:
        self.ledger.close()

    def load(self) -> int:
        with Ledger(self.path, create=False, readonly=True) as ledger:
            n = 0
            for batch in ledger.read_batches(chunk_blocks=16):
                for env in batch:
                    if env.event.TYPE == "metrics_recorded":
                        n += len(env.event.values)
            return n

    def load_columns(self) -> int:
        with Ledger(self.path, create=False, readonly=True) as ledger:
            return sum(len(f.metrics.value) for f in ledger.read_frames())

    def latest(self, *, checkpoint: bool = False) -> dict[tuple[str, str], float]:
        from projections.base import build
        from projections.metrics import MetricsProjection

        with Ledger(self.path, create=False, readonly=True) as ledger:
            return latest_from(build(ledger, MetricsProjection(), checkpoints=checkpoint))

    def checkpoint(self) -> None:
        """Checkpoints at the head (``ledger checkpoint``), for ``latest(checkpoint=True)``."""
        from projections.builtins import write_checkpoints

        with Ledger(self.path, create=False) as ledger:
            write_checkpoints(ledger)
