"""The Optuna callback: a real study recorded live equals the same study imported."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from ledger import Ledger  # noqa: E402
from ledger.importers.optuna_import import read_optuna  # noqa: E402
from ledger.integrations.optuna import LedgerCallback  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
optuna.logging.set_verbosity(optuna.logging.ERROR)


def objective(trial):
    """Two params, five intermediate values, a user attribute; some trials prune (the
    median pruner), one in ten fails (caught)."""
    x = trial.suggest_float("x", -5, 5)
    act = trial.suggest_categorical("act", ["relu", "tanh"])
    trial.set_user_attr("width", 8 * (1 + trial.number % 3))
    loss = (x - 1) ** 2 + (0.5 if act == "tanh" else 0.0)
    for step in range(5):
        trial.report(loss + 1.0 / (step + 1), step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    if trial.number % 10 == 7:
        raise ValueError("diverged")
    return loss


def _storage(path: Path):
    journal = optuna.storages.journal
    backend = getattr(journal, "JournalFileBackend", None) or optuna.storages.JournalFileStorage
    return optuna.storages.JournalStorage(backend(str(path)))


def _study(path: Path, name: str = "tpe"):
    return optuna.create_study(
        study_name=name,
        storage=_storage(path),
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=7, n_startup_trials=8),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
        load_if_exists=True,
    )


def _import(storage: Path, ledger: str, study: str) -> None:
    res = read_optuna(storage, study=study)
    with Ledger(ledger) as led:
        led.append(res.events)


def _export(ledger: str, study: str, out: Path) -> dict[str, bytes]:
    from projections.export.api import export_study

    with Ledger(ledger, readonly=True) as led:
        export_study(led, study, out, journal=False)
    folder = out / study
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _manifest_without_ledger_id(data: bytes) -> dict:
    doc = json.loads(data)
    doc.pop("ledger_id")
    return doc


def test_live_recording_and_import_export_the_same_bytes(tmp_path):
    storage = tmp_path / "journal.log"
    live = str(tmp_path / "live.ledger")
    study = _study(storage)
    with LedgerCallback(live) as cb:
        study.optimize(objective, n_trials=30, callbacks=[cb], catch=(ValueError,))
    states = {t.state.name for t in study.trials}
    assert states == {"COMPLETE", "PRUNED", "FAIL"}  # every kind of finished trial

    imported = str(tmp_path / "imported.ledger")
    _import(storage, imported, "tpe")
    a = _export(live, "tpe", tmp_path / "a")
    b = _export(imported, "tpe", tmp_path / "b")
    assert sorted(a) == sorted(b) and "metrics.parquet" in a and "report.xlsx" in a
    for name in a:
        if name == "manifest.json":  # the two ledgers' ids differ; the head hashes do not
            assert _manifest_without_ledger_id(a[name]) == _manifest_without_ledger_id(b[name])
        else:
            assert a[name] == b[name], name

    # what the export says is what Optuna says, times included
    doc = json.loads(a["study.json"])
    runs = {r["run"]: r for r in doc["runs"]}
    assert len(runs) == 30
    for t in study.trials:
        run = runs[f"trial-{t.number}"]
        assert (
            run["status"]
            == {"COMPLETE": "completed", "PRUNED": "pruned", "FAIL": "failed"}[t.state.name]
        )
        assert run["started_ts"].startswith(t.datetime_start.isoformat())
        assert run["finished_ts"].startswith(t.datetime_complete.isoformat())
        assert run["config"]["user_attrs"] == {"width": t.user_attrs["width"]}
    assert doc["objectives"] == [{"direction": "min", "metric": "value"}]

    # importing what was recorded live appends nothing
    with Ledger(live) as led:
        head = led.head
        res = led.append(read_optuna(storage, study="tpe").events)
        assert (res.appended, led.head) == (0, head)


def _contents(ledger: str, study: str) -> tuple[set, set, set]:
    """Cases with params, runs with status, values with steps: what must agree whatever
    the order the trials finished in."""
    from projections.sql import tables

    with Ledger(ledger, readonly=True) as led:
        t = tables(led, study=study, only=["cases", "runs", "metrics"])
    cases = {(r["case"], r["param.x"], r["param.act"]) for r in t["cases"].to_pylist()}
    runs = {(r["run"], r["status"], r["wall_s"]) for r in t["runs"].to_pylist()}
    values = {(r["run"], r["metric"], r["step"], r["value"]) for r in t["metrics"].to_pylist()}
    return cases, runs, values


def test_n_jobs_2_records_the_same_cases_runs_and_values(tmp_path):
    pytest.importorskip("duckdb")
    storage = tmp_path / "journal.log"
    live = str(tmp_path / "live.ledger")
    study = _study(storage, "threads")
    cb = LedgerCallback(live)
    study.optimize(objective, n_trials=30, n_jobs=2, callbacks=[cb], catch=(ValueError,))
    cb.close()
    imported = str(tmp_path / "imported.ledger")
    _import(storage, imported, "threads")
    live_contents = _contents(live, "threads")
    assert live_contents == _contents(imported, "threads")
    assert len(live_contents[1]) == 30


def test_multi_objective_with_metric_names(tmp_path):
    storage = tmp_path / "journal.log"
    live = str(tmp_path / "live.ledger")
    study = optuna.create_study(
        study_name="pareto",
        storage=_storage(storage),
        directions=["minimize", "maximize"],
        sampler=optuna.samplers.RandomSampler(seed=1),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # experimental in some Optuna versions
        study.set_metric_names(["latency", "accuracy"])
    cb = LedgerCallback(live, study="into-ledger")
    study.optimize(
        lambda t: (t.suggest_float("w", 0, 1), 1 - t.suggest_float("v", 0, 1)),
        n_trials=6,
        callbacks=[cb],
    )
    cb.close()
    imported = str(tmp_path / "imported.ledger")
    res = read_optuna(storage, study="pareto", into="into-ledger")
    with Ledger(imported) as led:
        led.append(res.events)
    a = _export(live, "into-ledger", tmp_path / "a")
    b = _export(imported, "into-ledger", tmp_path / "b")
    assert a["study.json"] == b["study.json"] and a["metrics.csv"] == b["metrics.csv"]
    doc = json.loads(a["study.json"])
    assert doc["objectives"] == [
        {"direction": "min", "metric": "latency"},
        {"direction": "max", "metric": "accuracy"},
    ]
    finals = {r["run"]: {f["metric"]: f["value"] for f in r["finals"]} for r in doc["runs"]}
    for t in study.trials:
        assert finals[f"trial-{t.number}"] == {"accuracy": t.values[1], "latency": t.values[0]}


WORKER = """
import sys, optuna
sys.path.insert(0, {root!r})
from tests.ledger.integrations.test_optuna import _study, objective
from ledger.integrations.optuna import LedgerCallback
optuna.logging.set_verbosity(optuna.logging.ERROR)
study = _study(__import__("pathlib").Path({storage!r}), "shared")
with LedgerCallback({ledger!r}) as cb:
    study.optimize(objective, n_trials=8, callbacks=[cb], catch=(ValueError,))
"""


@pytest.mark.slow
def test_several_processes_sharing_one_storage(tmp_path):
    pytest.importorskip("duckdb")
    storage = tmp_path / "journal.log"
    live = str(tmp_path / "live.ledger")
    code = WORKER.format(root=str(ROOT), storage=str(storage), ledger=live)
    _study(storage, "shared")  # created once, before the workers load it
    procs = [
        subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    imported = str(tmp_path / "imported.ledger")
    _import(storage, imported, "shared")
    live_contents = _contents(live, "shared")
    assert live_contents == _contents(imported, "shared")
    assert len(live_contents[1]) == 16
    with Ledger(live, readonly=True) as led:
        assert led.verify().ok
