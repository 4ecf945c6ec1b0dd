"""Parameter importance: its documented properties, and its ordering against Optuna's
own evaluator on a real Optuna study imported into the ledger."""

from __future__ import annotations

import numpy as np
import pytest

from projections.report.importance import param_importance


def test_a_middle_optimum_counts_and_noise_does_not():
    rng = np.random.default_rng(0)
    x, y, z = rng.uniform(0, 1, (3, 400))
    objective = 10 * (x - 0.5) ** 2 + 0.5 * y  # x matters, not monotonically; z not at all
    params = [{"x": a, "y": b, "z": c, "fixed": 1} for a, b, c in zip(x, y, z)]
    imp = param_importance(params, objective)
    assert [i.param for i in imp] == ["x", "y", "z"]  # "fixed" never varies: left out
    assert imp[0].share > 0.7 and imp[2].omega2 < 0.02
    assert abs(sum(i.share for i in imp) - 1) < 1e-12
    assert np.corrcoef(x, objective)[0, 1] ** 2 < 0.05  # a correlation would have missed x


def test_categories_missing_values_and_nan_objectives():
    params = [{"opt": "adam" if i % 2 else "sgd", "lr": 0.1} for i in range(40)]
    params[3] = {"lr": 0.1}  # "opt" missing: a group of its own
    objective = [1.0 if p.get("opt") == "adam" else 5.0 for p in params]
    objective[5] = float("nan")
    imp = param_importance(params, objective)
    assert [(i.param, i.kind, i.groups) for i in imp] == [("opt", "category", 3)]
    assert imp[0].share == 1.0 and param_importance([], []) == []


def test_ordering_agrees_with_optunas_evaluator(tmp_path):
    optuna = pytest.importorskip("optuna")
    from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances

    from ledger import Ledger
    from ledger.importers.optuna_import import read_optuna
    from projections.report.context import Context, Options
    from projections.report.search_view import _history

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    journal = tmp_path / "journal.log"
    backend = getattr(optuna.storages.journal, "JournalFileBackend", None)
    storage = optuna.storages.JournalStorage(backend(str(journal)))
    study = optuna.create_study(
        study_name="tune", storage=storage, sampler=optuna.samplers.RandomSampler(seed=1)
    )

    def objective(trial):
        x = trial.suggest_float("x", 0, 1)
        y = trial.suggest_float("y", 0, 1)
        trial.suggest_float("z", 0, 1)
        trial.suggest_categorical("opt", ["adam", "sgd"])
        return 10 * x + 3 * y  # x matters most, then y; z and opt not at all

    study.optimize(objective, n_trials=100)
    theirs = get_param_importances(study, evaluator=PedAnovaImportanceEvaluator())
    with Ledger(tmp_path / "o.ledger") as led:
        led.append(read_optuna(journal, study="tune").events)
        ctx = Context(led, "tune", None, Options())
        _, _, runs, values = _history(ctx)
        params = [ctx.view.dag.nodes[r.case].params or {} for r in runs]
    ours = {i.param: i.share for i in param_importance(params, values)}
    assert len(runs) == 100 and set(ours) == set(theirs) == {"x", "y", "z", "opt"}
    # the same order where the effects are real, and the same verdict of "no effect"
    assert list(ours)[:2] == list(theirs)[:2] == ["x", "y"]
    assert {p for p, v in ours.items() if v < 0.02} == {p for p, v in theirs.items() if v < 0.02}
