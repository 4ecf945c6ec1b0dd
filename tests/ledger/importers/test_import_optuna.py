"""Optuna importer: a study written by Optuna itself into a journal file, every value checked."""

from __future__ import annotations

import warnings

import pytest

from ledger.codec import event_from_obj
from ledger.importers.common import ImportSourceError, to_utc

optuna = pytest.importorskip("optuna")


@pytest.fixture(scope="module")
def journal(tmp_path_factory):
    """Two studies written by Optuna: single objective with every state, and two objectives."""
    from optuna.storages import JournalStorage

    journal_mod = optuna.storages.journal
    backend = getattr(journal_mod, "JournalFileBackend", None) or optuna.storages.JournalFileStorage
    path = tmp_path_factory.mktemp("optuna") / "journal.log"
    storage = JournalStorage(backend(str(path)))
    optuna.logging.set_verbosity(optuna.logging.ERROR)

    study = optuna.create_study(study_name="tune", storage=storage, direction="minimize")

    def objective(trial):
        x = trial.suggest_float("x", -10, 10)
        layers = trial.suggest_int("layers", 1, 4)
        act = trial.suggest_categorical("act", ["relu", "tanh"])
        trial.set_user_attr("note", f"n{trial.number}")
        for step in range(3):
            trial.report((x - 2) ** 2 + layers + step * 0.5, step)
        if trial.number == 3:
            raise optuna.TrialPruned()
        if trial.number == 4:
            raise RuntimeError("diverged")
        return (x - 2) ** 2 + layers + (0.0 if act == "relu" else 1.0)

    study.optimize(objective, n_trials=6, catch=(RuntimeError,))
    running = study.ask()  # started, never told: RUNNING
    running.suggest_float("x", -10, 10)
    study.enqueue_trial({"x": 0.0, "layers": 1, "act": "relu"})  # WAITING

    multi = optuna.create_study(
        study_name="pareto", storage=storage, directions=["minimize", "maximize"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # set_metric_names is marked experimental
        multi.set_metric_names(["latency", "accuracy"])
    multi.optimize(
        lambda t: (t.suggest_float("w", 0, 1), 1 - t.suggest_float("w2", 0, 1)), n_trials=3
    )
    return path, study, multi


def test_single_objective_study_every_value(journal):
    from ledger.importers.optuna_import import read_optuna

    path, study, _ = journal
    res = read_optuna(path, study="tune")
    for ev in res.events:
        event_from_obj(dict(ev))
    assert res.events[0] == {
        "type": "study_created",
        "study": "tune",
        "config": {"source": "optuna", "optuna_study": "tune", "directions": ["MINIMIZE"]},
        "objectives": [{"metric": "value", "direction": "min"}],
        # created when its first trial started; the id derives from the content, as
        # the Recorder's does (the live callback's study_created is the same event)
        "ts": to_utc(study.trials[0].datetime_start)[0],
    }
    s = res.summary
    assert (s["trials"], s["runs"], s["cases"]) == (8, 6, 6)
    assert s["statuses"] == {"completed": 4, "failed": 1, "pruned": 1}
    assert s["skipped"] == {"running": 1, "waiting": 1, "intermediate_values": 0}
    assert s["stepped_values"] == 6 * 3
    assert s["metric_values"] == 5  # Optuna gives a pruned trial its last intermediate value

    trials = {t.number: t for t in study.get_trials()}
    cases = {e["case"]: e for e in res.events if e["type"] == "case_created"}
    starts = {e["run"]: e for e in res.events if e["type"] == "run_started"}
    steps: dict[str, dict[int, float]] = {}
    finals: dict[str, dict] = {}
    fins = {e["run"]: e for e in res.events if e["type"] == "run_finished"}
    for e in res.events:
        if e["type"] == "metrics_recorded":
            if "step" in e:
                steps.setdefault(e["run"], {})[e["step"]] = e["values"]["value"]
            else:
                finals[e["run"]] = e["values"]
    assert sorted(cases) == [f"trial-{n}" for n in range(6)]
    for n in range(6):
        t, name = trials[n], f"trial-{n}"
        assert cases[name]["params"] == t.params
        assert starts[name]["case"] == name
        cfg = starts[name]["config"]
        assert cfg["number"] == n
        assert cfg["user_attrs"] == {"note": f"n{n}"}
        assert cfg["datetime_start"] == to_utc(t.datetime_start)[0] == starts[name]["ts"]
        assert cfg["datetime_complete"] == to_utc(t.datetime_complete)[0] == fins[name]["ts"]
        assert cases[name]["ts"] == starts[name]["ts"]  # the trial's own times, every event
        stamps = {
            e["ts"] for e in res.events if e.get("run") == name and e["type"] != "run_started"
        }
        assert stamps == {fins[name]["ts"]}
        assert set(cfg["distributions"]) == {"x", "layers", "act"}
        assert steps[name] == t.intermediate_values
        assert fins[name]["resources"]["wall_s"] == pytest.approx(
            (t.datetime_complete - t.datetime_start).total_seconds()
        )
        if t.values is not None:
            assert finals[name] == {"value": t.value}
        else:
            assert name not in finals
    assert {n: fins[f"trial-{n}"]["status"] for n in range(6)} == {
        0: "completed",
        1: "completed",
        2: "completed",
        3: "pruned",
        4: "failed",
        5: "completed",
    }


def test_multi_objective_directions_and_metric_names(journal):
    from ledger.importers.optuna_import import read_optuna

    path, _, multi = journal
    res = read_optuna(path, study="pareto", into="pareto-ledger")
    assert res.events[0]["study"] == "pareto-ledger"
    assert res.events[0]["objectives"] == [
        {"metric": "latency", "direction": "min"},
        {"metric": "accuracy", "direction": "max"},
    ]
    finals = {e["run"]: e["values"] for e in res.events if e["type"] == "metrics_recorded"}
    for t in multi.get_trials():
        assert finals[f"trial-{t.number}"] == {"latency": t.values[0], "accuracy": t.values[1]}
    assert all(e["study"] == "pareto-ledger" for e in res.events)


def test_running_trials_can_be_closed_as_interrupted(journal):
    from ledger.importers.optuna_import import read_optuna

    path, _, _ = journal
    res = read_optuna(path, study="tune", running="interrupted")
    assert res.summary["statuses"]["interrupted"] == 1
    assert res.summary["skipped"]["running"] == 0 and res.summary["skipped"]["waiting"] == 1
    fin = [e for e in res.events if e["type"] == "run_finished" and e["run"] == "trial-6"]
    assert fin[0]["status"] == "interrupted"


def test_study_selection_and_missing_storage(journal, tmp_path):
    from ledger.importers.optuna_import import read_optuna

    path, _, _ = journal
    with pytest.raises(ImportSourceError) as err:
        read_optuna(path)
    assert str(err.value) == (
        f"{path}: the storage holds 2 studies (pareto, tune); name one with --study"
    )
    with pytest.raises(
        ImportSourceError, match="no Optuna study 'nope' here; the studies are: pareto, tune"
    ):
        read_optuna(path, study="nope")
    missing = tmp_path / "missing.log"
    with pytest.raises(ImportSourceError, match="no such file"):
        read_optuna(missing)
    assert not missing.exists()  # reading never creates a store
    with pytest.raises(ImportSourceError, match="no such SQLite file"):
        read_optuna(f"sqlite:///{tmp_path / 'none.db'}")


def test_reimport_appends_nothing(journal, tmp_path):
    from ledger.importers.optuna_import import read_optuna

    log = pytest.importorskip("ledger.log")
    path, _, _ = journal
    first = read_optuna(path, study="tune")
    assert read_optuna(path, study="tune").events == first.events
    with log.Ledger.open(tmp_path / "x.ledger") as led:
        assert led.append(first.events).appended == len(first.events)
        assert led.append(read_optuna(path, study="tune").events).appended == 0


def test_sqlite_storage(tmp_path):
    from ledger.importers.optuna_import import read_optuna

    pytest.importorskip("sqlalchemy")
    url = f"sqlite:///{tmp_path / 'o.db'}"
    study = optuna.create_study(study_name="rdb", storage=url, direction="maximize")
    study.optimize(lambda t: t.suggest_int("k", 0, 3) * 1.5, n_trials=2)
    for source in (url, tmp_path / "o.db"):
        res = read_optuna(source)
        finals = [e["values"] for e in res.events if e["type"] == "metrics_recorded"]
        assert finals == [{"value": t.value} for t in study.get_trials()]
        assert res.events[0]["objectives"] == [{"metric": "value", "direction": "max"}]
