"""``ledger sync --follow``: a separate process that copies what a writer appends, and
stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from ledger import Ledger

pytestmark = pytest.mark.slow


def study(name: str) -> list[dict]:
    return [
        {"type": "study_created", "study": name},
        *({"type": "case_created", "study": name, "case": f"c{i}"} for i in range(20)),
    ]


def head(path: str) -> int:
    with Ledger(path) as led:
        return led.head.seq


def wait_for(path: str, seq: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while head(path) < seq:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} did not reach seq {seq}"
        time.sleep(0.02)


def test_follow_copies_new_events_as_they_come_and_stops_on_sigterm(tmp_path):
    source, target = str(tmp_path / "node.ledger"), str(tmp_path / "shared.ledger")
    with Ledger(source) as led:
        led.append(study("s0"))
    proc = subprocess.Popen(
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
    try:
        wait_for(target, 21, proc)
        for n in range(1, 4):  # a writer in another process appends while it runs
            writer = subprocess.run(
                [sys.executable, "-m", "cli.main", "--ledger", source, "append", "-"],
                input="".join(json.dumps(e) + "\n" for e in study(f"s{n}")),
                capture_output=True,
                text=True,
            )
            assert writer.returncode == 0, writer.stderr
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
