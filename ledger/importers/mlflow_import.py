"""MLflow experiments, read through MLflow's own client, as ledger events.

Mapping: an experiment is a study (named after the experiment); each MLflow run is a
case with the run's params (MLflow keeps params as text, so they stay text) and one
ledger run, both with the MLflow run id; a parent run (tag ``mlflow.parentRunId``) is
the case's DAG parent and the case's stage is its depth; every metric's full history
is recorded with its steps and timestamps, one event per (timestamp, step) in time
order so a re-logged value supersedes the earlier one exactly as it did in MLflow; the
run's latest values (what MLflow shows) are the final metrics; the status is mapped
FINISHED -> completed, FAILED -> failed, KILLED -> cancelled.

RUNNING and SCHEDULED runs are skipped and counted (``running="interrupted"`` closes
RUNNING ones as interrupted), for the reason given in ``optuna_import``: a live run
still changes, and recording it half-way would make the next import conflict.
Deleted runs and experiments are not read.
"""

from __future__ import annotations

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
    study_created,
    utc_from_millis,
)

__all__ = ["RUN_STATUS", "read_mlflow"]

RUN_STATUS = {"FINISHED": "completed", "FAILED": "failed", "KILLED": "cancelled"}
PARENT_TAG = "mlflow.parentRunId"


def _client(tracking_uri: str) -> Any:
    try:
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        raise MissingDependency("MLflow", "mlflow", exc) from None
    if tracking_uri.startswith("sqlite:///"):
        db = tracking_uri[len("sqlite:///") :]
        if db and not Path(db).exists():
            # MlflowClient would create an empty store: an import must never write
            raise ImportSourceError("no such SQLite file", where=db)
    try:
        return MlflowClient(tracking_uri=tracking_uri)
    except Exception as exc:
        raise ImportSourceError(
            f"cannot open the MLflow tracking store: {exc}", where=tracking_uri
        ) from None


def _experiments(client: Any, wanted: Sequence[str], where: str) -> tuple[list[Any], bool]:
    found: list[Any] = []
    token = None
    while True:
        page = client.search_experiments(max_results=1000, page_token=token)
        found.extend(page)
        token = page.token
        if not token:
            break
    if not wanted:
        return sorted(found, key=lambda e: (e.name, e.experiment_id)), False
    chosen: list[Any] = []
    for w in wanted:
        hits = [e for e in found if e.name == w or e.experiment_id == w]
        if not hits:
            names = ", ".join(sorted(e.name for e in found)) or "none"
            raise ImportSourceError(
                f"no active experiment named (or with id) {w!r}; the experiments are: {names}",
                where=where,
            )
        chosen.extend(h for h in hits if h not in chosen)
    return chosen, True


def _runs(client: Any, experiment_id: str) -> list[Any]:
    out: list[Any] = []
    token = None
    while True:
        page = client.search_runs([experiment_id], max_results=1000, page_token=token)
        out.extend(page)
        token = page.token
        if not token:
            break
    return out


def _order(runs: list[Any]) -> tuple[list[Any], dict[str, int], dict[str, str]]:
    """Runs with every parent before its children, each run's depth and kept parents."""
    by_id = {r.info.run_id: r for r in runs}
    parent: dict[str, str] = {}
    for r in runs:
        p = r.data.tags.get(PARENT_TAG)
        if p and p in by_id and p != r.info.run_id:
            parent[r.info.run_id] = p
    depth: dict[str, int] = {}
    for rid in by_id:
        d, seen, p = 0, {rid}, parent.get(rid)
        while p is not None:
            if p in seen:  # a cycle cannot come from MLflow; cut it at this run
                parent.pop(rid, None)
                d = 0
                break
            seen.add(p)
            d += 1
            p = parent.get(p)
        depth[rid] = d
    key = {rid: (depth[rid], by_id[rid].info.start_time or 0, rid) for rid in by_id}
    ordered = sorted(runs, key=lambda r: key[r.info.run_id])
    return ordered, depth, parent


