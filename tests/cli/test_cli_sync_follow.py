"""``ledger sync --follow``: a separate process that copies what a writer appends, and
stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid

import pytest

from ledger import Ledger, LedgerNotFound, StorageError

pytestmark = pytest.mark.slow


def study(name: str) -> list[dict]:
    return [
        {"type": "study_created", "study": name},
        *({"type": "case_created", "study": name, "case": f"c{i}"} for i in range(20)),
    ]


def head(location: str) -> int:
    try:
        with Ledger(location, create=False, readonly=True) as led:
            return led.head.seq
    except (LedgerNotFound, StorageError):  # not created yet, or being created
        return 0


def wait_for(path: str, seq: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while head(path) < seq:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} did not reach seq {seq}"
        time.sleep(0.02)


def append_study(source: str, name: str) -> None:
    """A writer in another process appends a study of 21 events to ``source``."""
    writer = subprocess.run(
        [sys.executable, "-m", "cli.main", "--ledger", source, "append", "-"],
        input="".join(json.dumps(e) + "\n" for e in study(name)),
        capture_output=True,
        text=True,
    )
    assert writer.returncode == 0, writer.stderr


def start_follow(source: str, target: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli.main",
            "sync",
            source,
            target,
            "--follow",
            "--interval",
            "0.05",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_follow_copies_new_events_as_they_come_and_stops_on_sigterm(tmp_path):
    source, target = str(tmp_path / "node.ledger"), str(tmp_path / "shared.ledger")
    with Ledger(source) as led:
        led.append(study("s0"))
    proc = start_follow(source, target)
    try:
        wait_for(target, 21, proc)
        for n in range(1, 4):  # a writer in another process appends while it runs
            append_study(source, f"s{n}")
            wait_for(target, 21 * (n + 1), proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    result = json.loads(out)
    assert (result["appended"], result["source_seq"], result["stopped"]) == (84, 84, True)
    assert err == f"following {source} into {target} every 0.05 s; SIGTERM or Ctrl-C stops\n"
    with Ledger(source, readonly=True) as src, Ledger(target, readonly=True) as dst:
        assert [e.id for e in dst.read()] == [e.id for e in src.read()]
        assert dst.verify().ok


def test_follow_waits_out_a_target_server_restart_and_catches_up(tmp_path, pg_cluster):
    """The target's server is stopped and started again: a cluster of this test's own
    (``pg_cluster``), never the session's shared server."""
    cluster = pg_cluster
    source = str(tmp_path / "node.ledger")
    # A password in the URL (the cluster trusts its socket and ignores it) must never show.
    target = cluster.schema_url(f"follow_{uuid.uuid4().hex[:8]}").replace(
        "postgres@", "postgres:s3cret-pw@", 1
    )
    shown = target.replace("s3cret-pw", "***")
    with Ledger(source) as led:
        led.append(study("s0"))
    proc = start_follow(source, target)
    try:
        wait_for(target, 21, proc)
        cluster.stop()  # the shared ledger's server goes away ...
        try:
            append_study(source, "s1")  # ... while the node keeps recording
            time.sleep(1.0)  # the sync finds the target gone and waits
        finally:
            cluster.start()
        wait_for(target, 42, proc)  # and catches up once it is back
        append_study(source, "s2")
        wait_for(target, 63, proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    result = json.loads(out)
    assert (result["appended"], result["duplicates"], result["stopped"]) == (63, 0, True)
    assert "s3cret-pw" not in out + err and result["target"] == shown
    lines = err.splitlines()
    assert lines[0].startswith(f"following {source} into {shown} every 0.05 s")
    waits = [line for line in lines if line.startswith("waiting: ")]
    assert waits and all(
        line.endswith("; retrying with backoff (every 30 s at most)") for line in waits
    )
    assert len(waits) < 5, err  # said when the reason changes, not at every retry
    assert f"reconnected; {shown} is up to date" in lines, err
    assert "Traceback" not in err
    with Ledger(source, readonly=True) as src, Ledger(target, readonly=True) as dst:
        assert [e.id for e in dst.read()] == [e.id for e in src.read()]
        assert dst.verify().ok
