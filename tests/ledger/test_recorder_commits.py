"""Issue 18 (and 13): what a Recorder's commit meets — a refused event, another runner
on the same attempt, a server that is away — never costs the other events of a batch,
and nothing the Recorder acknowledged is lost.

A server that is away is a ``Ledger`` whose ``append`` raises ``StoreUnavailable`` while
``down`` is set (the PostgreSQL server-restart test, R21, is the lead's, on top).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from ledger import Ledger, LedgerError, Recorder, RuleViolation, StoreUnavailable
from ledger.errors import AuthenticationFailed
from ledger.summary import fold_studies


def _events(path, study="sw"):
    with Ledger(path, create=False) as led:
        return [e.event for e in led.read(study=study)]


class _Flaky(Ledger):
    """A ledger whose server can be taken away: ``append`` raises ``StoreUnavailable``
    (or ``failure``) while ``down``, before writing anything."""

    down = False
    failure: type[Exception] = StoreUnavailable
    attempts = 0

    def append(self, events, **kw):
        self.attempts += 1
        if self.down:
            raise self.failure("connection refused (test server is down)")
        return super().append(events, **kw)


# -- item 3: a refusal at the commit never blocks the events behind it ---------------------


def test_a_refused_event_at_commit_is_dropped_and_the_rest_committed(ledger_path):
    with Recorder(ledger_path, study="sw", batch_size=10_000, interval=0) as rec:
        # another process creates case "x" with other params after this Recorder read
        # the study: only the commit can find out
        with Ledger(ledger_path) as other:
            other.append([{"type": "case_created", "study": "sw", "case": "x", "params": {"p": 2}}])
        rec.case("x", params={"p": 1})
        y = rec.case("y")
        run = y.run()
        run.log({"loss": 0.5}, step=0)
        with pytest.raises(RuleViolation, match="case 'x' already exists") as err:
            rec.flush()
        assert err.value.where == "recorder buffer[0]"
        assert [(ev.TYPE, ev.case) for ev, _ in rec.refused] == [("case_created", "x")]
        # the rest was committed, and the Recorder is not poisoned
        run.log({"loss": 0.25}, step=1)
        run.finish()
        assert rec.flush() == 0
    evs = _events(ledger_path)
    assert [e.TYPE for e in evs].count("case_created") == 2  # x (the other's) and y
    assert [e.step for e in evs if e.TYPE == "metrics_recorded"] == [0, 1]
    assert evs[-1].TYPE == "run_finished"


def test_a_refused_run_drops_its_events_and_its_handle_says_why(ledger_path):
    """A run id the runner chose itself, taken by another process first: the run's events
    can never commit, so they go (and only they); the handle says why at the next call."""
    with Recorder(ledger_path, study="sw", batch_size=10_000, interval=0) as rec:
        case = rec.case("c")
        rec.flush()
        with Ledger(ledger_path) as other:
            other.append([{"type": "run_started", "study": "sw", "case": "c", "run": "mine"}])
        run = case.run(run_id="mine")
        run.log({"x": 1.0}, step=0)
        keep = case.run()
        keep.log({"x": 2.0}, step=0)
        with pytest.raises(RuleViolation, match="run 'mine' already exists"):
            rec.flush()
        with pytest.raises(LedgerError, match="run 'mine' was refused at a commit"):
            run.log({"x": 3.0}, step=1)
        keep.finish()
    evs = _events(ledger_path)
    assert [(e.TYPE, getattr(e, "run", None)) for e in evs][-3:] == [
        ("run_started", "c#2"),  # "mine" had attempt 1
        ("metrics_recorded", "c#2"),
        ("run_finished", "c#2"),
    ]
    assert not [e for e in evs if e.TYPE == "metrics_recorded" and e.run == "mine"]


# -- item 8: two runners on one attempt ----------------------------------------------------


def test_two_recorders_of_one_process_never_collide(ledger_path):
    with (
        Recorder(ledger_path, study="sw", interval=0) as a,
        Recorder(ledger_path, study="sw", interval=0) as b,
    ):
        ra = a.case("base").run(seed=1)
        rb = b.case("base").run(seed=1)
        assert (ra.id, rb.id) == ("base~s1#1", "base~s1#2")
        for run in (ra, rb):
            run.log({"x": 1.0}, step=0)
            run.finish()
    st = fold_studies(Ledger(ledger_path, create=False).read())["sw"]
    assert sorted((r.run, r.attempt, r.status) for r in st.runs.values()) == [
        ("base~s1#1", 1, "completed"),
        ("base~s1#2", 2, "completed"),
    ]


_OTHER = textwrap.dedent(
    """
    import sys
    from ledger import Recorder
    with Recorder(sys.argv[1], study="sw", interval=0, handle_signals=False) as rec:
        with rec.case("base").run(seed=1) as run:
            run.log({"x": 1.0}, step=0)
        print(run.id)
    """
)


@pytest.fixture(params=["lmdb", "postgresql"])
def location(request, ledger_path) -> str:
    """A fresh ledger: an LMDB path, or a schema of the session's PostgreSQL server (the
    case of runners on several hosts)."""
    if request.param == "lmdb":
        return ledger_path
    return request.getfixturevalue("pg_url")


def test_a_run_id_taken_by_another_process_moves_to_the_next_attempt(location):
    """Both runners read the study before either started a run, so both chose
    ``base~s1#1``; the other committed first. Ours moves to #2 at the commit, and
    nothing else of its batch is refused."""
    ledger_path = location
    with Recorder(ledger_path, study="sw", batch_size=10_000, interval=0) as rec:
        base = rec.case("base")
        rec.flush()
        other = subprocess.run(
            [sys.executable, "-c", _OTHER, ledger_path], capture_output=True, text=True
        )
        assert other.returncode == 0, other.stderr
        assert other.stdout.strip() == "base~s1#1"
        side = rec.case("side")
        run = base.run(seed=1)  # this process's state says #1 is free
        assert run.id == "base~s1#1"
        run.log({"x": 2.0}, step=0)
        with side.run() as side_run:
            side_run.log({"y": 1.0}, step=0)
        assert run.id == "base~s1#2"  # moved at that commit
        run.log({"x": 3.0}, step=1)
        run.finish()
        assert rec.refused == []
    st = fold_studies(Ledger(ledger_path, create=False).read())["sw"]
    assert sorted((r.run, r.attempt, r.status, r.pid is not None) for r in st.runs.values()) == [
        ("base~s1#1", 1, "completed", True),
        ("base~s1#2", 2, "completed", True),
        ("side#1", 1, "completed", True),
    ]
    ours = [e for e in _events(ledger_path) if getattr(e, "run", None) == "base~s1#2"]
    assert [e.TYPE for e in ours] == [
        "run_started",
        "metrics_recorded",
        "metrics_recorded",
        "run_finished",
    ]
    assert [e.values["x"] for e in ours if e.TYPE == "metrics_recorded"] == [2.0, 3.0]


def test_a_restarted_runner_keeps_deterministic_run_ids(ledger_path):
    for expected in ("c~s3#1", "c~s3#2"):
        with Recorder(ledger_path, study="sw", interval=0) as rec:
            with rec.case("c").run(seed=3) as run:
                pass
            assert run.id == expected


# -- item 12: a server that is away ---------------------------------------------------------


def _stderr_lines(capfd) -> list[str]:
    return [line for line in capfd.readouterr().err.splitlines() if line.startswith("ledger:")]


def test_an_away_server_buffers_warns_once_and_loses_nothing(ledger_path, capfd):
    led = _Flaky(ledger_path)
    with Recorder(led, study="sw", batch_size=4, interval=0) as rec:
        run = rec.case("c").run()
        led.down = True
        for step in range(20):  # a full batch every 4 events: each commit fails
            run.log({"x": float(step)}, step=step)
        run.finish()
        with pytest.raises(StoreUnavailable, match="test server is down"):
            rec.flush()
        lines = _stderr_lines(capfd)
        assert len(lines) == 1
        assert lines[0].startswith("ledger: server unreachable (connection refused (test server")
        assert "buffering" in lines[0] and "events, retrying" in lines[0]
        assert len(rec.outbox.buffer) == 1 + 1 + 20 + 1  # case, start, values, finish
        led.down = False
        assert rec.flush() == 23
        assert _stderr_lines(capfd) == [
            "ledger: server reachable again after 0 s; committed 23 buffered events"
        ]
    led.close()
    evs = _events(ledger_path)
    assert [e.step for e in evs if e.TYPE == "metrics_recorded"] == list(range(20))
    assert evs[-1].TYPE == "run_finished"


def test_retries_back_off_exponentially_up_to_a_cap(ledger_path):
    import threading

    from ledger.outbox import Outbox

    box = Outbox(None, "sw", redact=True, lock=threading.RLock(), retry_max=5.0)
    delays = []
    for _ in range(7):
        box._note_outage(StoreUnavailable("down"))
        delays.append(box.outage.delay)
    assert delays == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert not box.due()  # the next try waits for the backoff


def test_a_full_buffer_raises_clearly_and_keeps_what_it_acknowledged(ledger_path, capfd):
    led = _Flaky(ledger_path)
    rec = Recorder(led, study="sw", batch_size=2, interval=0, max_buffered=6, block_timeout=0)
    run = rec.case("c").run()
    led.down = True
    for step in range(6):
        run.log({"x": float(step)}, step=step)  # 6 values buffered
    with pytest.raises(StoreUnavailable, match=r"holds 6 events \(max_buffered\); this call"):
        run.log({"x": 6.0}, step=6)
    led.down = False
    assert rec.flush() == 6  # an explicit flush does not wait for the backoff
    run.log({"x": 7.0}, step=7)
    run.finish()
    rec.close()
    led.close()
    steps = [e.step for e in _events(ledger_path) if e.TYPE == "metrics_recorded"]
    assert steps == [0, 1, 2, 3, 4, 5, 7]  # the refused call's value was never acknowledged


def test_close_with_the_server_away_saves_what_it_could_not_commit(ledger_path, tmp_path, capfd):
    from click.testing import CliRunner

    from cli.main import cli

    led = _Flaky(ledger_path)
    rec = Recorder(led, study="sw", interval=0, close_timeout=0, spill_dir=tmp_path)
    with rec.case("c").run() as run:
        run.log({"x": 1.0}, step=0)
        led.down = True
        run.log({"x": 2.0}, step=1)
    with pytest.raises(StoreUnavailable):
        rec.close()
    spilled = tmp_path / f"ledger-unsent-sw-{__import__('os').getpid()}.jsonl"
    last = _stderr_lines(capfd)[-1]
    assert last.startswith("ledger: could not commit 5 events of study 'sw' (runs c#1)")
    assert str(spilled) in last and "append" in last
    led.down = False
    times = [json.loads(line)["ts"] for line in spilled.read_text().splitlines()]
    led.close()
    r = CliRunner().invoke(cli, ["--ledger", ledger_path, "append", str(spilled), "--json"])
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["appended"] == 5
    with Ledger(ledger_path, create=False) as check:
        envs = list(check.read(study="sw"))
    assert [round(t * 1e6) for t in times] == [e.ts for e in envs[-5:]]  # call times kept
    assert [e.event.TYPE for e in envs[-5:]] == [
        "case_created",
        "run_started",
        "metrics_recorded",
        "metrics_recorded",
        "run_finished",
    ]


def test_wrong_credentials_are_not_retried(ledger_path, capfd):
    led = _Flaky(ledger_path)
    led.failure = AuthenticationFailed
    with Recorder(led, study="sw", interval=0) as rec:
        run = rec.case("c").run()
        led.down = True
        with pytest.raises(AuthenticationFailed):
            run.finish()
        assert rec.outbox.outage is None and len(rec.outbox.buffer) == 3
        led.down = False
    led.close()
    assert _events(ledger_path)[-1].TYPE == "run_finished"


def _wait_until(condition, what: str, limit: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


def test_the_background_thread_retries_until_the_server_is_back(ledger_path, capfd):
    led = _Flaky(ledger_path)
    with Recorder(led, study="sw", interval=0.05, retry_max=0.5) as rec:
        run = rec.case("c").run()
        led.down = True
        for step in range(5):
            run.log({"x": float(step)}, step=step)
        start = led.attempts
        _wait_until(lambda: led.attempts >= start + 3, "three retries")
        assert len(rec.outbox.buffer) == 7
        led.down = False
        _wait_until(lambda: not rec.outbox.buffer, "the buffer to be committed")
        run.finish()
    led.close()
    lines = _stderr_lines(capfd)
    assert len(lines) == 2  # one warning however many retries, and the recovery
    assert lines[0].startswith("ledger: server unreachable (")
    assert lines[1].startswith("ledger: server reachable again after ")
    assert lines[1].endswith("s; committed 7 buffered events")
    assert [e.step for e in _events(ledger_path) if e.TYPE == "metrics_recorded"] == list(range(5))


class _AwayOnAttempt(Ledger):
    """Raises ``StoreUnavailable`` at the append attempts numbered in ``away``."""

    away: frozenset[int] = frozenset()
    attempts = 0

    def append(self, events, **kw):
        self.attempts += 1
        if self.attempts in self.away:
            raise StoreUnavailable("connection lost (test)")
        return super().append(events, **kw)


def test_a_run_moved_at_a_commit_that_then_fails_stays_moved(ledger_path):
    """The commit rewrote the batch (the run moved to #2), then the server went away:
    what goes back to the buffer is the rewritten batch, so nothing is split between two
    run ids and nothing is dropped."""
    led = _AwayOnAttempt(ledger_path)
    with Recorder(led, study="sw", batch_size=10_000, interval=0) as rec:
        base = rec.case("base")
        rec.flush()
        with Ledger(ledger_path) as other:
            other.append([{"type": "run_started", "study": "sw", "case": "base",
                           "run": "base~s1#1"}])  # fmt: skip
        run = base.run(seed=1)
        run.log({"x": 1.0}, step=0)
        led.away = frozenset({led.attempts + 2})  # the retry after the move fails
        with pytest.raises(StoreUnavailable):
            rec.flush()
        assert run.id == "base~s1#2"
        assert {ev.run for ev in rec.outbox.buffer} == {"base~s1#2"}
        run.log({"x": 2.0}, step=1)
        run.finish()
        assert rec.flush() == 4  # start, two values, finish (finish waits for the backoff)
        assert rec.refused == []
    led.close()
    ours = [e for e in _events(ledger_path) if getattr(e, "run", None) == "base~s1#2"]
    assert [e.TYPE for e in ours] == [
        "run_started",
        "metrics_recorded",
        "metrics_recorded",
        "run_finished",
    ]
