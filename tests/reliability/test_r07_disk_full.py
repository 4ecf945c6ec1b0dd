"""R7 disk full: a failed write is LedgerWriteFailed, leaves nothing of its batch, the
ledger reopens and verifies, and after space is freed the chain simply continues."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from rel_common import script

from ledger import Ledger, LedgerWriteFailed
from ledger.integrity import verify_isolated

KIB = 1024


def test_r7_file_size_limit(tmp_path):
    """Unprivileged: the writer runs with RLIMIT_FSIZE=512 KiB (the EFBIG form)."""
    proc = script("rel_diskfull.py", tmp_path / "r7.ledger", 512 * KIB, stdout=subprocess.PIPE)
    out = json.loads(proc.communicate(timeout=120)[0])
    assert proc.returncode == 0
    assert out["writemap"] is False and out["sync"] and out["metasync"]
    assert out["batches"] > 5, "the limit was hit before anything was written"
    assert "the disk is full or failing; nothing of this batch was written" in out["error"]
    # LMDB reports EFBIG, or EIO when a write was cut short: both are LedgerWriteFailed.
    assert "File too large" in out["error"] or "Input/output error" in out["error"]
    assert out["head_after"] == out["head_before"]
    assert not out["failed_batch_visible"]
    assert out["verify_after_reopen"] == [True, *out["head_before"]]
    assert out["append_after_free"] == [6, out["head_before"][0] + 1, out["head_before"][0] + 6]
    assert out["prefix_kept"] and out["verify_final"]


@pytest.fixture
def small_tmpfs(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount(8) here: the 1 MiB tmpfs variant needs it")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a 1 MiB tmpfs (needs root): {done.stderr.decode().strip()}")
    try:
        yield str(mnt)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_r7_real_enospc_on_a_full_tmpfs(small_tmpfs):
    filler = os.path.join(small_tmpfs, "filler")
    with open(filler, "wb") as fh:
        fh.write(b"\0" * (256 * KIB))
    path = os.path.join(small_tmpfs, "r7.ledger")
    with Ledger(path) as ledger:
        ledger.append([{"type": "study_created", "study": "s"}])
        with pytest.raises(LedgerWriteFailed) as info:
            for b in range(10_000):
                head = ledger.head
                failing = b
                ledger.append(
                    [
                        {
                            "type": "case_created",
                            "study": "s",
                            "case": f"b{b}-{i}",
                            "params": {"pad": "y" * 900},
                        }
                        for i in range(6)
                    ]
                )
        assert "No space left on device" in str(info.value)
        assert "Free space" in str(info.value)
        assert ledger.head == head
        assert not any(e.event.case.startswith(f"b{failing}-") for e in ledger.read(since=1))
    assert verify_isolated(path).ok
    os.unlink(filler)
    with Ledger(path, create=False) as ledger:
        result = ledger.append([{"type": "case_created", "study": "s", "case": "after"}])
        assert result.first_seq == head.seq + 1
        assert ledger.hash_at(head.seq) == head.hash
        assert ledger.verify().ok
