from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ledger import Ledger

WRITER = str(Path(__file__).with_name("mp_writer.py"))


@pytest.mark.slow
def test_four_processes_append_at_once(tmp_path):
    path = str(tmp_path / "mp.ledger")
    procs = [
        subprocess.Popen(
            [sys.executable, WRITER, path, f"w{i}", "30", "50"], stdout=subprocess.PIPE
        )
        for i in range(4)
    ]
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0 and out.strip() == b"done"
    with Ledger(path, create=False) as ledger:
        # study and case appear once (the other three are duplicates), 4 run_started
        assert ledger.head.seq == 1 + 1 + 4 + 4 * 30 * 50
        report = ledger.verify()
        assert report.ok and report.events == ledger.head.seq
        per_run: dict[str, list[int]] = {}
        for env in ledger.read(types=["metrics_recorded"]):
            per_run.setdefault(env.event.run, []).append(env.event.step)
        assert {k: v == list(range(1500)) for k, v in per_run.items()} == {
            f"w{i}": True for i in range(4)
        }
