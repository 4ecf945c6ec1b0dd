"""R16 backup under load: a backup taken while 4 writers append verifies and is a prefix
of the live chain; compaction never makes it larger; an existing target is refused; a
backup killed with -9 never leaves anything but ``*.tmp`` behind; restore checks first."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from rel_common import ROOT, last_acked, script

from cli.main import cli
from ledger import Ledger
from ledger.backup import BackupError, backup, restore
from ledger.integrity import verify_isolated
from ledger.store import lmdb_env as _lmdb

pytestmark = pytest.mark.slow


def _wait_for(predicate, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def test_r16_backup_while_four_writers_append(tmp_path, seed):
    live = str(tmp_path / "live.ledger")
    acks = [str(tmp_path / f"acks-{w}") for w in range(4)]
    writers = [
        script("rel_writer.py", live, acks[w], w, seed, 40, 0.0, stdout=subprocess.DEVNULL)
        for w in range(4)
    ]
    try:
        _wait_for(lambda: all(last_acked(a) >= 3 for a in acks), what="writers to start")
        compact = backup(live, tmp_path / "compact")
        plain = backup(live, tmp_path / "plain", compact=False)
        result = CliRunner().invoke(cli, ["--ledger", live, "backup", str(tmp_path / "cli")])
        assert result.exit_code == 0, result.output
        assert "verified" in result.stdout
        during = max(last_acked(a) for a in acks)
    finally:
        codes = [w.wait(timeout=300) for w in writers]
    assert codes == [0, 0, 0, 0]
    with Ledger(live, create=False, readonly=True) as ledger:
        final = ledger.head
        for made in (compact, plain):
            report = verify_isolated(made.path)
            assert report.ok and (report.head_seq, report.head_hash) == (
                made.head_seq,
                made.head_hash,
            )
            assert 0 < made.head_seq <= final.seq
            assert ledger.hash_at(made.head_seq) == made.head_hash, "backup is not a prefix"
        cli_copy = verify_isolated(tmp_path / "cli")
        assert cli_copy.ok and ledger.hash_at(cli_copy.head_seq) == cli_copy.head_hash
    assert compact.head_seq < final.seq or during >= 39, "the backup did not overlap the writes"
    assert compact.bytes <= plain.bytes
    print(
        f"R16: backups at heads {compact.head_seq}, {plain.head_seq}, {cli_copy.head_seq} "
        f"of {final.seq}; compact {compact.bytes} B <= plain {plain.bytes} B"
    )
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]


def test_r16_existing_target_refused_and_backups_are_read_only(tmp_path):
    live = str(tmp_path / "live.ledger")
    with Ledger(live) as ledger:
        ledger.append([{"type": "study_created", "study": "s"}])
    dest = tmp_path / "b"
    dest.mkdir()
    with pytest.raises(BackupError, match="already exists; a backup never replaces anything"):
        backup(live, dest)
    assert os.listdir(dest) == []
    result = CliRunner().invoke(cli, ["--ledger", live, "backup", str(dest)])
    assert (
        result.exit_code == 1
        and result.stderr.startswith("error: ")
        and "already exists" in result.stderr
    )
    os.rmdir(dest)
    backup(live, dest)
    assert sorted(os.listdir(dest)) == ["BACKUP.json", "data.mdb"]
    with pytest.raises(_lmdb.UnsafeLocation, match="is a backup made by `ledger backup`"):
        Ledger(dest, create=False)
    with Ledger(dest, create=False, readonly=True) as copy:
        assert copy.head.seq == 1


def test_r16_restore_checks_first_and_never_overwrites(tmp_path):
    live = str(tmp_path / "live.ledger")
    with Ledger(live) as ledger:
        ledger.append([{"type": "study_created", "study": "s"}])
    backup(live, tmp_path / "b")
    with pytest.raises(BackupError, match="holds a ledger; restore never overwrites a live ledger"):
        restore(tmp_path / "b", live)
    with pytest.raises(BackupError, match="is not a backup made by `ledger backup`"):
        restore(live, tmp_path / "elsewhere")
    # A damaged backup is refused before anything is written.
    data = tmp_path / "b" / "data.mdb"
    raw = data.read_bytes()
    assert raw.count(b"study_created") == 1
    data.write_bytes(raw.replace(b"study_created", b"study_creatdd"))
    result = CliRunner().invoke(cli, ["restore", str(tmp_path / "b"), str(tmp_path / "r")])
    assert result.exit_code == 1 and "nothing was restored" in result.stderr
    assert not os.path.exists(tmp_path / "r")
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]


def test_r16_kill_during_backup_leaves_only_tmp(tmp_path):
    live = str(tmp_path / "live.ledger")
    with Ledger(live) as ledger:
        ledger.append([{"type": "study_created", "study": "s"}])
        for b in range(60):  # ~8 MB, so that copying, fsync and verifying take a while
            ledger.append(
                [
                    {
                        "type": "case_created",
                        "study": "s",
                        "case": f"{b}-{i}",
                        "params": {"p": "x" * 4000},
                    }
                    for i in range(32)
                ]
            )
    killed_mid_way = 0
    for attempt, delay in enumerate((0.0, 0.0, 0.01, 0.03, 0.1)):
        dest = str(tmp_path / f"b{attempt}")
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "--ledger", live, "backup", dest],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        prefix = os.path.basename(dest) + "."
        _wait_for(
            lambda proc=proc, prefix=prefix: (
                proc.poll() is not None
                or any(n.startswith(prefix) and n.endswith(".tmp") for n in os.listdir(tmp_path))
            ),
            what="the backup's temporary folder",
        )
        time.sleep(delay)
        proc.kill()
        proc.wait()
        leftovers = [n for n in os.listdir(tmp_path) if n.startswith(prefix)]
        assert all(n.endswith(".tmp") for n in leftovers), leftovers
        if os.path.exists(dest):  # it finished before the kill: then it is complete
            assert verify_isolated(dest).ok
            assert not leftovers
        else:
            killed_mid_way += 1
            with pytest.raises(Exception):
                Ledger(dest, create=False)
    print(f"R16: {killed_mid_way} of 5 backups killed half-way left only *.tmp")
    assert killed_mid_way >= 1, "no kill landed during a backup"
