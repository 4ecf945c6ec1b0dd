"""Recorder.record: ready-made events through the Recorder's buffer, as they are."""

from __future__ import annotations

import pytest

from ledger import Ledger, LedgerDecodeError, Recorder, RuleViolation
from ledger.codec import format_ts
from ledger.events import CaseCreated

T = "2024-05-01T12:00:00.250000Z"


def test_record_keeps_ids_and_times_and_commits_with_the_buffer(tmp_path):
    path = str(tmp_path / "r.ledger")
    with Recorder(path, "s", interval=0) as rec:
        rec.record(
            [
                {"type": "case_created", "study": "s", "case": "c", "id": "my:case", "ts": T},
                {"type": "run_started", "study": "s", "case": "c", "run": "r", "ts": T},
                CaseCreated(study="s", case="d", params={"api_key": "sk-live-0123456789abcdef"}),
            ]
        )
        with Ledger(path, readonly=True) as led:
            assert led.head.seq == 1  # buffered: only the study so far
        assert rec.flush() == 3
    with Ledger(path, readonly=True) as led:
        envs = list(led.read())
    assert [e.event.TYPE for e in envs] == [
        "study_created",
        "case_created",
        "run_started",
        "case_created",
    ]
    assert envs[1].id == "my:case"
    assert format_ts(envs[1].ts) == T and format_ts(envs[2].ts) == T
    assert envs[3].ts >= envs[0].ts  # stamped at the call
    assert envs[3].event.params == {"api_key": "[redacted]"}


def test_record_refuses_at_the_call_and_buffers_nothing_of_it(tmp_path):
    with Recorder(str(tmp_path / "r.ledger"), "s", interval=0) as rec:
        good = {"type": "case_created", "study": "s", "case": "c"}
        with pytest.raises(LedgerDecodeError, match="step"):
            rec.record([good, {"type": "metrics_recorded", "study": "s", "run": "r",
                               "values": {"x": 1.0}, "step": -1}])  # fmt: skip
        with pytest.raises(RuleViolation, match="not 'other'"):
            rec.record([good, {"type": "case_created", "study": "other", "case": "c"}])
        assert rec.flush() == 0
        rec.record([good])
        rec.record([good])  # the same content again: a duplicate, appended once
        assert rec.flush() == 1
