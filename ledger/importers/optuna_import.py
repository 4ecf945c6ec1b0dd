"""An Optuna study, read through Optuna's own storage classes, as ledger events.

Mapping: the study's directions are the ledger study's objectives (metric names from
``study.metric_names``, else Optuna's own ``value`` / ``values_0``, ``values_1``...);
each trial is a case ``trial-<number>`` with the trial's params and one run of the same
id; intermediate values are the objective's stepped series; the objective value(s) are
the final metrics; the state is the run's status (COMPLETE -> completed, PRUNED ->
pruned, FAIL -> failed).

Every event carries the trial's own times, never the time of the import: the case and
the run's start at the trial's start, the values and the finish at its completion (a
time Optuna did not record falls back to the other one). The study is created at the
start of its first trial. :func:`trial_events` and :func:`study_event` are shared with
the live callback (:mod:`ledger.integrations.optuna`), so a study recorded while it
runs and the same study imported afterwards are the same events, and export the same
bytes.

RUNNING and WAITING trials are skipped and counted (``running="interrupted"`` closes
RUNNING ones as interrupted instead). A running trial still gains params, attributes
and values, so importing it now would make the next import of the finished trial
conflict with what was recorded; skipping it keeps re-imports idempotent.

Optuna records trial times without a zone (``datetime.now()`` on the machine that ran
the trial); they are read in ``naive_tz`` (UTC by default) and the summary says so.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from .common import (
    ImportResult,
    ImportSourceError,
    MissingDependency,
    Progress,
    Ticker,
    check_name,
    is_number,
    stable_id,
    to_utc,
)

__all__ = ["STATE_STATUS", "metric_names", "read_optuna", "study_event", "trial_events"]

STATE_STATUS = {"COMPLETE": "completed", "PRUNED": "pruned", "FAIL": "failed"}


def _optuna() -> Any:
    try:
        import optuna
    except ImportError as exc:
        raise MissingDependency("Optuna", "optuna", exc) from None
    return optuna


def _storage(optuna: Any, storage: str | os.PathLike[str]) -> Any:
    """A URL as Optuna reads it, or a journal file path (a ``.db``/``.sqlite`` file as SQLite).

    RDB storages are opened without creating tables and a journal file must exist: an
    import reads, it never creates an empty store because of a typo.
    """
    text = os.fspath(storage)
    if "://" in text:
        if text.startswith("sqlite:///"):
            db = text[len("sqlite:///") :]
            if db and not Path(db).exists():
                raise ImportSourceError("no such SQLite file", where=db)
        try:
            return optuna.storages.RDBStorage(text, skip_table_creation=True)
        except Exception as exc:
            raise ImportSourceError(f"cannot open Optuna storage: {exc}", where=text) from None
    path = Path(text)
    if not path.is_file():
        raise ImportSourceError(
            "no such file; pass a journal file path or a storage URL (sqlite:///study.db)",
            where=text,
        )
    if path.suffix in (".db", ".sqlite", ".sqlite3"):
        return _storage(optuna, "sqlite:///" + str(path))
    journal = optuna.storages.journal
    backend = getattr(journal, "JournalFileBackend", None) or optuna.storages.JournalFileStorage
    try:
        return journal.JournalStorage(backend(str(path)))
    except Exception as exc:
        raise ImportSourceError(f"cannot read as an Optuna journal: {exc}", where=text) from None


def metric_names(study: Any) -> list[str]:
    """The objectives' metric names: ``study.metric_names``, else ``value`` (one
    objective) or ``values_0``, ``values_1``..."""
    n = len(study.directions)
    names = getattr(study, "metric_names", None)
    if names and len(names) == n:
        return [str(x) for x in names]
    return ["value"] if n == 1 else [f"values_{i}" for i in range(n)]


# -- the shared mapping ------------------------------------------------------------------


def study_event(
    study: Any, target: str, trials: Sequence[Any], *, naive_tz: str = "UTC"
) -> dict[str, Any]:
    """The ``study_created`` of Optuna study ``study`` recorded as ledger study
    ``target``: its directions as objectives, created at the start of its first trial
    (``trials``: the study's trials, any order). Its id derives from its content, as
    the Recorder's does, so the callback's and the importer's are one event."""
    names = metric_names(study)
    directions = [d.name for d in study.directions]
    event: dict[str, Any] = {
        "type": "study_created",
        "study": target,
        "config": {
            "source": "optuna",
            "optuna_study": study.study_name,
            "directions": directions,
        },
        "objectives": [
            {"metric": m, "direction": "min" if d == "MINIMIZE" else "max"}
            for m, d in zip(names, directions)
        ],
    }
    started = [t for t in trials if t.datetime_start is not None]
    if started:
        first = min(started, key=lambda t: t.number)
        event["ts"] = to_utc(first.datetime_start, naive_tz=naive_tz)[0]
    return event


def trial_status(trial: Any, running: str = "skip") -> str | None:
    """The run status of a trial's state; None for a trial to skip (RUNNING unless
    ``running="interrupted"``, WAITING). Raises ``ImportSourceError`` for a state this
    mapping does not know."""
    state = trial.state.name
    if state in STATE_STATUS:
        return STATE_STATUS[state]
    if state == "RUNNING" and running == "interrupted":
        return "interrupted"
    if state in ("RUNNING", "WAITING"):
        return None
    raise ImportSourceError(
        f"trial {trial.number} has state {state}, which this importer does not know"
    )


def trial_events(
    trial: Any,
    target: str,
    names: Sequence[str],
    status: str,
    *,
    naive_tz: str = "UTC",
    counts: Counter[str] | None = None,
) -> list[dict[str, Any]]:
    """A finished trial as events of ledger study ``target``: its case, its run's start,
    its intermediate values (steps of the first objective ``names[0]``), its final
    values and the run's finish with ``status``, each stamped with the trial's own
    times. ``counts`` (if given) gains ``stepped_values``, ``metric_values``,
    ``skipped_intermediate`` and ``assumed_zone`` (times read in ``naive_tz``)."""
    counts = Counter() if counts is None else counts
    name = f"trial-{trial.number}"
    start, end = _times(trial, naive_tz, counts)
    first, last = start or end, end or start
    base = ("optuna", target, "run", name)
    events: list[dict[str, Any]] = [
        _stamped(
            {
                "type": "case_created",
                "study": target,
                "case": name,
                "params": dict(sorted(trial.params.items())),
                "id": stable_id("optuna", target, "case", name),
            },
            first,
        ),
        _stamped(
            {
                "type": "run_started",
                "study": target,
                "case": name,
                "run": name,
                "config": _run_config(trial, start, end),
                "id": stable_id(*base, "started"),
            },
            first,
        ),
    ]
    events += _intermediate(trial, target, name, names[0], last, counts)
    events += _finals(trial, target, name, names, last, counts)
    events.append(_finish(trial, target, name, status, last))
    return events


def _stamped(event: dict[str, Any], ts: str | None) -> dict[str, Any]:
    if ts:
        event["ts"] = ts
    return event


def _times(trial: Any, naive_tz: str, counts: Counter[str]) -> tuple[str | None, str | None]:
    out: list[str | None] = []
    for when in (trial.datetime_start, trial.datetime_complete):
        if when is None:
            out.append(None)
            continue
        text, assumed = to_utc(when, naive_tz=naive_tz)
        counts["assumed_zone"] += assumed
        out.append(text)
    return out[0], out[1]


def _run_config(trial: Any, start: str | None, end: str | None) -> dict[str, Any]:
    import optuna

    config: dict[str, Any] = {"number": trial.number}
    if start:
        config["datetime_start"] = start
    if end:
        config["datetime_complete"] = end
    if trial.user_attrs:
        config["user_attrs"] = dict(sorted(trial.user_attrs.items()))
    if trial.system_attrs:
        config["system_attrs"] = dict(sorted(trial.system_attrs.items()))
    if trial.distributions:
        config["distributions"] = {
            k: optuna.distributions.distribution_to_json(v)
            for k, v in sorted(trial.distributions.items())
        }
    return config


def _intermediate(
    trial: Any, target: str, name: str, metric: str, ts: str | None, counts: Counter[str]
) -> list[dict[str, Any]]:
    out = []
    for step in sorted(trial.intermediate_values):
        value = trial.intermediate_values[step]
        if not isinstance(step, int) or step < 0 or not is_number(value):
            counts["skipped_intermediate"] += 1
            continue
        event = {
            "type": "metrics_recorded",
            "study": target,
            "run": name,
            "step": step,
            "values": {metric: value},
            "id": stable_id("optuna", target, "run", name, "step", step),
        }
        out.append(_stamped(event, ts))
        counts["stepped_values"] += 1
    return out


def _finals(
    trial: Any,
    target: str,
    name: str,
    names: Sequence[str],
    ts: str | None,
    counts: Counter[str],
) -> list[dict[str, Any]]:
    final = {m: v for m, v in zip(names, trial.values or ()) if is_number(v)}
    if not final:
        return []
    counts["metric_values"] += len(final)
    event = {
        "type": "metrics_recorded",
        "study": target,
        "run": name,
        "values": final,
        "id": stable_id("optuna", target, "run", name, "final"),
    }
    return [_stamped(event, ts)]


def _finish(trial: Any, target: str, name: str, status: str, ts: str | None) -> dict[str, Any]:
    fin: dict[str, Any] = {"type": "run_finished", "study": target, "run": name, "status": status}
    reason = trial.system_attrs.get("fail_reason") if trial.system_attrs else None
    if status == "failed" and isinstance(reason, str):
        fin["error"] = reason
    if trial.datetime_start is not None and trial.datetime_complete is not None:
        wall = (trial.datetime_complete - trial.datetime_start).total_seconds()
        if math.isfinite(wall):
            fin["resources"] = {"wall_s": wall}
    fin["id"] = stable_id("optuna", target, "run", name, "finished")
    return _stamped(fin, ts)


# -- the importer ------------------------------------------------------------------------


def _pick_study(optuna: Any, store: Any, study: str | None, where: str) -> str:
    names = sorted(optuna.get_all_study_names(storage=store))
    if study is None:
        if len(names) != 1:
            listed = ", ".join(names) if names else "none"
            raise ImportSourceError(
                f"the storage holds {len(names)} studies ({listed}); name one with --study",
                where=where,
            )
        return str(names[0])
    if study not in names:
        raise ImportSourceError(
            f"no Optuna study {study!r} here; the studies are: {', '.join(names) or 'none'}",
            where=where,
        )
    return study


def read_optuna(
    storage: str | os.PathLike[str],
    *,
    study: str | None = None,
    into: str | None = None,
    running: Literal["skip", "interrupted"] = "skip",
    naive_tz: str = "UTC",
    progress: Progress | None = None,
) -> ImportResult:
    """Read the Optuna study ``study`` from ``storage`` as one batch of events.

    ``storage`` is a journal file path or an Optuna storage URL; ``study`` may be omitted
    when the storage holds exactly one. ``into`` names the ledger study (default: the
    Optuna study's name). ``progress(done, total)`` counts trials.

    Raises ``MissingDependency`` when Optuna is not installed and ``ImportSourceError``
    for a missing or unreadable storage, an unknown or ambiguous study name, or a
    trial state this importer does not know.
    """
    optuna = _optuna()
    if running not in ("skip", "interrupted"):
        raise ImportSourceError(f"running must be 'skip' or 'interrupted', not {running!r}")
    where = os.fspath(storage)
    store = _storage(optuna, storage)
    name = _pick_study(optuna, store, study, where)
    target = check_name(into if into is not None else name, "study", where=where)
    ostudy = optuna.load_study(study_name=name, storage=store)
    trials = sorted(ostudy.get_trials(deepcopy=False), key=lambda t: t.number)
    names = metric_names(ostudy)
    events = [study_event(ostudy, target, trials, naive_tz=naive_tz)]
    ticker = Ticker(progress, len(trials), every=256)
    counts: Counter[str] = Counter()
    states: Counter[str] = Counter()
    for i, trial in enumerate(trials, 1):
        ticker.tick(i)
        try:
            status = trial_status(trial, running)
        except ImportSourceError as exc:
            raise ImportSourceError(exc.detail, where=where) from None
        if status is None:
            counts[f"skipped_{trial.state.name.lower()}"] += 1
            continue
        states[status] += 1
        events += trial_events(trial, target, names, status, naive_tz=naive_tz, counts=counts)
        counts["runs"] += 1
    ticker.done(len(trials))
    summary = {
        "source": where,
        "optuna_study": name,
        "study": target,
        "objectives": events[0]["objectives"],
        "trials": len(trials),
        "cases": counts["runs"],
        "runs": counts["runs"],
        "statuses": dict(sorted(states.items())),
        "metric_values": counts["metric_values"],
        "stepped_values": counts["stepped_values"],
        "skipped": {
            "running": counts["skipped_running"],
            "waiting": counts["skipped_waiting"],
            "intermediate_values": counts["skipped_intermediate"],
        },
        "times_without_offset": {"count": counts["assumed_zone"], "assumed_zone": naive_tz},
        "events": len(events),
    }
    return ImportResult(events=events, summary=summary)
