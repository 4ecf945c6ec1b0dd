"""An Optuna study, read through Optuna's own storage classes, as ledger events.

Mapping: the study's directions are the ledger study's objectives (metric names from
``study.metric_names``, else Optuna's own ``value`` / ``values_0``, ``values_1``...);
each trial is a case ``trial-<number>`` with the trial's params and one run of the same
id; intermediate values are the objective's stepped series; the objective value(s) are
the final metrics; the state is the run's status (COMPLETE -> completed, PRUNED ->
pruned, FAIL -> failed).

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

__all__ = ["STATE_STATUS", "read_optuna"]

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


def _metric_names(study: Any) -> list[str]:
    n = len(study.directions)
    names = getattr(study, "metric_names", None)
    if names and len(names) == n:
        return [str(x) for x in names]
    return ["value"] if n == 1 else [f"values_{i}" for i in range(n)]


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
    names = sorted(optuna.get_all_study_names(storage=store))
    if study is None:
        if len(names) != 1:
            listed = ", ".join(names) if names else "none"
            raise ImportSourceError(
                f"the storage holds {len(names)} studies ({listed}); name one with --study",
                where=where,
            )
        study = names[0]
    elif study not in names:
        raise ImportSourceError(
            f"no Optuna study {study!r} here; the studies are: {', '.join(names) or 'none'}",
            where=where,
        )
    target = check_name(into if into is not None else study, "study", where=where)
    ostudy = optuna.load_study(study_name=study, storage=store)
    metric_names = _metric_names(ostudy)
    directions = [d.name for d in ostudy.directions]
    objectives = [
        {"metric": m, "direction": "min" if d == "MINIMIZE" else "max"}
        for m, d in zip(metric_names, directions)
    ]
    events: list[dict[str, Any]] = [
        {
            "type": "study_created",
            "study": target,
            "config": {"source": "optuna", "optuna_study": study, "directions": directions},
            "objectives": objectives,
            "id": stable_id("optuna", target, "study"),
        }
    ]

    trials = sorted(ostudy.get_trials(deepcopy=False), key=lambda t: t.number)
    ticker = Ticker(progress, len(trials), every=256)
    counts: Counter[str] = Counter()
    states: Counter[str] = Counter()
    assumed = 0
    for i, trial in enumerate(trials, 1):
        ticker.tick(i)
        state = trial.state.name
        if state in STATE_STATUS:
            status = STATE_STATUS[state]
        elif state == "RUNNING" and running == "interrupted":
            status = "interrupted"
        elif state in ("RUNNING", "WAITING"):
            counts[f"skipped_{state.lower()}"] += 1
            continue
        else:
            raise ImportSourceError(
                f"trial {trial.number} has state {state}, which this importer does not know",
                where=where,
            )
        states[status] += 1
        name = f"trial-{trial.number}"
        base = ("optuna", target, "run", name)
        events.append(
            {
                "type": "case_created",
                "study": target,
                "case": name,
                "params": dict(sorted(trial.params.items())),
                "id": stable_id("optuna", target, "case", name),
            }
        )
        start = end = None
        if trial.datetime_start is not None:
            start, a = to_utc(trial.datetime_start, naive_tz=naive_tz)
            assumed += a
        if trial.datetime_complete is not None:
            end, a = to_utc(trial.datetime_complete, naive_tz=naive_tz)
            assumed += a
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
        started: dict[str, Any] = {
            "type": "run_started",
            "study": target,
            "case": name,
            "run": name,
            "config": config,
            "id": stable_id(*base, "started"),
        }
        if start:
            started["ts"] = start
        events.append(started)

        for step in sorted(trial.intermediate_values):
            value = trial.intermediate_values[step]
            if not isinstance(step, int) or step < 0 or not is_number(value):
                counts["skipped_intermediate"] += 1
                continue
            events.append(
                {
                    "type": "metrics_recorded",
                    "study": target,
                    "run": name,
                    "step": step,
                    "values": {metric_names[0]: value},
                    "id": stable_id(*base, "step", step),
                }
            )
            counts["stepped_values"] += 1

        values = trial.values
        if values:
            final = {m: v for m, v in zip(metric_names, values) if is_number(v)}
            if final:
                ev: dict[str, Any] = {
                    "type": "metrics_recorded",
                    "study": target,
                    "run": name,
                    "values": final,
                    "id": stable_id(*base, "final"),
                }
                if end:
                    ev["ts"] = end
                events.append(ev)
                counts["metric_values"] += len(final)

        fin: dict[str, Any] = {
            "type": "run_finished",
            "study": target,
            "run": name,
            "status": status,
        }
        reason = trial.system_attrs.get("fail_reason") if trial.system_attrs else None
        if status == "failed" and isinstance(reason, str):
            fin["error"] = reason
        if trial.datetime_start is not None and trial.datetime_complete is not None:
            wall = (trial.datetime_complete - trial.datetime_start).total_seconds()
            if math.isfinite(wall):
                fin["resources"] = {"wall_s": wall}
        fin["id"] = stable_id(*base, "finished")
        if end:
            fin["ts"] = end
        events.append(fin)
        counts["runs"] += 1
    ticker.done(len(trials))

    summary = {
        "source": where,
        "optuna_study": study,
        "study": target,
        "objectives": objectives,
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
        "times_without_offset": {"count": assumed, "assumed_zone": naive_tz},
        "events": len(events),
    }
    return ImportResult(events=events, summary=summary)
