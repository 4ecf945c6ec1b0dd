from __future__ import annotations

import pytest

from ledger import Ledger, RuleViolation
from ledger.recorder import Recorder
from ledger.summary import fold_studies


def _events(path, study="sw"):
    with Ledger(path, create=False) as ledger:
        return [e for e in ledger.read(study=study)]


def test_recorder_records_a_study(ledger_path):
    with Recorder(
        ledger_path,
        study="sw",
        config={"lr": 0.1},
        objectives=[{"metric": "loss", "direction": "min"}],
    ) as rec:
        base = rec.case("base", params={"lr": 0.1})
        child = rec.derive(base, eco="halve_lr", params={"lr": 0.05})
        assert (child.id, child.stage) == ("base+halve_lr", 1)
        with child.run(seed=1) as run:
            run.log({"loss": 0.5}, step=0)
            run.log({"loss": 0.31}, step=1)
            run.log({"accuracy": 0.93})
    types = [e.event.TYPE for e in _events(ledger_path)]
    assert types == [
        "study_created",
        "case_created",
        "eco_applied",
        "run_started",
        "metrics_recorded",
        "metrics_recorded",
        "metrics_recorded",
        "run_finished",
    ]
    evs = _events(ledger_path)
    assert evs[3].event.run == "base+halve_lr~s1#1" and evs[3].event.attempt == 1
    # the final value is committed right before (and in the same batch as) run_finished
    assert evs[6].event.step is None and evs[6].event.values == {"accuracy": 0.93}
    assert evs[7].event.status == "completed" and "wall_s" in evs[7].event.resources
    # each event carries the time of its call, not of the commit (test_recorder_ts.py)


def test_failed_run_carries_the_exception_text(ledger_path):
    with Recorder(ledger_path, study="sw") as rec:
        case = rec.case("c")
        with pytest.raises(ZeroDivisionError):
            with case.run() as run:
                run.log({"partial": 1.0})
                _ = 1 / 0
    fin = [e.event for e in _events(ledger_path) if e.event.TYPE == "run_finished"][0]
    assert (fin.status, fin.error) == ("failed", "ZeroDivisionError: division by zero")
    # the final value logged before the failure is still recorded with the finish
    finals = [e.event for e in _events(ledger_path) if e.event.TYPE == "metrics_recorded"]
    assert finals[0].values == {"partial": 1.0}


def test_redeclaring_is_a_noop_and_attempts_continue(ledger_path):
    for _ in range(2):
        with Recorder(ledger_path, study="sw", config={"a": 1}) as rec:
            c = rec.case("c", params={"p": 1})
            with c.run(seed=3):
                pass
    runs = [e.event.run for e in _events(ledger_path) if e.event.TYPE == "run_started"]
    assert runs == ["c~s3#1", "c~s3#2"]
    assert sum(e.event.TYPE == "case_created" for e in _events(ledger_path)) == 1


def test_case_with_other_params_is_refused(ledger_path):
    with Recorder(ledger_path, study="sw") as rec:
        rec.case("c", params={"p": 1})
    with Recorder(ledger_path, study="sw") as rec:
        with pytest.raises(RuleViolation, match="already exists in study 'sw' with other params"):
            rec.case("c", params={"p": 2})


def test_study_with_other_config_is_refused(ledger_path):
    Recorder(ledger_path, study="sw", config={"a": 1}).close()
    with pytest.raises(RuleViolation, match="already exists .* with other content"):
        Recorder(ledger_path, study="sw", config={"a": 2})


def test_buffering_commits_in_batches(ledger_path):
    with Recorder(ledger_path, study="sw", batch_size=100, interval=0) as rec:
        run = rec.case("c").run()
        for i in range(250):
            run.log({"x": i}, step=i)
        with Ledger(ledger_path, create=False) as ledger:
            # study (1) committed at start; then two full batches of 100 (case, run, 198
            # metrics); the last 52 metrics are still buffered
            assert ledger.head.seq == 201
        run.finish()
    with Ledger(ledger_path, create=False) as ledger:
        assert ledger.head.seq == 1 + 1 + 1 + 250 + 1


def test_durable_commits_every_event(ledger_path):
    with Recorder(ledger_path, study="sw", durable=True) as rec:
        run = rec.case("c").run()
        run.log({"x": 1}, step=0)
        with Ledger(ledger_path, create=False) as ledger:
            assert ledger.head.seq == 4
        run.finish()


