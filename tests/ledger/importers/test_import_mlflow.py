"""MLflow importer: runs logged by MLflow itself into a SQLite store, every value checked."""

from __future__ import annotations

import importlib.util
import json

import pytest

from ledger.codec import event_from_obj
from ledger.importers.common import ImportSourceError, utc_from_millis

# Looked up, not imported: importing MLflow takes over a second, which collection would
# pay in every process (pytest-xdist workers included) even when no test here runs.
MISSING = [m for m in ("mlflow", "sqlalchemy", "alembic") if importlib.util.find_spec(m) is None]
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.skipif(bool(MISSING), reason=f"not installed: {', '.join(MISSING)}"),
]

T0 = 1_700_000_000_000  # ms


@pytest.fixture(scope="module")
def store(tmp_path_factory, new_mlflow_store):
    """One SQLite tracking store (a copy of the session's migrated template)."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow") / "mlruns.db"
    uri = new_mlflow_store(path)
    c = MlflowClient(uri)
    exp = c.create_experiment("sweep", artifact_location=str(path.parent / "art"))
    parent = c.create_run(exp, run_name="parent", start_time=T0)
    pid = parent.info.run_id
    c.log_param(pid, "lr", 0.1)
    c.log_param(pid, "optimizer", "adam")
    c.set_tag(pid, "mlflow.source.git.commit", "abc123")
    c.log_metric(pid, "loss", 1.5, step=0, timestamp=T0 + 1000)
    c.log_metric(pid, "loss", 1.25, step=1, timestamp=T0 + 2000)
    c.log_metric(pid, "acc", 0.5, step=1, timestamp=T0 + 2000)
    c.log_metric(pid, "loss", 1.2, step=1, timestamp=T0 + 3000)  # re-logged: supersedes
    c.set_terminated(pid, "FINISHED", end_time=T0 + 10_000)

    child = c.create_run(
        exp, run_name="child", start_time=T0 + 4000, tags={"mlflow.parentRunId": pid}
    )
    cid = child.info.run_id
    c.log_param(cid, "lr", 0.05)
    c.log_metric(cid, "loss", float("nan"), step=0, timestamp=T0 + 5000)
    c.set_terminated(cid, "FAILED", end_time=T0 + 6000)

    killed = c.create_run(exp, run_name="killed", start_time=T0 + 7000)
    c.set_terminated(killed.info.run_id, "KILLED", end_time=T0 + 8000)
    live = c.create_run(exp, run_name="live", start_time=T0 + 9000)  # RUNNING

    other = c.create_experiment("other")
    o = c.create_run(other, run_name="o", start_time=T0)
    c.log_metric(o.info.run_id, "score", 3.0, step=0, timestamp=T0)
    c.set_terminated(o.info.run_id, "FINISHED", end_time=T0 + 1)
    return uri, {
        "parent": pid,
        "child": cid,
        "killed": killed.info.run_id,
        "live": live.info.run_id,
        "other": o.info.run_id,
    }


def test_experiment_runs_metrics_parents_statuses(store):
    from ledger.importers.mlflow_import import read_mlflow

    uri, ids = store
    res = read_mlflow(uri, experiments=["sweep"])
    for ev in res.events:
        event_from_obj(dict(ev))
    pid, cid, kid = ids["parent"], ids["child"], ids["killed"]
    s = res.summary
    assert s["studies"] == ["sweep"] and s["runs"] == 3
    assert s["statuses"] == {"cancelled": 1, "completed": 1, "failed": 1}
    assert s["skipped"]["running"] == 1
    assert s["stepped_values"] == 5 and s["metric_values"] == 3

    assert res.events[0] == {"type": "study_created", "study": "sweep", "id": "study:sweep"}
    cases = {e["case"]: e for e in res.events if e["type"] == "case_created"}
    assert set(cases) == {pid, cid, kid}
    assert cases[pid]["params"] == {"lr": "0.1", "optimizer": "adam"}  # MLflow params are text
    assert "parents" not in cases[pid]
    assert cases[cid]["parents"] == [pid] and cases[cid]["stage"] == 1
    order = [e["case"] for e in res.events if e["type"] == "case_created"]
    assert order.index(pid) < order.index(cid)

    starts = {e["run"]: e for e in res.events if e["type"] == "run_started"}
    assert starts[pid]["ts"] == "2023-11-14T22:13:20Z" == utc_from_millis(T0)
    assert starts[pid]["config"]["run_name"] == "parent"
    assert starts[pid]["config"]["end_time"] == utc_from_millis(T0 + 10_000)
    assert starts[pid]["provenance"] == {"code_commit": "abc123"}
    assert starts[cid]["config"]["tags"]["mlflow.parentRunId"] == pid

    steps = [
        (e["run"], e["step"], e["ts"], e["values"])
        for e in res.events
        if e["type"] == "metrics_recorded" and "step" in e
    ]
    parent_steps = [x[1:] for x in steps if x[0] == pid]
    assert parent_steps == [
        (0, utc_from_millis(T0 + 1000), {"loss": 1.5}),
        (1, utc_from_millis(T0 + 2000), {"acc": 0.5, "loss": 1.25}),
        (1, utc_from_millis(T0 + 3000), {"loss": 1.2}),  # later event: supersedes 1.25
    ]
    child_steps = [x[1:] for x in steps if x[0] == cid]
    assert len(child_steps) == 1 and child_steps[0][2]["loss"] != child_steps[0][2]["loss"]  # NaN

    finals = {
        e["run"]: e["values"]
        for e in res.events
        if e["type"] == "metrics_recorded" and "step" not in e
    }
    assert finals[pid] == {"acc": 0.5, "loss": 1.2}
    assert kid not in finals
    fins = {e["run"]: e for e in res.events if e["type"] == "run_finished"}
    assert (fins[pid]["status"], fins[cid]["status"], fins[kid]["status"]) == (
        "completed",
        "failed",
        "cancelled",
    )
    assert fins[pid]["resources"] == {"wall_s": 10.0}
    assert fins[pid]["ts"] == utc_from_millis(T0 + 10_000)


def test_all_experiments_and_study_option(store):
    from ledger.importers.mlflow_import import read_mlflow

    uri, ids = store
    res = read_mlflow(uri)
    assert res.summary["studies"] == ["other", "sweep"]  # Default has no runs: left out
    with pytest.raises(ImportSourceError, match="2 experiments are selected"):
        read_mlflow(uri, study="x")
    one = read_mlflow(uri, experiments=["other"], study="renamed")
    assert {e["study"] for e in one.events} == {"renamed"}
    with pytest.raises(ImportSourceError, match="no active experiment named"):
        read_mlflow(uri, experiments=["nope"])


def test_running_runs_closed_as_interrupted_and_reimport(store, tmp_path):
    from ledger.importers.mlflow_import import read_mlflow

    uri, ids = store
    res = read_mlflow(uri, experiments=["sweep"], running="interrupted")
    fins = {e["run"]: e["status"] for e in res.events if e["type"] == "run_finished"}
    assert fins[ids["live"]] == "interrupted"
    first = read_mlflow(uri, experiments=["sweep"])
    again = read_mlflow(uri, experiments=["sweep"]).events
    assert json.dumps(again, sort_keys=True) == json.dumps(first.events, sort_keys=True)  # NaN
    log = pytest.importorskip("ledger.log")
    with log.Ledger.open(tmp_path / "x.ledger") as led:
        assert led.append(first.events).appended == len(first.events)
        assert led.append(read_mlflow(uri, experiments=["sweep"]).events).appended == 0


def test_missing_store_is_not_created(tmp_path):
    from ledger.importers.mlflow_import import read_mlflow

    db = tmp_path / "none.db"
    with pytest.raises(ImportSourceError, match="no such SQLite file"):
        read_mlflow(f"sqlite:///{db}")
    assert not db.exists()