def read_mlflow(
    tracking_uri: str,
    *,
    experiments: Sequence[str] = (),
    study: str | None = None,
    running: Literal["skip", "interrupted"] = "skip",
    progress: Progress | None = None,
) -> ImportResult:
    """Read MLflow experiments (names or ids; default: every active one with runs).

    ``study`` names the ledger study and needs exactly one experiment.
    ``progress(done, total)`` counts runs.

    Raises ``MissingDependency`` when MLflow is not installed and ``ImportSourceError``
    for a missing store, an unknown experiment, ``study`` with several experiments, or a
    run status this importer does not know.
    """
    if running not in ("skip", "interrupted"):
        raise ImportSourceError(f"running must be 'skip' or 'interrupted', not {running!r}")
    client = _client(tracking_uri)
    chosen, explicit = _experiments(client, experiments, tracking_uri)
    per_exp = [(e, _runs(client, e.experiment_id)) for e in chosen]
    if not explicit:
        per_exp = [(e, rs) for e, rs in per_exp if rs]
    if study is not None and len(per_exp) != 1:
        raise ImportSourceError(
            f"study {study!r} names one target study but {len(per_exp)} experiments are "
            "selected; pick one with --experiment",
            where=tracking_uri,
        )
    total = sum(len(rs) for _, rs in per_exp)
    ticker = Ticker(progress, total, every=16)
    events: list[dict[str, Any]] = []
    counts: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    studies: list[str] = []
    done = 0
    for exp, runs in per_exp:
        target = check_name(study or exp.name, "study", where=tracking_uri)
        studies.append(target)
        events.append(study_created(target))
        ordered, depth, parent = _order(runs)
        skipped_ids: set[str] = set()
        for run in ordered:
            done += 1
            ticker.tick(done)
            info = run.info
            rid = info.run_id
            state = info.status
            if state in RUN_STATUS:
                status = RUN_STATUS[state]
            elif state == "RUNNING" and running == "interrupted":
                status = "interrupted"
            elif state in ("RUNNING", "SCHEDULED"):
                counts[f"skipped_{state.lower()}"] += 1
                skipped_ids.add(rid)
                continue
            else:
                raise ImportSourceError(
                    f"run {rid} has status {state}, which this importer does not know",
                    where=tracking_uri,
                )
            statuses[status] += 1
            events.extend(
                _run_events(
                    client, target, run, status, depth[rid], parent.get(rid), skipped_ids, counts
                )
            )
            counts["runs"] += 1
        counts["missing_parents"] += sum(
            1 for r in runs if r.data.tags.get(PARENT_TAG) and r.info.run_id not in parent
        )
    ticker.done(done)
    summary = {
        "source": tracking_uri,
        "studies": studies,
        "experiments": [e.name for e, _ in per_exp],
        "runs": counts["runs"],
        "cases": counts["runs"],
        "statuses": dict(sorted(statuses.items())),
        "metric_values": counts["metric_values"],
        "stepped_values": counts["stepped_values"],
        "superseded_in_history": counts["superseded"],
        "skipped": {
            "running": counts["skipped_running"],
            "scheduled": counts["skipped_scheduled"],
            "negative_steps": counts["negative_steps"],
            "parents_not_imported": counts["missing_parents"] + counts["orphaned"],
        },
        "events": len(events),
    }
    return ImportResult(events=events, summary=summary)