def test_open_runs_are_cancelled_on_close(ledger_path):
    rec = Recorder(ledger_path, study="sw")
    rec.case("c").run()
    rec.close()
    st = fold_studies(Ledger(ledger_path, create=False).read())["sw"]
    assert [(r.status, r.error) for r in st.runs.values()] == [
        ("cancelled", "recorder closed before the run")
    ]


def test_secrets_are_redacted_by_default_and_kept_on_request(ledger_path):
    with Recorder(ledger_path, study="a", config={"api_key": "abc", "max_tokens": 5}):
        pass
    with Recorder(ledger_path, study="b", config={"api_key": "abc"}, redact=False):
        pass
    cfg = {
        e.event.study: e.event.config
        for e in Ledger(ledger_path, create=False).read(types=["study_created"])
    }
    assert cfg == {"a": {"api_key": "[redacted]", "max_tokens": 5}, "b": {"api_key": "abc"}}


def test_bad_metric_value_is_refused_with_the_field(ledger_path):
    from ledger import LedgerDecodeError

    with Recorder(ledger_path, study="sw", durable=True) as rec:
        run = rec.case("c").run()
        with pytest.raises(LedgerDecodeError, match="metric 'x': 'high' is not a number"):
            run.log({"x": "high"}, step=0)
        with pytest.raises(LedgerDecodeError, match="metric 'ok': True is not a number"):
            run.log({"ok": True})
        with pytest.raises(LedgerDecodeError, match="metric name 3 is not a string"):
            run.log({3: 1.0}, step=0)
        with pytest.raises(LedgerDecodeError, match=r"`step` -1 is not an int in 0..2\*\*63-1"):
            run.log({"x": 1.0}, step=-1)
        import numpy as np

        run.log({"x": np.float32(0.5), "n": np.int64(3)}, step=1)
        run.finish()
    vals = [e.event.values for e in _events(ledger_path) if e.event.TYPE == "metrics_recorded"]
    assert vals == [{"x": 0.5, "n": 3}]


def test_non_finite_values_are_kept_with_one_canonical_nan(ledger_path):
    """The fast check of plain values (one ``sum``) must still send NaN, inf - inf and
    huge ints through the careful path."""
    import math
    import struct

    negative_nan = struct.unpack("<d", struct.pack("<Q", 0xFFF8000000000001))[0]
    with Recorder(ledger_path, study="sw", durable=True) as rec:
        run = rec.case("c").run()
        run.log({"a": negative_nan, "b": 1.0}, step=0)
        run.log({"up": math.inf, "down": -math.inf}, step=1)
        run.log({"big": 2**63 - 1, "x": 1e308}, step=2)
        run.finish()
    vals = [e.event.values for e in _events(ledger_path) if e.event.TYPE == "metrics_recorded"]
    assert struct.pack("<d", vals[0]["a"]) == struct.pack("<d", math.nan)
    assert vals[1] == {"up": math.inf, "down": -math.inf}
    assert vals[2] == {"big": 2**63 - 1, "x": 1e308}


def test_a_runs_lease_rides_with_its_start_and_goes_with_its_finish(ledger_path):
    """Leases cost no commit of their own: written in the transaction that commits the
    run's start, deleted in the one that commits its finish."""
    from ledger.plan import lease_key

    with Recorder(ledger_path, study="sw", batch_size=1000, interval=0) as rec:
        case = rec.case("c")
        rec.flush()
        writes: list[int] = []
        real = rec.ledger._store.env.write

        def counting(body, **kw):
            writes.append(1)
            return real(body, **kw)

        rec.ledger._store.env.write = counting
        run = case.run()
        assert rec.ledger.aux_get("leases", lease_key("sw", run.id)) is None  # not yet
        run.log({"x": 1.0}, step=0)
        rec.flush()
        head = rec.ledger.head.seq
        assert rec.ledger.aux_get("leases", lease_key("sw", run.id)) is not None
        run.finish()
        assert rec.ledger.aux_get("leases", lease_key("sw", run.id)) is None
        assert rec.ledger.head.seq == head + 1
        assert len(writes) == 2  # the start with its first values, then the finish


# -- issue 18 ------------------------------------------------------------------------------


