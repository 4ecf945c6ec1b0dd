"""Issue 18: the Recorder stamps each event when the runner calls, not at commit.

The clock is the module's ``_now`` (patched here to a counter), so the tests assert exact
stored times without sleeping or comparing durations.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest

import ledger.inputs as inputs_mod
from ledger import Ledger, LedgerDecodeError, Recorder, StoreUnavailable
from ledger.codec import format_ts

T0 = 1_700_000_000.0


@pytest.fixture
def clock(monkeypatch):
    """Each call of the Recorder's clock returns the next whole second after T0."""
    ticks = itertools.count()
    monkeypatch.setattr(inputs_mod, "_now", lambda: T0 + next(ticks), raising=False)
    return ticks


def _stored(path, study="sw"):
    with Ledger(path, create=False) as led:
        return [(e.event.TYPE, e.ts) for e in led.read(study=study)]


def _us(seconds: float) -> int:
    return round(seconds * 1_000_000)


def test_each_event_is_stamped_when_the_runner_calls(ledger_path, clock):
    # One commit for everything after the study (batch_size large, no flush thread):
    # under the old behaviour every event of the batch shared the commit time.
    with Recorder(ledger_path, study="sw", batch_size=10_000, interval=0) as rec:  # 0
        base = rec.case("base")  # 1
        child = rec.derive(base, eco="e")  # 2
        run = child.run(seed=1)  # 3
        run.log({"loss": 0.5}, step=0)  # 4
        run.artifact("ckpt", "file:///tmp/ckpt")  # 5
        run.log({"acc": 0.9})  # 6: a final value, held until the finish
        run.finish()  # 7
        rec.select(1, [child])  # 8
    assert _stored(ledger_path) == [
        ("study_created", _us(T0)),
        ("case_created", _us(T0 + 1)),
        ("eco_applied", _us(T0 + 2)),
        ("run_started", _us(T0 + 3)),
        ("metrics_recorded", _us(T0 + 4)),
        ("artifact_recorded", _us(T0 + 5)),
        ("metrics_recorded", _us(T0 + 6)),
        ("run_finished", _us(T0 + 7)),
        ("selection_recorded", _us(T0 + 8)),
    ]


def test_explicit_ts_on_every_call(ledger_path):
    """Integrations stamp events with the framework's own times (an Optuna trial's
    start and completion): RFC 3339 strings, Unix seconds and aware datetimes."""
    start = datetime(2026, 1, 31, 12, 0, 0, 250_000, tzinfo=timezone.utc)
    end = start + timedelta(seconds=3)
    with Recorder(ledger_path, study="sw", ts="2026-01-31T11:00:00Z") as rec:
        case = rec.case("c", ts=start)
        child = rec.derive(case, eco="e", ts=start)
        run = child.run(ts=start)
        run.log({"loss": 1.0}, step=0, ts=start.timestamp() + 1)
        run.artifact("a", "file:///x", ts="2026-01-31T12:00:02Z")
        run.log({"loss": 0.5}, ts=end)
        run.finish(ts=end)
        rec.select(1, [child], ts=end)
    got = [(t, format_ts(ts)) for t, ts in _stored(ledger_path)]
    assert got == [
        ("study_created", "2026-01-31T11:00:00.000000Z"),
        ("case_created", "2026-01-31T12:00:00.250000Z"),
        ("eco_applied", "2026-01-31T12:00:00.250000Z"),
        ("run_started", "2026-01-31T12:00:00.250000Z"),
        ("metrics_recorded", "2026-01-31T12:00:01.250000Z"),
        ("artifact_recorded", "2026-01-31T12:00:02.000000Z"),
        ("metrics_recorded", "2026-01-31T12:00:03.250000Z"),
        ("run_finished", "2026-01-31T12:00:03.250000Z"),
        ("selection_recorded", "2026-01-31T12:00:03.250000Z"),
    ]


def test_a_with_block_run_is_stamped_at_start_and_exit(ledger_path, clock):
    with Recorder(ledger_path, study="sw", batch_size=10_000, interval=0) as rec:  # 0
        case = rec.case("c")  # 1
        with case.run() as run:  # 2
            run.log({"x": 1.0}, step=0)  # 3
        # 4: the finish, at the block's exit
    assert [ts for _, ts in _stored(ledger_path)][-2:] == [_us(T0 + 3), _us(T0 + 4)]


def test_a_bad_ts_is_refused_at_the_call_naming_the_field(ledger_path):
    with Recorder(ledger_path, study="sw") as rec:
        case = rec.case("c")
        with pytest.raises(LedgerDecodeError, match="`ts` '2026-01-31 12:00' is not an RFC"):
            case.run(ts="2026-01-31 12:00")
        with pytest.raises(LedgerDecodeError, match="`ts`: a datetime without a time zone"):
            case.run(ts=datetime(2026, 1, 31, 12, 0))
        with pytest.raises(LedgerDecodeError, match="`ts` must be a timestamp, got a boolean"):
            rec.case("d", ts=True)
        run = case.run()
        with pytest.raises(LedgerDecodeError, match="`ts` must be a finite number"):
            run.log({"x": 1.0}, step=0, ts=float("nan"))
        run.finish()
    # nothing of the refused calls reached the buffer or the log
    assert [t for t, _ in _stored(ledger_path)] == [
        "study_created",
        "case_created",
        "run_started",
        "run_finished",
    ]


class _AckLost(Ledger):
    """Commits the first append it is given, then raises as if the reply was lost."""

    lost = 0

    def append(self, events, **kw):
        result = super().append(events, **kw)
        if not self.lost and len(events) > 1:
            self.lost += 1
            raise StoreUnavailable("connection lost during COMMIT (test)")
        return result


def test_a_resent_batch_keeps_its_call_times_and_duplicates_nothing(ledger_path, clock):
    """An acknowledgement lost after the commit: the Recorder keeps the batch and sends
    it again; the ids ignore ``ts``, so nothing is appended twice, and the log holds the
    times of the calls, not of either commit."""
    led = _AckLost(ledger_path)
    with Recorder(led, study="sw", batch_size=10_000, interval=0) as rec:  # 0
        case = rec.case("c")  # 1
        run = case.run()  # 2
        run.log({"x": 1.0}, step=0)  # 3
        try:  # raised, or kept and retried: either way the batch is sent again
            rec.flush()
        except StoreUnavailable:
            pass
        run.log({"x": 2.0}, step=1)  # 4
        run.finish()  # 5
    led.close()
    assert _stored(ledger_path) == [
        ("study_created", _us(T0)),
        ("case_created", _us(T0 + 1)),
        ("run_started", _us(T0 + 2)),
        ("metrics_recorded", _us(T0 + 3)),
        ("metrics_recorded", _us(T0 + 4)),
        ("run_finished", _us(T0 + 5)),
    ]


def test_a_restarted_runner_re_emitting_at_other_times_appends_nothing(ledger_path, clock):
    """Ids never include ``ts``: the same declarations and values sent again at later
    times are duplicates, and the log keeps the first times."""
    from ledger.events import MetricsRecorded

    with Recorder(ledger_path, study="sw", batch_size=10_000, interval=0) as rec:
        rec.case("c")
        run = rec.case("c").run(run_id="r1")
        run.log({"x": 1.0}, step=0)
        rec.flush()
        first = _stored(ledger_path)
        # the very same value re-emitted (as a restarted runner does), later
        rec._emit(MetricsRecorded(study="sw", run="r1", values={"x": 1.0}, step=0, ts=T0 + 100))
        assert rec.flush() == 0
        run.finish()
    assert _stored(ledger_path)[: len(first)] == first
