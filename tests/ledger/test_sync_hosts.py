"""Two hosts record runs of one study defined on a third, each into its own ledger and
in its own process; ``ledger sync`` brings them together. The result must be what one
ledger recording everything directly would hold: every event once, the same rankings
and the same export rows (seq columns aside)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from sync_streams import STUDY, definitions, event_ids, export_rows, rank_json, run_batches

from ledger import Ledger

pytestmark = pytest.mark.slow

HERE = os.path.dirname(os.path.abspath(__file__))
HOSTS = {
    "a": (-30.0, [(1, 3, "completed", True), (2, 2, "completed", False), (0, 1, "failed", False)]),
    "b": (12.5, [(1, 2, "completed", False), (3, 0, "completed", False), (2, 4, "timeout", True)]),
}


def ledger_cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def done(*procs: subprocess.Popen) -> list[str]:
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outs.append(out)
    return outs


@pytest.fixture(params=["lmdb", "postgresql"])
def shared(request, tmp_path):
    """The shared ledger: a folder, or a schema on the PostgreSQL server."""
    if request.param == "lmdb":
        return str(tmp_path / "shared.ledger")
    from tests import pg

    return request.getfixturevalue("pg_server").schema_url(pg.new_schema())


def test_two_hosts_synced_into_one_ledger_equal_one_ledger_recording_directly(tmp_path, shared):
    local = {h: str(tmp_path / f"host-{h}.ledger") for h in HOSTS}
    defs = tmp_path / "defs.jsonl"
    defs.write_text("".join(json.dumps(e) + "\n" for e in definitions()))
    done(ledger_cli("--ledger", shared, "append", str(defs)))

    # Each host pulls the study's definition, then records offline, at the same time.
    done(*(ledger_cli("sync", shared, local[h], "--study", STUDY) for h in HOSTS))
    done(
        *(
            subprocess.Popen(
                [
                    sys.executable,
                    os.path.join(HERE, "sync_host.py"),
                    local[h],
                    h,
                    str(skew),
                    json.dumps(runs),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for h, (skew, runs) in HOSTS.items()
        )
    )
    # Both ship their ledgers to the shared one at once.
    pushed = done(*(ledger_cli("sync", local[h], shared, "--json") for h in HOSTS))
    host_events = {
        h: sum(map(len, run_batches(h, runs, skew=skew))) for h, (skew, runs) in HOSTS.items()
    }
    for h, out in zip(HOSTS, pushed):
        result = json.loads(out)
        assert result["appended"] == host_events[h]
        assert result["duplicates"] == len(definitions())  # what it had pulled

    direct = str(tmp_path / "direct.ledger")
    with Ledger(direct) as led:
        led.append(definitions())
        a, b = (run_batches(h, runs, skew=skew) for h, (skew, runs) in HOSTS.items())
        for pair in zip(a, b):  # the hosts' batches as they might have interleaved
            for batch in pair:
                led.append(batch)

    ids = event_ids(shared)
    assert len(ids) == len(set(ids)) == len(event_ids(direct))
    assert set(ids) == set(event_ids(direct))
    assert rank_json(shared) == rank_json(direct)
    assert export_rows(shared) == export_rows(direct)
    with Ledger(shared, create=False) as led:
        assert led.verify().ok

    # A second sync appends nothing, and says so.
    again = done(*(ledger_cli("sync", local[h], shared) for h in HOSTS))
    assert all(line.startswith("appended 0 events: nothing new; ") for line in again)
    # The merge of the three ledgers agrees as well.
    merged = str(tmp_path / "merged.ledger")
    done(ledger_cli("merge", local["b"], shared, local["a"], "--out", merged))
    assert sorted(event_ids(merged)) == sorted(ids)
    assert export_rows(merged) == export_rows(direct)
