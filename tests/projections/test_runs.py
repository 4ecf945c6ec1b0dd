from __future__ import annotations

from proj_streams import Stream, fold

from projections.base import build
from projections.runs import RunsProjection

T0 = 1_700_000_000  # Unix seconds


def runs_stream() -> Stream:
    s = Stream("sw").created()
    s.case("c1").case("c2")
    s.start("c1", "r1", attempt=0, seed=7, host="h1", pid=11, config={"lr": 0.1}, ts=T0)
    s.log("r1", {"loss": 1.0}, step=0, ts=T0 + 5)
    s.log("r1", {"loss": 0.5}, ts=T0 + 9)
    s.finish("r1", "completed", resources={"cpu_s": 3.5, "wall_s": 8.0}, ts=T0 + 10)
    s.start("c1", "r2", attempt=1, seed=8, ts=T0 + 20)
    s.finish("r2", "failed", error="CUDA out of memory", ts=T0 + 21.5)
    s.start("c2", "r3", ts=T0 + 30)
    s.log("r3", {"loss": 2.0}, step=3, ts=T0 + 31)
    s.artifact("r1", "netlist", "s3://b/r1.v", sha256="ab" * 32, bytes=10, ts=T0 + 40)
    s.invalidate("r1", "bad host", ts=T0 + 50)
    return s


def test_status_attempts_seed_host_error(ledger) -> None:
    ledger.append(runs_stream().events)
    st = build(ledger, RunsProjection()).study("sw")
    r1, r2, r3 = st.run("r1"), st.run("r2"), st.run("r3")
    assert (r1.status, r1.attempt, r1.seed, r1.host, r1.pid) == ("completed", 0, 7, "h1", 11)
    assert r1.config == {"lr": 0.1}
    assert (r2.status, r2.attempt, r2.error) == ("failed", 1, "CUDA out of memory")
    assert r3.status is None  # still running
    assert [r.run for r in st.of_case("c1")] == ["r1", "r2"]  # attempts, in start order
    assert [r.run for r in st.sorted()] == ["r1", "r2", "r3"]


def test_timings_first_and_last_event(ledger) -> None:
    ledger.append(runs_stream().events)
    st = build(ledger, RunsProjection()).study("sw")
    r1, r2, r3 = st.run("r1"), st.run("r2"), st.run("r3")
    us = 1_000_000
    assert r1.ts == T0 * us
    # the artifact is the run's latest own event; the invalidation is not its activity
    assert r1.last_ts == (T0 + 40) * us
    assert r1.finished_ts == (T0 + 10) * us
    assert r1.wall_s == 8.0  # reported by the run itself
    assert r2.wall_s == 1.5  # finish - start
    assert r3.last_ts == (T0 + 31) * us  # metrics move the last event time
    assert r3.last_seq == 11
    assert r3.wall_s is None


def test_invalidation_and_artifacts(ledger) -> None:
    ledger.append(runs_stream().events)
    st = build(ledger, RunsProjection()).study("sw")
    r1 = st.run("r1")
    assert r1.invalidated == "bad host"
    assert r1.status == "completed"
    assert not r1.counts
    assert [(a.name, a.uri, a.bytes) for a in r1.artifacts] == [("netlist", "s3://b/r1.v", 10)]
    assert st.status_counts() == {"failed": 1, "invalidated": 1, "running": 1}
    assert st.status_counts({"c2"}) == {"running": 1}
    d = r1.to_dict()
    assert d["invalidated"] == "bad host"
    assert d["artifacts"][0]["sha256"] == "ab" * 32


def test_as_of_before_the_invalidation(ledger) -> None:
    ledger.append(runs_stream().events)
    st = build(ledger, RunsProjection(), as_of=11).study("sw")
    assert st.run("r1").invalidated is None
    assert st.run("r1").counts
    assert st.run("r1").artifacts == []


def test_snapshot_roundtrip_and_batch_independence(ledger) -> None:
    ledger.append(runs_stream().events)
    whole = fold(ledger, RunsProjection())
    single = fold(ledger, RunsProjection(), one_by_one=True)
    assert whole.snapshot() == single.snapshot()
    again = RunsProjection()
    again.restore(whole.snapshot())
    assert again.snapshot() == whole.snapshot()
    assert again.study("sw").run("r2").error == "CUDA out of memory"


def test_two_studies_in_one_batch_keep_apart(ledger) -> None:
    a, b = Stream("a").created(), Stream("b").created()
    a.case("c").start("c", "r")
    b.case("c").start("c", "r")
    events = a.events[:2] + b.events[:2] + a.events[2:] + b.events[2:]
    events.append({"type": "metrics_recorded", "study": "b", "run": "r", "values": {"x": 1}})
    events.append({"type": "metrics_recorded", "study": "a", "run": "r", "values": {"x": 2}})
    ledger.append(events)
    proj = build(ledger, RunsProjection())
    assert proj.study("a").run("r").last_seq == 8
    assert proj.study("b").run("r").last_seq == 7
