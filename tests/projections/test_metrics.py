from __future__ import annotations

import math

import numpy as np
from proj_streams import Stream, fold

from projections.base import build
from projections.metrics import MetricsProjection


def series_stream() -> Stream:
    s = Stream("sw").created()
    s.case("c").start("c", "r1").start("c", "r2")
    s.log("r1", {"loss": 1.0, "acc": 0.1}, step=0)  # seq 5
    s.log("r1", {"loss": 0.5, "acc": 0.4}, step=2)  # seq 6
    s.log("r1", {"loss": 0.7}, step=1)  # seq 7: logged late, sorts by step
    s.log("r1", {"loss": 0.4}, step=2)  # seq 8: supersedes loss@2 (0.5)
    s.log("r2", {"loss": float("nan")}, step=0)  # seq 9
    s.log("r2", {"loss": float("inf"), "lr": 3}, step=1)  # seq 10
    s.log("r1", {"acc": 0.8, "loss": 0.3})  # seq 11: finals
    s.log("r1", {"acc": 0.9})  # seq 12: final acc corrected
    s.finish("r1")
    return s


def test_series_sorted_by_step_with_supersession(ledger) -> None:
    ledger.append(series_stream().events)
    m = build(ledger, MetricsProjection())
    steps, values, seqs = m.series("sw", "r1", "loss")
    assert steps.tolist() == [0, 1, 2]
    assert values.tolist() == [1.0, 0.7, 0.4]
    assert seqs.tolist() == [5, 7, 8]
    assert m.series("sw", "r1", "acc").values.tolist() == [0.1, 0.4]
    assert m.series("sw", "r1", "nope").steps.size == 0
    assert m.series("other", "r1", "loss").steps.size == 0


def test_nan_and_inf_are_kept(ledger) -> None:
    ledger.append(series_stream().events)
    m = build(ledger, MetricsProjection())
    values = m.series("sw", "r2", "loss").values
    assert math.isnan(values[0]) and values[1] == math.inf
    assert m.series("sw", "r2", "lr").values.tolist() == [3.0]


def test_finals_apart_from_stepped_values(ledger) -> None:
    ledger.append(series_stream().events)
    m = build(ledger, MetricsProjection())
    assert len(m.finals) == 3  # every final value recorded, superseded ones too
    assert len(m.stepped) == 9
    assert m.count() == 12
    assert m.finals_of("sw", "r1") == {"acc": 0.9, "loss": 0.3}
    assert m.finals_of("sw", "r2") == {}
    table = m.final_table("sw")
    got = {
        (table.runs[r], table.metrics[k]): (v, q)
        for r, k, v, q in zip(table.run, table.metric, table.value, table.seq)
    }
    assert got == {("r1", "acc"): (0.9, 12), ("r1", "loss"): (0.3, 11)}


def test_long_table_holds_values_in_force(ledger) -> None:
    ledger.append(series_stream().events)
    m = build(ledger, MetricsProjection())
    t = m.long_table("sw")
    rows = [
        (t["runs"][r][1], t["metrics"][k], s, q)
        for r, k, s, q in zip(t["run"], t["metric"], t["step"], t["seq"])
    ]
    # metric indices follow first appearance in the stored (key-sorted) events: acc first
    assert rows == [
        ("r1", "acc", 0, 5),
        ("r1", "acc", 2, 6),
        ("r1", "loss", 0, 5),
        ("r1", "loss", 1, 7),
        ("r1", "loss", 2, 8),
        ("r2", "loss", 0, 9),
        ("r2", "loss", 1, 10),
        ("r2", "lr", 1, 10),
    ]
    assert m.metric_names("sw") == ["acc", "loss", "lr"]


def test_time_travel_before_a_correction(ledger) -> None:
    ledger.append(series_stream().events)
    m = build(ledger, MetricsProjection(), as_of=11)
    assert m.finals_of("sw", "r1") == {"acc": 0.8, "loss": 0.3}
    assert m.series("sw", "r1", "loss").values.tolist() == [1.0, 0.7, 0.4]
    m7 = build(ledger, MetricsProjection(), as_of=7)
    assert m7.series("sw", "r1", "loss").values.tolist() == [1.0, 0.7, 0.5]


def test_batch_boundaries_and_key_order_do_not_change_the_state(ledger) -> None:
    ledger.append(series_stream().events)
    whole = fold(ledger, MetricsProjection())
    single = fold(ledger, MetricsProjection(), one_by_one=True)
    assert whole.snapshot() == single.snapshot()
    again = MetricsProjection()
    again.restore(whole.snapshot())
    assert again.snapshot() == whole.snapshot()
    assert again.finals_of("sw", "r1") == {"acc": 0.9, "loss": 0.3}


def test_mixed_studies_and_key_sets_in_one_batch(ledger) -> None:
    """The slow paths (several studies, several key sets) against a per-value loop."""
    rng = np.random.default_rng(3)
    events = []
    for st in ("a", "b"):
        events += [
            {"type": "study_created", "study": st},
            {"type": "case_created", "study": st, "case": "c"},
        ]
        events += [
            {"type": "run_started", "study": st, "case": "c", "run": f"r{i}"} for i in range(3)
        ]
    names = ["m0", "m1", "m2", "m3"]
    expected = []
    for i in range(300):
        st = ("a", "b")[int(rng.integers(2))]
        run = f"r{int(rng.integers(3))}"
        keys = [n for n in names if rng.random() < 0.6] or ["m0"]
        vals = {k: float(rng.integers(100)) for k in keys}
        step = None if rng.random() < 0.1 else int(rng.integers(50))
        ev = {"type": "metrics_recorded", "study": st, "run": run, "values": vals, "id": f"e{i}"}
        if step is not None:
            ev["step"] = step
        events.append(ev)
    ledger.append(events)
    m = build(ledger, MetricsProjection())
    for env in ledger.read(types=["metrics_recorded"]):
        ev = env.event
        for k, v in ev.values.items():
            expected.append((ev.study, ev.run, k, -1 if ev.step is None else ev.step, v, env.seq))
    got = []
    for cols in (m.stepped.arrays(), m.finals.arrays()):
        keys, metrics = m.run_keys(), m._metrics.order
        for r, k, s, v, q in zip(
            cols["run"], cols["metric"], cols["step"], cols["value"], cols["seq"]
        ):
            got.append((*keys[r], metrics[k], int(s), float(v), int(q)))
    assert sorted(got) == sorted(expected)
    assert fold(ledger, MetricsProjection(), one_by_one=True).snapshot() == m.snapshot()


def test_other_event_types_are_ignored(ledger) -> None:
    s = Stream("sw").created().case("c").start("c", "r").finish("r")
    ledger.append(s.events)
    m = build(ledger, MetricsProjection())
    assert m.count() == 0
    assert m.final_table().run.size == 0
    assert m.seq == 4
