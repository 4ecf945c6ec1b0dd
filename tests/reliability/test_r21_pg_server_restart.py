"""R21: the PostgreSQL server restarted while a Recorder runner records.

The runner (a separate process) records cases through the Recorder into a ledger on a
private cluster (``tests/pg.py``: the session's shared server is never restarted); the
test restarts the server under it, twice. The Recorder keeps buffering while the server
is away, says so on stderr once per outage, retries, and commits everything once it is
back: the study completes with every case's run done once, no value recorded twice,
nothing acknowledged lost, and the chain verifying. (Were the runner to die, the test
runs it again and it resumes; it must not need to.)
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter

import pytest
from rel_common import script

from ledger import Ledger

pytestmark = pytest.mark.slow

CASES, STEPS = 12, 40


def _run_until_done(url: str, restart) -> tuple[list[str], int]:
    """Start the runner, restart the server under it; (its stderr lines, lives)."""
    said: list[str] = []
    for life in range(1, 4):
        proc = script(
            "rel_pg_runner.py", url, CASES, STEPS, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert proc.stdout.readline() == b"ready\n", proc.stderr.read().decode()
        if life == 1:
            restart()
        out, err = proc.communicate(timeout=180)
        said.extend(err.decode().splitlines())
        if proc.returncode == 0 and out.endswith(b"done\n"):
            return said, life
    raise AssertionError(f"the runner never finished: {said[-5:]}")


def test_r21_server_restarted_under_a_recording_runner(pg_cluster):
    url = pg_cluster.schema_url("r21")
    with Ledger(url):
        pass

    def restart() -> None:
        for _ in range(2):
            time.sleep(1.0)  # the runner is recording
            pg_cluster.stop()
            time.sleep(1.5)  # the server is away: the runner buffers
            pg_cluster.start()

    said, lives = _run_until_done(url, restart)
    outages = [line for line in said if "server unreachable" in line]
    assert lives == 1, said
    assert 1 <= len(outages) <= 2, said  # one line per outage, not one per retry
    assert any("server reachable again" in line for line in said), said
    with Ledger(url, create=False, readonly=True) as led:
        assert led.verify().ok
        events = list(led.read(study="r21"))
    runs = {e.event.run: e.event.case for e in events if e.event.TYPE == "run_started"}
    finished = Counter(e.event.run for e in events if e.event.TYPE == "run_finished")
    completed = {
        e.event.run
        for e in events
        if e.event.TYPE == "run_finished" and e.event.status == "completed"
    }
    assert sorted(runs[r] for r in completed) == sorted(f"c{c}" for c in range(CASES))
    assert all(n == 1 for n in finished.values())
    values = Counter(
        (e.event.run, e.event.step, name)
        for e in events
        if e.event.TYPE == "metrics_recorded"
        for name in e.event.values
    )
    assert max(values.values()) == 1, "a value was recorded twice"
    for run in completed:
        steps = {s for (r, s, n) in values if r == run and n == "loss"}
        assert steps == set(range(STEPS)), f"{run} lost stepped values"
        assert (run, None, "final") in values, f"{run} lost its final value"
