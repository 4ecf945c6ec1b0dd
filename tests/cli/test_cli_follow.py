from __future__ import annotations

import subprocess
import sys
import time

from ledger import Ledger


def test_log_follow_prints_new_events(tmp_path):
    path = str(tmp_path / "f.ledger")
    with Ledger(path) as ledger:
        ledger.append([{"type": "study_created", "study": "s"}])
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cli.main",
                "--ledger",
                path,
                "log",
                "--follow",
                "--interval",
                "0.05",
                "--json",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            first = proc.stdout.readline()
            assert '"seq":1' in first
            time.sleep(0.2)
            ledger.append([{"type": "case_created", "study": "s", "case": "late"}])
            second = proc.stdout.readline()
            assert '"case":"late"' in second and '"seq":2' in second
        finally:
            proc.kill()
            proc.wait()
