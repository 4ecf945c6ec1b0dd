"""An Optuna callback that records each finished trial into the ledger
(``pip install 'results-ledger[optuna]'``).

.. code-block:: python

    from ledger.integrations.optuna import LedgerCallback

    study.optimize(objective, n_trials=100, callbacks=[LedgerCallback("results.ledger")])

Each finished trial (completed, pruned or failed) becomes exactly the events that
``ledger import optuna`` makes for it — one function (:func:`~ledger.importers.
optuna_import.trial_events`) writes both — stamped with the trial's own times: its case
(params) and its run's start at the trial's start; its intermediate values (the first
objective's steps), its objective values (final metrics, named by
``study.metric_names`` or ``value``/``values_N``) and the run's finish at its
completion; user attributes, system attributes and distributions in the run's config.
The study's directions are the objectives; the study is created at its first trial's
start. So a study recorded live and the same study imported afterwards export
byte-identically, and importing it after recording appends nothing.

The events go through a :class:`~ledger.Recorder`, one per ledger study, committed at
the end of each trial. Safe with ``n_jobs > 1`` (trials finish on several threads: the
Recorder is locked) and with several processes sharing one Optuna storage (each
records the trials it ran; ids come from the study and trial number, so nothing is
recorded twice).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from ledger.importers.optuna_import import metric_names, study_event, trial_events, trial_status
from ledger.recorder import Recorder

__all__ = ["LedgerCallback"]


class LedgerCallback:
    """Record each finished trial of ``study.optimize`` into the ledger at ``location``
    (a path, a ``postgresql://`` URL or an open :class:`~ledger.Ledger`).

    ``study`` names the ledger study (default: the Optuna study's name); ``naive_tz``
    is the zone Optuna's zone-less trial times are read in (as ``ledger import optuna
    --naive-tz``); ``recorder_options`` go to the :class:`~ledger.Recorder`. Use it as a
    context manager, or call :meth:`close`, to release the ledger before the process
    ends (each trial is committed already).

    Raises from the call what the ledger refuses: ``RuleViolation`` when the ledger
    study exists with another config (another source recorded it).
    """

    def __init__(
        self,
        location: Any,
        study: str | None = None,
        *,
        naive_tz: str = "UTC",
        recorder_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.location = location
        self.study = study
        self.naive_tz = naive_tz
        self.recorder_options = dict(recorder_options or {})
        self._recorders: dict[str, Recorder] = {}
        self._lock = threading.Lock()

    def __call__(self, study: Any, trial: Any) -> None:
        status = trial_status(trial)
        if status is None:  # not finished: never the case for Optuna's own calls
            return
        target = self.study if self.study is not None else study.study_name
        rec = self._recorder(study, target)
        events = trial_events(trial, target, metric_names(study), status, naive_tz=self.naive_tz)
        rec.record(events)
        rec.flush()

    def _recorder(self, study: Any, target: str) -> Recorder:
        with self._lock:
            rec = self._recorders.get(target)
            if rec is None:
                created = study_event(
                    study, target, study.get_trials(deepcopy=False), naive_tz=self.naive_tz
                )
                rec = Recorder(
                    self.location,
                    target,
                    config=created["config"],
                    objectives=created["objectives"],
                    ts=created.get("ts"),
                    **self.recorder_options,
                )
                self._recorders[target] = rec
            return rec

    def close(self) -> None:
        """Commit and close every Recorder this callback opened."""
        with self._lock:
            recorders, self._recorders = list(self._recorders.values()), {}
        for rec in recorders:
            rec.close()

    def __enter__(self) -> LedgerCallback:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