def test_a_restarted_runner_re_recording_a_selection_appends_nothing(ledger_path):
    """``as_of`` is part of a selection's content and moves with every restart: the same
    decision (stage, survivors, policy) must still be recorded once."""
    for _restart in range(3):
        with Recorder(ledger_path, study="sw") as rec:
            a, b = rec.case("a"), rec.case("b")
            with a.run():  # a new attempt each time: the head moves between restarts
                pass
            rec.select(0, [a, b], policy={"rule": "top-2", "n": 2})
            rec.select(0, ["a", "b"], policy={"rule": "top-2", "n": 2})
    sels = [e for e in _events(ledger_path) if e.event.TYPE == "selection_recorded"]
    assert len(sels) == 1
    assert sels[0].event.policy == {"rule": "top-2", "n": 2}
    with Recorder(ledger_path, study="sw") as rec:
        rec.select(0, ["a"], policy={"rule": "top-1"})  # another decision is recorded
    sels = [e for e in _events(ledger_path) if e.event.TYPE == "selection_recorded"]
    assert [s.event.survivors for s in sels] == [["a", "b"], ["a"]]


def test_pruned_exceptions_finish_the_run_as_pruned(ledger_path):
    """Optuna's TrialPruned is recognised by name (optuna is never imported by the
    ledger) and propagates, so that Optuna sees it; our own RunPruned stops the run."""
    from ledger import RunPruned

    # the class as optuna defines it, without importing optuna
    trial_pruned = type("TrialPruned", (Exception,), {"__module__": "optuna.exceptions"})
    with Recorder(ledger_path, study="sw") as rec:
        case = rec.case("c")
        with pytest.raises(trial_pruned):
            with case.run() as run:
                run.log({"loss": 1.0}, step=0)
                raise trial_pruned("Trial was pruned at step 0.")
        with case.run() as run:
            run.log({"loss": 2.0}, step=0)
            raise RunPruned("median rule at step 0")
        with pytest.raises(ValueError):
            with case.run():
                raise ValueError("a real failure")
    fins = [e.event for e in _events(ledger_path) if e.event.TYPE == "run_finished"]
    assert [(f.status, f.error) for f in fins] == [
        ("pruned", "optuna.exceptions.TrialPruned: Trial was pruned at step 0."),
        ("pruned", "ledger.RunPruned: median rule at step 0"),
        ("failed", "ValueError: a real failure"),
    ]


def test_the_real_optuna_trial_pruned_is_pruned(ledger_path):
    optuna = pytest.importorskip("optuna")
    with Recorder(ledger_path, study="sw") as rec:
        with pytest.raises(optuna.TrialPruned):
            with rec.case("c").run():
                raise optuna.TrialPruned()
    (fin,) = [e.event for e in _events(ledger_path) if e.event.TYPE == "run_finished"]
    assert fin.status == "pruned"


def test_plan_done_for_one_seed(ledger_path):
    import numpy as np

    with Recorder(ledger_path, study="sw") as rec:
        case, other = rec.case("c"), rec.case("d")
        with case.run(seed=1):
            pass
        with pytest.raises(ZeroDivisionError):
            with case.run(seed=2):
                _ = 1 / 0
        with other.run():
            pass
        plan = rec.resume()
    assert plan.done(case) and plan.done("c", seed=1) and plan.done(case, seed=np.int64(1))
    assert not plan.done("c", seed=2) and not plan.done("c", seed=3)
    assert plan.done("d") and not plan.done("d", seed=1)


def test_derive_from_several_parents(ledger_path):
    with Recorder(ledger_path, study="sw") as rec:
        a = rec.case("a")
        b = rec.case("b", stage=2)
        m = rec.derive([a, b], eco="merge", eco_class="merge", params={"k": 1})
        one = rec.derive([m], eco="polish")  # a list of one is a plain parent
        assert (m.id, m.stage, one.id, one.stage) == ("a+b+merge", 3, "a+b+merge+polish", 4)
        assert rec.derive([a, b], eco="merge", params={"k": 1}).id == m.id  # declared again
        with pytest.raises(RuleViolation, match="parent case 'ghost' is not declared") as err:
            rec.derive([a, "ghost"], eco="merge")
        assert err.value.field == "parents[1]"
    ecos = [e.event for e in _events(ledger_path) if e.event.TYPE == "eco_applied"]
    assert [(e.case, e.parent, e.parents, e.stage) for e in ecos] == [
        ("a+b+merge", None, ["a", "b"], 3),
        ("a+b+merge+polish", "a+b+merge", None, 4),
    ]
