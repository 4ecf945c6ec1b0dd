"""Issue 18: what a runner hands the Recorder is checked at the call that makes it.

numpy scalars are numbers everywhere a number is accepted; arrays, ints beyond 64 bits,
steps past 2**63 - 1 and values with no JSON form are refused at the call, naming the
field, and never reach the buffer (where one bad event used to poison every commit).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from ledger import EventError, Ledger, LedgerDecodeError, Recorder


def _events(path, study="sw"):
    with Ledger(path, create=False) as led:
        return [e.event for e in led.read(study=study)]


# -- item 6: numpy scalars ------------------------------------------------------------------


def test_numpy_scalars_are_numbers_everywhere(ledger_path):
    with Recorder(
        ledger_path, study="sw", config={"epochs": np.int32(3), "scale": np.float16(0.5)}
    ) as rec:
        case = rec.case(
            "c",
            params={
                "lr": np.float32(0.25),
                "layers": [np.int64(2), np.uint8(3)],
                "on": np.bool_(1),
            },
            stage=np.int64(0),
        )
        child = rec.derive(case, eco="e", stage=np.int16(1))
        with child.run(seed=np.int64(7), config={"batch": np.int64(64)}) as run:
            run.log(
                {"loss": np.float32(0.5), "n": np.int64(3), "f": np.float64(1.5)}, step=np.int64(2)
            )
            run.log({"acc": np.float32(0.75)}, step=np.uint32(3))
            run.log({"final": np.int8(4)})
            run.finish(resources={"gpu_s": np.float64(1.25)})
        rec.select(np.int64(1), [child], policy={"top": np.int64(1)})
    evs = {e.TYPE: e for e in _events(ledger_path)}
    assert evs["study_created"].config == {"epochs": 3, "scale": 0.5}
    assert evs["case_created"].params == {"lr": 0.25, "layers": [2, 3], "on": True}
    assert type(evs["case_created"].params["layers"][0]) is int
    assert evs["eco_applied"].stage == 1
    assert (evs["run_started"].seed, evs["run_started"].config) == (7, {"batch": 64})
    assert evs["run_started"].run == "c+e~s7#1"
    metrics = [e for e in _events(ledger_path) if e.TYPE == "metrics_recorded"]
    assert [(m.step, m.values) for m in metrics] == [
        (2, {"loss": 0.5, "n": 3, "f": 1.5}),
        (3, {"acc": 0.75}),
        (None, {"final": 4}),
    ]
    assert type(metrics[0].values["n"]) is int and type(metrics[0].step) is int
    assert evs["run_finished"].resources["gpu_s"] == 1.25
    assert (evs["selection_recorded"].stage, evs["selection_recorded"].policy) == (1, {"top": 1})


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda rec, run: run.log({"w": np.zeros(3)}, step=0),
            r"metric 'w': a numpy array \(shape \(3,\)\) is not a number",
        ),
        (
            lambda rec, run: run.log({"w": 1.0}, step=np.arange(2)),
            r"`step` array\(\[0, 1\]\) is a numpy array \(shape \(2,\)\), not an int",
        ),
        (
            lambda rec, run: rec.case("d", params={"w": np.ones((2, 2))}),
            r"`params.w` is a numpy array \(shape \(2, 2\)\), which has no JSON form",
        ),
        (
            lambda rec, run: rec.case("d").run(seed=np.array([1, 2])),
            r"`seed` .* is a numpy array \(shape \(2,\)\), not an int",
        ),
        (
            lambda rec, run: rec.case("d").run(config={"path": b"bytes"}),
            r"`config.path` is a bytes, which has no JSON form",
        ),
        (
            lambda rec, run: run.finish(resources={"trace": np.zeros(2)}),
            r"`resources.trace` is a numpy array",
        ),
    ],
)
def test_arrays_are_refused_at_the_call_naming_the_field(ledger_path, call, message):
    with Recorder(ledger_path, study="sw", batch_size=10_000, interval=0) as rec:
        run = rec.case("c").run()
        with pytest.raises(LedgerDecodeError, match=message):
            call(rec, run)
        run.log({"ok": 1.0}, step=0)
        run.finish()
    # the refused call left nothing behind: the rest committed
    types = [e.TYPE for e in _events(ledger_path)]
    assert types[-2:] == ["metrics_recorded", "run_finished"]
    assert [e.case for e in _events(ledger_path) if e.TYPE == "run_started"] == ["c"]


# -- item 3: one bad call never poisons the Recorder ----------------------------------------


def test_a_bad_event_is_refused_at_its_call_and_the_buffer_stays_clean(ledger_path):
    """The trial's case: a numpy array in params failed only at flush, and every later
    flush re-raised it, so nothing else from that process was ever committed."""
    with Recorder(ledger_path, study="sw", batch_size=10_000, interval=0) as rec:
        good = rec.case("good", params={"lr": 0.1})
        with pytest.raises(LedgerDecodeError, match="params.w"):
            rec.case("bad", params={"w": np.arange(3)})
        with pytest.raises(EventError, match="`eco` .* length >= 1|expected `str` of length"):
            rec.derive(good, eco="")
        with pytest.raises(LedgerDecodeError, match="status"):
            good.run().finish("done")  # not a status
        assert rec.flush() >= 2  # the good case and the run's start
        with good.run() as run:
            run.log({"x": 1.0}, step=0)
    evs = _events(ledger_path)
    assert [e.case for e in evs if e.TYPE == "case_created"] == ["good"]
    # the run whose finish was refused stays open until the Recorder closes
    assert [e.status for e in evs if e.TYPE == "run_finished"] == ["completed", "cancelled"]


# -- item 1: steps ------------------------------------------------------------------------


@pytest.mark.parametrize("step", [2**63, 2**64 - 1, 2**70, -1, 1.0, True])
def test_a_step_projections_cannot_hold_is_refused_at_log(ledger_path, step):
    with Recorder(ledger_path, study="sw", durable=True) as rec:
        run = rec.case("c").run()
        with pytest.raises(LedgerDecodeError, match="`step`") as err:
            run.log({"x": 1.0}, step=step)
        assert err.value.field == "step"
        run.log({"x": 1.0}, step=2**63 - 1)
        run.finish()
    steps = [e.step for e in _events(ledger_path) if e.TYPE == "metrics_recorded"]
    assert steps == [2**63 - 1]


# -- item 10: ints beyond 64 bits ----------------------------------------------------------


@pytest.mark.parametrize(
    "call, field",
    [
        (lambda rec, run: run.log({"x": 2**64}, step=0), "values.x"),
        (lambda rec, run: run.log({"x": -(2**63) - 1}), "values.x"),
        (lambda rec, run: run.log({"x": 2**63}, step=0), "values.x"),  # past a signed int64
        (lambda rec, run: rec.case("d", params={"n": 2**64}), "params.n"),
        (lambda rec, run: rec.case("d", params={"n": [1, -(2**65)]}), "params.n[1]"),
        (lambda rec, run: rec.case("d").run(seed=2**64), "seed"),
        (lambda rec, run: rec.case("d").run(provenance={"hash": 10**30}), "provenance.hash"),
        (lambda rec, run: run.finish(resources={"ops": 10**40}), "resources.ops"),
        (lambda rec, run: rec.case("d", stage=2**63), "stage"),
    ],
)
def test_ints_beyond_64_bits_are_one_error_naming_the_field(ledger_path, call, field):
    with Recorder(ledger_path, study="sw", durable=True) as rec:
        run = rec.case("c").run()
        with pytest.raises(LedgerDecodeError) as err:
            call(rec, run)
        assert err.value.field == field
        assert f"{field.split('.', 1)[-1] if field.startswith('values.') else field}" in str(
            err.value
        )
        assert "\n" not in str(err.value)
        run.finish()


def test_ints_up_to_64_bits_are_kept(ledger_path):
    with Recorder(ledger_path, study="sw", durable=True) as rec:
        case = rec.case("c", params={"big": 2**64 - 1, "neg": -(2**63)})
        with case.run(seed=2**64 - 1) as run:
            run.log({"x": 2**63 - 1, "y": -(2**63)}, step=0)
    evs = {e.TYPE: e for e in _events(ledger_path)}
    assert evs["case_created"].params == {"big": 2**64 - 1, "neg": -(2**63)}
    assert evs["run_started"].seed == 2**64 - 1
    assert evs["metrics_recorded"].values == {"x": 2**63 - 1, "y": -(2**63)}


def test_nan_from_numpy_is_the_canonical_nan(ledger_path):
    import struct

    with Recorder(ledger_path, study="sw", durable=True) as rec:
        with rec.case("c").run() as run:
            run.log({"a": np.float32("nan"), "b": np.float64("-nan")}, step=0)
    (m,) = [e for e in _events(ledger_path) if e.TYPE == "metrics_recorded"]
    assert all(struct.pack("<d", v) == struct.pack("<d", math.nan) for v in m.values.values())
