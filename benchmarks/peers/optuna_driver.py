"""Optuna's ``JournalStorage`` with its file backend (``JournalFileBackend``, the
documented way to share a study between processes without a database).

Optuna's model holds one objective per trial and one intermediate value per step, so a
run is a trial and each metrics event stores its objective metric (``loss``) with
``trial.report(value, step)``: one journal record per value, i.e. 1 of the event's 5
values (``values_per_event = 1``; rates are per value stored). A run's final loss is
``study.tell``. Replay opens the journal afresh and loads every trial; "latest" is each
trial's last intermediate value. optuna is imported here only."""

from __future__ import annotations

import os
from pathlib import Path

OBJECTIVE = "loss"


class OptunaDriver:
    name = "optuna journal"
    values_per_event = 1

    def open(self, folder: Path) -> None:
        import optuna
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.file = os.fspath(folder / "optuna.journal")
        self.storage = JournalStorage(JournalFileBackend(self.file))
        self.study = optuna.create_study(study_name="bench", storage=self.storage)
        self.trials: dict[str, object] = {}
        self.finals: dict[str, float] = {}
        self.names: dict[int, str] = {}

    def append(self, events: list[dict]) -> None:
        study = self.study
        for ev in events:
            kind = ev["type"]
            if kind == "metrics_recorded":
                value = ev["values"].get(OBJECTIVE)
                if value is None:
                    continue
                step = ev.get("step")
                if step is None:
                    self.finals[ev["run"]] = float(value)
                else:
                    self.trials[ev["run"]].report(float(value), step)
            elif kind == "run_started":
                trial = study.ask()
                self.trials[ev["run"]] = trial
                self.names[trial.number] = ev["run"]
            elif kind == "run_finished":
                trial = self.trials[ev["run"]]
                study.tell(trial, self.finals.get(ev["run"], float("nan")))

    def close(self) -> None:
        pass

    def _trials(self):
        import optuna
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        storage = JournalStorage(JournalFileBackend(self.file))
        return optuna.load_study(study_name="bench", storage=storage).get_trials(deepcopy=False)

    def load(self) -> int:
        return sum(len(t.intermediate_values) for t in self._trials())

    def latest(self) -> dict[tuple[str, str], float]:
        out = {}
        for t in self._trials():
            if t.intermediate_values:
                step = max(t.intermediate_values)
                out[(self.names[t.number], OBJECTIVE)] = t.intermediate_values[step]
        return out
