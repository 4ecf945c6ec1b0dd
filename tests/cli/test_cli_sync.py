"""``ledger sync`` and ``ledger merge`` as a user types them."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli.main import cli
from ledger import Ledger

EVENTS = [
    {"type": "study_created", "study": "sweep", "ts": 1_767_225_600},
    {"type": "case_created", "study": "sweep", "case": "base", "ts": 1_767_225_601},
    {"type": "run_started", "study": "sweep", "case": "base", "run": "r1", "ts": 1_767_225_602},
    {"type": "run_finished", "study": "sweep", "run": "r1", "status": "completed"},
]


@pytest.fixture
def ledgers(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with Ledger("node.ledger") as led:
        led.append(EVENTS)
    with Ledger("other.ledger") as led:
        led.append([{"type": "study_created", "study": "other", "ts": 1_767_225_600}])
    return tmp_path


def ledger_cli(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_sync_says_what_it_copied_then_that_nothing_is_new(ledgers):
    r = ledger_cli("sync", "node.ledger", "shared.ledger")
    assert r.exit_code == 0, r.stderr
    with Ledger("shared.ledger", readonly=True) as led:
        head = led.head
    assert r.stdout == (
        f"appended 4 events; shared.ledger holds node.ledger up to seq 4; head 4 {head.hash[:16]}\n"
    )
    r = ledger_cli("sync", "node.ledger", "shared.ledger")
    assert r.stdout == (
        "appended 0 events: nothing new; shared.ledger holds node.ledger up to seq 4; "
        f"head 4 {head.hash[:16]}\n"
    )
    assert r.stderr == ""


def test_sync_json_has_the_design_keys(ledgers):
    ledger_cli("sync", "other.ledger", "shared.ledger")
    r = ledger_cli("sync", "node.ledger", "shared.ledger", "--json")
    out = json.loads(r.stdout)
    assert {k: out[k] for k in ("source", "target", "appended", "duplicates")} == {
        "source": "node.ledger",
        "target": "shared.ledger",
        "appended": 4,
        "duplicates": 0,
    }
    assert (out["source_seq"], out["target_head_seq"]) == (4, 5)


def test_sync_of_one_study_says_which(ledgers):
    ledger_cli("sync", "other.ledger", "node.ledger")
    r = ledger_cli("sync", "node.ledger", "laptop.ledger", "--study", "other")
    assert r.exit_code == 0
    assert r.stdout.startswith(
        "appended 1 events; laptop.ledger holds node.ledger up to seq 5 (studies other); head 1 "
    )


def test_a_refused_event_is_one_error_line_and_exit_1(ledgers):
    with Ledger("shared.ledger") as led:
        led.append(EVENTS[:3])
        led.append([{"type": "run_finished", "study": "sweep", "run": "r1", "status": "failed"}])
    r = ledger_cli("sync", "node.ledger", "shared.ledger")
    assert r.exit_code == 1
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: node.ledger seq 4 (id ")
    assert lines[0].endswith(
        ", study sweep, run r1): run_finished: refused by shared.ledger: run 'r1' is already "
        "finished (run_finished with status 'failed' at seq 4); the events before it are "
        "copied (shared.ledger holds node.ledger up to seq 3)"
    )


def test_sync_errors_are_one_line(ledgers):
    r = ledger_cli("sync", "nope.ledger", "shared.ledger")
    assert (r.exit_code, r.stderr) == (
        1,
        "error: no ledger at nope.ledger: check the source's path (sync and merge read "
        "ledgers that exist, and create only their target)\n",
    )
    r = ledger_cli("sync", "node.ledger", "node.ledger")
    assert r.exit_code == 1 and "are the same ledger" in r.stderr
    r = ledger_cli("sync", "node.ledger")
    assert r.exit_code == 2


def test_merge_prints_the_union_and_refuses_an_existing_out(ledgers):
    r = ledger_cli("merge", "node.ledger", "other.ledger", "node.ledger", "--out", "all.ledger")
    assert r.exit_code == 0, r.stderr
    with Ledger("all.ledger", readonly=True) as led:
        head = led.head
    assert r.stdout == (
        f"merged 3 ledgers into all.ledger: 5 events (4 duplicates skipped); head 5 "
        f"{head.hash[:16]}\n"
    )
    r = ledger_cli("merge", "other.ledger", "node.ledger", "--out", "again.ledger", "--json")
    out = json.loads(r.stdout)
    assert (out["head_seq"], out["head_hash"], out["appended"]) == (5, head.hash, 5)
    assert out["sources"] == [
        {"source": "other.ledger", "events": 1},
        {"source": "node.ledger", "events": 4},
    ]
    r = ledger_cli("merge", "node.ledger", "--out", "all.ledger")
    assert (r.exit_code, r.stderr) == (
        1,
        "error: all.ledger already exists; merge writes a new ledger: remove it or choose "
        "another --out\n",
    )
    assert ledger_cli("merge", "node.ledger").exit_code == 2


def with_password(url: str, password: str) -> str:
    """``url`` with a user and ``password`` in its authority (unused by a server that
    trusts the local socket)."""
    import getpass
    from urllib.parse import urlsplit

    netloc = urlsplit(url).netloc
    if "@" in netloc:
        pytest.skip("the test server's URL already names a user")
    return url.replace(f"://{netloc}", f"://{getpass.getuser()}:{password}@{netloc}", 1)


def test_a_password_in_a_url_never_shows(ledgers, pg_server):
    from tests import pg

    secret = "s3cret-pw"
    url = with_password(pg_server.schema_url(pg.new_schema()), secret)
    r = ledger_cli("sync", "node.ledger", url, "--json")
    if r.exit_code and "authentication" in r.stderr.lower():
        pytest.skip("the test server checks passwords")
    assert r.exit_code == 0, r.stderr
    shown = json.loads(r.stdout)["target"]
    assert shown == url.replace(secret, "***") and secret not in r.stdout + r.stderr
    with Ledger("late.ledger") as led:  # a node whose run finished otherwise
        led.append(EVENTS[:3])
        led.append([{"type": "run_finished", "study": "sweep", "run": "r1", "status": "failed"}])
    r = ledger_cli("sync", "late.ledger", url)
    assert r.exit_code == 1 and secret not in r.stdout + r.stderr
    assert r.stderr.startswith("error: late.ledger seq 4 ") and f"refused by {shown}: " in r.stderr
    r = ledger_cli("merge", url, "late.ledger", "--out", "x.ledger")
    assert r.exit_code == 1 and secret not in r.stdout + r.stderr
    assert f"{shown} seq 4 " in r.stderr or "late.ledger seq 4 " in r.stderr
