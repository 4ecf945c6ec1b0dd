"""Changing stored bytes makes verify name the seq."""

from __future__ import annotations

import shutil

import pytest

from ledger import Ledger
from ledger.integrity import verify_isolated


def _fill(path, batches=5, size=20):
    with Ledger(path) as ledger:
        ledger.append(
            [
                {"type": "study_created", "study": "v"},
                {"type": "case_created", "study": "v", "case": "c"},
                {"type": "run_started", "study": "v", "case": "c", "run": "r"},
            ]
        )
        for b in range(batches):
            ledger.append(
                [
                    {
                        "type": "metrics_recorded",
                        "study": "v",
                        "run": "r",
                        "step": b * size + i,
                        "values": {"marker": 1000003 + b * size + i},
                    }
                    for i in range(size)
                ]
            )
        return ledger.head


def _flip_value_of(path, step):
    """Change the stored bytes of the event carrying ``step`` (its marker value)."""
    data = (path / "data.mdb").read_bytes()
    marker = (1000003 + step).to_bytes(4, "big")
    needle = b"\xce" + marker
    # LMDB's copy-on-write leaves stale copies in free pages: change every copy.
    assert data.count(needle) >= 1
    flipped = needle[:4] + bytes([needle[4] ^ 0x01])
    (path / "data.mdb").write_bytes(data.replace(needle, flipped))


@pytest.mark.parametrize("step", [0, 37, 99])
def test_verify_names_the_changed_seq(tmp_path, step):
    path = tmp_path / "v.ledger"
    head = _fill(str(path))
    assert verify_isolated(str(path)).ok
    _flip_value_of(path, step)
    report = verify_isolated(str(path))
    assert not report.ok
    assert report.first_bad_seq == 4 + step
    assert f"corrupt at seq {4 + step}" in report.error
    assert head.seq == 103


def test_verify_in_process_matches(tmp_path):
    path = tmp_path / "v.ledger"
    _fill(str(path))
    copy = tmp_path / "copy.ledger"
    shutil.copytree(path, copy)
    _flip_value_of(copy, 50)
    with Ledger(str(copy), create=False) as ledger:
        report = ledger.verify()
    assert (report.ok, report.first_bad_seq) == (False, 54)
