from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli.main import cli

EVENTS = (
    "\n".join(
        [
            '{"type":"study_created","study":"sweep","config":{"lr":0.1,"api_key":"abc123"}}',
            '{"type":"case_created","study":"sweep","case":"base","params":{"lr":0.1}}',
            '{"type":"run_started","study":"sweep","case":"base","run":"r1"}',
            '{"type":"metrics_recorded","study":"sweep","run":"r1","step":0,"values":{"loss":NaN}}',
            '{"type":"metrics_recorded","study":"sweep","run":"r1","values":{"loss":0.31}}',
            '{"type":"run_finished","study":"sweep","run":"r1","status":"completed"}',
        ]
    )
    + "\n"
)


@pytest.fixture
def run(tmp_path):
    path = str(tmp_path / "c.ledger")
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(cli, ["--ledger", path, *args], input=input, catch_exceptions=False)

    invoke.path = path
    return invoke


def test_append_from_stdin_then_duplicates(run):
    r = run("append", "-", "--json", input=EVENTS)
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert (out["appended"], out["duplicates"], out["head_seq"]) == (6, 0, 6)
    assert out["redacted"] == ["<stdin>:1: config.api_key"]
    r = run("append", "-", input=EVENTS)
    assert r.exit_code == 0
    assert r.stdout.startswith("appended 0 events (6 duplicates skipped); head 6 ")


def test_append_file_with_bad_line_names_file_and_line(run, tmp_path):
    f = tmp_path / "events.jsonl"
    f.write_text(
        EVENTS + '{"type":"metrics_recorded","study":"sweep","run":"r1","values":{"x":1}}\n'
    )
    r = run("append", str(f))
    assert r.exit_code == 1
    assert r.stdout == ""
    assert r.stderr == (
        f"error: {f}:7: metrics_recorded: run 'r1' is already finished "
        "(run_finished with status 'completed' at seq 6)\n"
    )
    # the whole file was refused: nothing appended, and the ledger was created empty
    r = run("status", "--json")
    assert json.loads(r.stdout)["head_seq"] == 0


def test_missing_file_is_one_error_line(run):
    r = run("append", "/nonexistent/x.jsonl")
    assert r.exit_code == 1
    assert r.stderr == "error: cannot read /nonexistent/x.jsonl: No such file or directory\n"


def test_commands_refuse_a_missing_ledger(run):
    for args in (["log"], ["status"], ["verify"]):
        r = run(*args)
        assert r.exit_code == 1, args
        assert r.stderr.startswith(f"error: no ledger at {run.path}")


def test_log_json_round_trips_into_a_replica(run, tmp_path):
    run("append", "-", input=EVENTS)
    r = run("log", "--json")
    lines = r.stdout.splitlines()
    assert len(lines) == 6
    first = json.loads(lines[0])
    assert {"seq", "id", "ts", "hash", "type", "study"} <= first.keys()
    assert first["ts"].endswith("Z") and len(first["ts"]) == 27
    assert json.loads(lines[3])["values"] == {"loss": "NaN"}
    replica = CliRunner().invoke(
        cli, ["--ledger", str(tmp_path / "replica"), "append", "-", "--json"], input=r.stdout
    )
    assert json.loads(replica.stdout)["head_hash"] == first_head(run)


def first_head(run):
    return json.loads(run("status", "--json").stdout)["head_hash"]


def test_log_filters(run):
    run("append", "-", input=EVENTS)
    r = run("log", "--since", "4", "--type", "run_finished")
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    assert len(lines) == 1 and "run_finished" in lines[0] and "status=completed" in lines[0]
    r = run("log", "--study", "other")
    assert r.stdout == "\n" or r.stdout == ""


def test_status_json_shape(run):
    run("append", "-", input=EVENTS)
    out = json.loads(run("status", "--json").stdout)
    assert out["studies"] == [
        {"study": "sweep", "cases": 1, "runs": {"completed": 1}, "events": 6, "last_seq": 6}
    ]
    assert out["head_seq"] == 6 and len(out["head_hash"]) == 64


def test_verify_ok_and_json(run):
    run("append", "-", input=EVENTS)
    r = run("verify", "--json")
    assert r.exit_code == 0
    out = json.loads(r.stdout)
    assert out["ok"] is True and out["events"] == 6 and out["head_seq"] == 6


def test_init_is_idempotent(run):
    r1 = run("init")
    r2 = run("init")
    assert r1.exit_code == r2.exit_code == 0
    assert "head seq 0" in r2.stdout


def test_unknown_command_and_bad_option_exit_2(run):
    assert run("frobnicate").exit_code == 2
    assert run("log", "--since", "-3").exit_code == 2


def test_status_as_of(run):
    run("append", "-", input=EVENTS)
    out = json.loads(run("status", "--json", "--as-of", "3").stdout)
    assert out["head_seq"] == 3
    assert out["studies"] == [
        {"study": "sweep", "cases": 1, "runs": {"running": 1}, "events": 3, "last_seq": 3}
    ]
    assert out["head_hash"] == json.loads(run("log", "--json").stdout.splitlines()[2])["hash"]
    r = run("status", "--as-of", "99")
    assert r.exit_code == 1 and "as-of seq 99 is outside the log" in r.stderr


def test_readonly_ledger_refuses_side_writes(run):
    from ledger import Ledger, StorageError

    run("append", "-", input=EVENTS)
    with Ledger(run.path, readonly=True) as ledger, pytest.raises(StorageError, match="read-only"):
        ledger.aux_put("checkpoints", b"k", b"v")


HUGE = 123456789012345678901234567890  # 97 bits


@pytest.mark.parametrize(
    "event, message",
    [
        (
            {"type": "run_started", "study": "sweep", "case": "base", "run": "r2", "seed": HUGE},
            "run_started: `seed` 1234567890...567890 (30 digits) is beyond 64 bits",
        ),
        (
            {"type": "metrics_recorded", "study": "sweep", "run": "r2", "values": {"x": HUGE}},
            "metrics_recorded: metric 'x': 1234567890...567890 (30 digits) does not fit a "
            "signed 64-bit int",
        ),
        (
            {"type": "case_created", "study": "sweep", "case": "c", "params": {"n": [1, -HUGE]}},
            "case_created: `params.n[1]` -123456789...567890 (31 digits) is beyond 64 bits",
        ),
        (
            {"type": "metrics_recorded", "study": "sweep", "run": "r2", "step": 2**63,
             "values": {"x": 1}},
            "metrics_recorded: expected `int` <= 9223372036854775807 - at `$.step`",
        ),
    ],
)  # fmt: skip
def test_ints_beyond_64_bits_are_one_error_line(run, event, message):
    """Issue 18: an OverflowError traceback before; now one line naming the field."""
    run("append", "-", input=EVENTS)
    start = '{"type":"run_started","study":"sweep","case":"base","run":"r2"}\n'
    r = run("append", "-", input=start + json.dumps(event) + "\n")
    assert r.exit_code == 1
    assert r.stdout == ""
    assert r.stderr.startswith(f"error: <stdin>:2: {message}")
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
