"""Interrupted-run detection: a dead pid on this host, an expired lease elsewhere."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import warnings

import msgspec
import pytest
from click.testing import CliRunner

from cli.main import cli
from ledger import Ledger, LedgerError, Recorder
from ledger.plan import build_plan, lease_key
from ledger.summary import fold_studies

HOST = socket.gethostname()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _study(ledger, runs):
    events = [
        {"type": "study_created", "study": "s"},
        {"type": "case_created", "study": "s", "case": "a"},
        {"type": "case_created", "study": "s", "case": "b"},
        {"type": "case_created", "study": "s", "case": "c"},
    ]
    for run, case, host, pid in runs:
        events.append(
            {
                "type": "run_started",
                "study": "s",
                "case": case,
                "run": run,
                "host": host,
                "pid": pid,
            }
        )
    ledger.append(events)


def _plan(ledger, now=None):
    state = fold_studies(ledger.read(study="s"))["s"]
    return build_plan(ledger, "s", state, now=now)


def test_dead_pid_on_this_host_is_interrupted_even_with_a_fresh_lease(ledger):
    dead = _dead_pid()
    _study(ledger, [("r1", "a", HOST, dead)])
    ledger.aux_put(
        "leases",
        lease_key("s", "r1"),
        msgspec.msgpack.encode({"host": HOST, "pid": dead, "expires": time.time() + 600}),
    )
    plan = _plan(ledger)
    assert plan.interrupted == ["r1"] and plan.pending == ["a", "b", "c"]
    assert plan.to_close == [("r1", f"process {dead} on {HOST} is gone")]


def test_live_pid_on_this_host_is_running(ledger):
    import os

    _study(ledger, [("r1", "a", HOST, os.getpid())])
    plan = _plan(ledger)
    assert (plan.running, plan.interrupted, plan.pending) == (["r1"], [], ["b", "c"])


def test_other_host_depends_on_its_lease(ledger):
    _study(
        ledger,
        [("r1", "a", "elsewhere", 1), ("r2", "b", "elsewhere", 2), ("r3", "c", "elsewhere", 3)],
    )
    now = 1_000_000.0
    ledger.aux_put("leases", lease_key("s", "r1"), msgspec.msgpack.encode({"expires": now + 5}))
    ledger.aux_put("leases", lease_key("s", "r2"), msgspec.msgpack.encode({"expires": now - 5}))
    plan = _plan(ledger, now=now)
    assert plan.running == ["r1"]
    assert plan.interrupted == ["r2", "r3"]
    # only the provably dead one (expired lease) is closed; r3 cannot be seen at all
    assert plan.to_close == [("r2", "its lease expired (no heartbeat)")]


def test_classification_of_finished_runs(ledger):
    _study(ledger, [("r1", "a", "h", 1), ("r2", "b", "h", 1), ("r3", "c", "h", 1)])
    ledger.append(
        [
            {"type": "run_finished", "study": "s", "run": "r1", "status": "completed"},
            {"type": "run_finished", "study": "s", "run": "r2", "status": "pruned"},
            {"type": "run_finished", "study": "s", "run": "r3", "status": "interrupted"},
        ]
    )
    plan = _plan(ledger)
    assert plan.to_dict() == {
        "study": "s",
        "completed": ["r1"],
        "failed": ["r2"],
        "interrupted": ["r3"],
        "running": [],
        "pending": ["b", "c"],
    }
    assert plan.done("a") and not plan.done("b")


def test_unknown_study_is_an_error(ledger):
    ledger.append([{"type": "study_created", "study": "x"}])
    with pytest.raises(LedgerError, match="unknown study 's' \\(known: x\\)"):
        build_plan(ledger, "s", fold_studies([]).get("s"))


def test_recorder_resume_closes_and_reattempts(ledger_path):
    dead = _dead_pid()
    with Ledger(ledger_path) as ledger:
        ledger.append(
            [
                {"type": "study_created", "study": "s"},
                {"type": "case_created", "study": "s", "case": "a"},
                {
                    "type": "run_started",
                    "study": "s",
                    "case": "a",
                    "run": "a#1",
                    "attempt": 1,
                    "host": HOST,
                    "pid": dead,
                },
            ]
        )
    with Recorder(ledger_path, study="s") as rec:
        plan = rec.resume()
        assert plan.interrupted == ["a#1"] and plan.pending == ["a"]
        with rec.case("a").run() as run:
            assert run.id == "a#2"
    st = fold_studies(Ledger(ledger_path, create=False).read())["s"]
    assert {r.run: (r.status, r.attempt) for r in st.runs.values()} == {
        "a#1": ("interrupted", None if False else 1),
        "a#2": ("completed", 2),
    }
    assert st.runs["a#1"].error == f"interrupted: process {dead} on {HOST} is gone"


def test_late_events_of_a_closed_run_go_to_a_new_attempt(ledger_path):
    with Recorder(ledger_path, study="s", interval=0) as rec:
        run = rec.case("a").run()
        run.log({"x": 1}, step=0)
        rec.flush()
        # someone else closes it (e.g. a resume that saw its lease expire)
        with Ledger(ledger_path) as other:
            other.append(
                [
                    {
                        "type": "run_finished",
                        "study": "s",
                        "run": "a#1",
                        "status": "interrupted",
                        "error": "lease expired",
                    }
                ]
            )
        run.log({"x": 2}, step=1)
        run.log({"final": 3})
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run.finish()
        assert "recording what followed under a new attempt 'a#2'" in str(caught[0].message)
        assert run.id == "a#2"
    evs = [e.event for e in Ledger(ledger_path, create=False).read(since=4)]
    assert [(e.TYPE, getattr(e, "run", None)) for e in evs] == [
        ("run_finished", "a#1"),
        ("run_started", "a#2"),
        ("metrics_recorded", "a#2"),
        ("metrics_recorded", "a#2"),
        ("run_finished", "a#2"),
    ]
    assert evs[1].config == {"continues": "a#1"} and evs[1].attempt == 2


@pytest.mark.slow
def test_resume_of_a_study_written_by_several_processes(tmp_path):
    """Three processes record runs of one study; two are killed mid-run. A resume
    from a fourth process sees exactly their runs as interrupted."""
    path = str(tmp_path / "m.ledger")
    code = (
        "import sys, time\n"
        "from ledger import Recorder\n"
        "rec = Recorder(sys.argv[1], study='s', interval=0.02)\n"
        "rec.__enter__()\n"
        "case = rec.case('c' + sys.argv[2])\n"
        "run = case.run()\n"
        "run.log({'x': 1}, step=0)\n"
        "rec.flush()\n"
        "print('started', flush=True)\n"
        "if sys.argv[3] == 'finish':\n"
        "    run.finish(); rec.close(); print('done', flush=True)\n"
        "else:\n"
        "    time.sleep(60)\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, path, str(i), mode], stdout=subprocess.PIPE, text=True
        )
        for i, mode in enumerate(["finish", "hang", "hang"])
    ]
    for p in procs:
        assert p.stdout.readline().strip() == "started"
    procs[0].wait(timeout=30)
    for p in procs[1:]:
        p.kill()
        p.wait()
    r = CliRunner().invoke(cli, ["--ledger", path, "resume", "--study", "s", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {
        "study": "s",
        "completed": ["c0#1"],
        "failed": [],
        "interrupted": ["c1#1", "c2#1"],
        "running": [],
        "pending": ["c1", "c2"],
    }
    # read-only by default: nothing was closed
    assert Ledger(path, create=False).head.seq == 1 + 3 * 3 + 1
    r = CliRunner().invoke(cli, ["--ledger", path, "resume", "--study", "s", "--close-interrupted"])
    assert r.exit_code == 0
    st = fold_studies(Ledger(path, create=False).read())["s"]
    assert sorted((r.run, r.status) for r in st.runs.values()) == [
        ("c0#1", "completed"),
        ("c1#1", "interrupted"),
        ("c2#1", "interrupted"),
    ]


def test_resume_cli_refuses_unknown_study(ledger_path):
    Ledger(ledger_path).append([{"type": "study_created", "study": "x"}])
    r = CliRunner().invoke(cli, ["--ledger", ledger_path, "resume", "--study", "nope"])
    assert r.exit_code == 1 and r.stderr == "error: unknown study 'nope' (known: x)\n"
