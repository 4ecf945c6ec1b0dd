"""MLflow's tracking client on an SQLite backend store, used as its docs advise for
throughput: ``log_batch`` (at most 1,000 metrics per call, MLflow's limit), one call per
run per appended batch. Each ``run_started`` is a ``create_run``, each ``run_finished``
a ``set_terminated``. Replay is ``get_metric_history`` per run and key; "latest" is
``search_runs`` (MLflow keeps a latest-metrics table at write time). The store's schema
migrations run in ``open`` (not timed). mlflow is imported here only."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

BATCH = 1000  # MLflow refuses more metrics per log_batch


def _quiet() -> None:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.ERROR)


class MlflowDriver:
    name = "mlflow log_batch"
    values_per_event = 5

    def open(self, folder: Path) -> None:
        _quiet()
        from mlflow.tracking import MlflowClient

        _quiet()  # mlflow sets its loggers up on import

        self.uri = f"sqlite:///{os.fspath(folder / 'mlflow.db')}"
        self.client = MlflowClient(tracking_uri=self.uri)
        self.experiment = self.client.create_experiment(f"bench-{time.monotonic_ns()}")
        self.run_ids: dict[str, str] = {}
        self.names: dict[str, str] = {}

    def append(self, events: list[dict]) -> None:
        from mlflow.entities import Metric

        client = self.client
        pending: dict[str, list] = {}
        now = int(time.time() * 1000)

        def flush(run_id: str) -> None:
            metrics = pending.pop(run_id, [])
            for i in range(0, len(metrics), BATCH):
                client.log_batch(run_id, metrics=metrics[i : i + BATCH])

        for ev in events:
            kind = ev["type"]
            if kind == "metrics_recorded":
                run_id = self.run_ids[ev["run"]]
                step = ev.get("step")
                if step is None:
                    continue  # finals: MLflow has no separate slot; counted apart below
                pending.setdefault(run_id, []).extend(
                    Metric(k, float(v), now, step) for k, v in ev["values"].items()
                )
            elif kind == "run_started":
                run = client.create_run(
                    self.experiment, run_name=ev["run"], tags={"case": ev["case"]}
                )
                self.run_ids[ev["run"]] = run.info.run_id
                self.names[run.info.run_id] = ev["run"]
            elif kind == "run_finished":
                run_id = self.run_ids[ev["run"]]
                flush(run_id)
                client.set_terminated(run_id, status="FINISHED")
        for run_id in list(pending):
            flush(run_id)

    def close(self) -> None:
        pass

    def _fresh(self):
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.uri)

    def load(self) -> int:
        client = self._fresh()
        n = 0
        for run in client.search_runs([self.experiment], max_results=50_000):
            for key in run.data.metrics:
                n += len(client.get_metric_history(run.info.run_id, key))
        return n

    def latest(self) -> dict[tuple[str, str], float]:
        client = self._fresh()
        out = {}
        for run in client.search_runs([self.experiment], max_results=50_000):
            name = self.names[run.info.run_id]
            for key, value in run.data.metrics.items():
                out[(name, key)] = value
        return out
