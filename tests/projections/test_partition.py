"""The shared batch split (``projections.base.partition``): its per-event columns, and
the seqs it derives from the batch's range instead of reading every envelope."""

from __future__ import annotations

import numpy as np
from proj_streams import Stream

from projections.base import build, partition
from projections.metrics import MetricsProjection


def _interleaved() -> list[dict]:
    a, b = Stream("a").created(), Stream("b").created()
    a.case("c").start("c", "r1")
    b.case("c").start("c", "r1")
    events = a.events + b.events
    for step in range(6):
        events.append(
            Stream("a").log("r1", {"loss": 1.0 / (step + 1), "acc": 0.1}, step=step).events[0]
        )
        if step % 2:
            events.append(Stream("b").log("r1", {"loss": 2.0, "n": step}, step=step).events[0])
        if step == 3:
            events.append(Stream("a").start("c", "r2").events[0])
    events.append(Stream("a").log("r1", {"loss": 0.1}).events[0])  # a final
    return events


def test_columns_of_the_metrics_events_in_log_order(ledger) -> None:
    ledger.append(_interleaved())
    batch = [env for b in ledger.read_batches() for env in b]
    part = partition(batch)
    metrics = [env for env in batch if env.type == "metrics_recorded"]
    assert part.metrics == metrics
    assert [e.type for e in part.other] == [e.type for e in batch if e.type != "metrics_recorded"]
    assert part.events == [env.event for env in metrics]
    assert part.studies == [env.event.study for env in metrics]
    assert part.runs == [env.event.run for env in metrics]
    assert part.steps == [env.event.step for env in metrics]
    assert part.values == [env.event.values for env in metrics]
    assert part.seqs.dtype == np.int64
    assert part.seqs.tolist() == [env.seq for env in metrics]
    assert part.single_study is None


def test_seqs_of_a_batch_with_gaps(ledger) -> None:
    """A study's events are not a contiguous range of the log: seqs are read, not
    derived, and still match (also for a batch that starts mid-log)."""
    ledger.append(_interleaved())
    for study in ("a", "b"):
        batch = [env for b in ledger.read_batches(study=study) for env in b]
        part = partition(batch)
        assert part.seqs.tolist() == [e.seq for e in batch if e.type == "metrics_recorded"]
        assert part.single_study == study
    tail = [env for b in ledger.read_batches(since=7) for env in b]
    part = partition(tail)
    assert part.seqs.tolist() == [e.seq for e in tail if e.type == "metrics_recorded"]
    assert partition([]).seqs.size == 0


def test_metric_seqs_equal_the_log_with_and_without_a_study_filter(ledger) -> None:
    ledger.append(_interleaved())
    want = {
        (env.event.study, env.event.run, name, env.event.step): env.seq
        for env in ledger.read()
        if env.type == "metrics_recorded"
        for name in env.event.values
    }
    for study in (None, "a"):
        m = build(ledger, MetricsProjection(), study=study)
        got = {}
        for finals in (False, True):
            t = m.long_table(study, finals=finals)
            for r, k, s, q in zip(t["run"], t["metric"], t["step"], t["seq"]):
                st, run = t["runs"][r]
                got[(st, run, t["metrics"][k], None if finals else int(s))] = int(q)
        assert got == {k: v for k, v in want.items() if study is None or k[0] == study}


def test_batches_regroup_blocks_into_about_batch_events(ledger, monkeypatch) -> None:
    """Small stored blocks (3 events each here) are folded in batches of at least
    ``BATCH_EVENTS``; every event comes once, in seq order; a study filter and a start
    mid-block are honoured."""
    from projections import base

    events = _interleaved()
    for i in range(0, len(events), 3):
        ledger.append(events[i : i + 3])
    head = ledger.head.seq
    monkeypatch.setattr(base, "BATCH_EVENTS", 7)
    got = list(base._batches(ledger, 0, head, None))
    assert [e.seq for b in got for e in b] == list(range(1, head + 1))
    assert all(len(b) >= 7 for b in got[:-1])
    assert all(len(b) < 7 + 3 for b in got)
    tail = list(base._batches(ledger, 4, head - 1, "a"))
    want = [e.seq for e in ledger.read(since=4, until=head - 1, study="a")]
    assert [e.seq for b in tail for e in b] == want
    monkeypatch.setattr(base, "BATCH_EVENTS", 2)  # a block alone fills a batch
    assert [len(b) for b in base._batches(ledger, 0, 9, None)] == [3, 3, 3]