def _run_events(
    client: Any,
    study: str,
    run: Any,
    status: str,
    stage: int,
    parent: str | None,
    skipped_ids: set[str],
    counts: Counter[str],
) -> list[dict[str, Any]]:
    """One MLflow run as events: its case, run_started, its metric history (one event
    per timestamp and step), its final values and run_finished."""
    info, data = run.info, run.data
    rid = info.run_id
    base = ("mlflow", study, "run", rid)
    start, end = utc_from_millis(info.start_time), utc_from_millis(info.end_time)
    out = [
        _case_event(study, run, stage, parent, skipped_ids, counts),
        _started_event(study, run, start, end),
    ]
    out.extend(_history_events(client, study, rid, sorted(data.metrics), counts))
    final = {k: v for k, v in sorted(data.metrics.items()) if is_number(v)}
    if final:
        ev: dict[str, Any] = {
            "type": "metrics_recorded",
            "study": study,
            "run": rid,
            "values": final,
            "id": stable_id(*base, "final"),
        }
        if end:
            ev["ts"] = end
        out.append(ev)
        counts["metric_values"] += len(final)
    fin: dict[str, Any] = {"type": "run_finished", "study": study, "run": rid, "status": status}
    if info.start_time is not None and info.end_time is not None:
        fin["resources"] = {"wall_s": (info.end_time - info.start_time) / 1000}
    fin["id"] = stable_id(*base, "finished")
    if end:
        fin["ts"] = end
    out.append(fin)
    return out


def _case_event(
    study: str,
    run: Any,
    stage: int,
    parent: str | None,
    skipped_ids: set[str],
    counts: Counter[str],
) -> dict[str, Any]:
    """The run's case: a child of its parent run's case when that parent was imported."""
    rid, params = run.info.run_id, run.data.params
    case: dict[str, Any] = {"type": "case_created", "study": study, "case": rid}
    if parent is not None and parent not in skipped_ids:
        case["parents"] = [parent]
        case["stage"] = stage
    elif parent is not None:
        counts["orphaned"] += 1
    if params:
        case["params"] = dict(sorted(params.items()))
    case["id"] = stable_id("mlflow", study, "case", rid)
    return case


def _started_event(study: str, run: Any, start: str | None, end: str | None) -> dict[str, Any]:
    """run_started, with the run's MLflow attributes and tags as its config."""
    info, data = run.info, run.data
    rid = info.run_id
    config: dict[str, Any] = {"experiment_id": info.experiment_id}
    if info.run_name:
        config["run_name"] = info.run_name
    if info.user_id:
        config["user_id"] = info.user_id
    if start:
        config["start_time"] = start
    if end:
        config["end_time"] = end
    if data.tags:
        config["tags"] = dict(sorted(data.tags.items()))
    started: dict[str, Any] = {
        "type": "run_started",
        "study": study,
        "case": rid,
        "run": rid,
        "config": config,
    }
    commit = data.tags.get("mlflow.source.git.commit")
    if commit:
        started["provenance"] = {"code_commit": commit}
    started["id"] = stable_id("mlflow", study, "run", rid, "started")
    if start:
        started["ts"] = start
    return started


def _history_events(
    client: Any, study: str, rid: str, keys: list[str], counts: Counter[str]
) -> list[dict[str, Any]]:
    """The metric history: every (timestamp, step) is one event, in time order, so
    supersession replays as logged. Negative steps are skipped and counted."""
    groups: dict[tuple[int, int], dict[str, int | float]] = {}
    for key in keys:
        for m in client.get_metric_history(rid, key):
            if m.step is None or m.step < 0:
                counts["negative_steps"] += 1
                continue
            if not is_number(m.value):
                continue
            bucket = groups.setdefault((int(m.timestamp or 0), int(m.step)), {})
            if key in bucket:
                counts["superseded"] += 1
            bucket[key] = m.value
            counts["stepped_values"] += 1
    return [
        {
            "type": "metrics_recorded",
            "study": study,
            "run": rid,
            "step": step,
            "values": dict(sorted(groups[(ts_ms, step)].items())),
            "id": stable_id("mlflow", study, "run", rid, "step", step, "at", ts_ms),
            "ts": utc_from_millis(ts_ms),
        }
        for ts_ms, step in sorted(groups)
    ]
