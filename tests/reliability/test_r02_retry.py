"""R2 ack-lost retry, unit part (the stream part is R1's checker): re-sending a batch
with the same ids is a no-op; the same id with other content is refused, atomically."""

from __future__ import annotations

import copy

import pytest
from rel_common import make_batch

from ledger import IdempotencyConflict, Ledger


def test_same_batch_twice_is_all_duplicates(fast_dir):
    batch = make_batch(0, 0, seed=7)
    with Ledger(f"{fast_dir}/r2.ledger") as ledger:
        first = ledger.append(batch)
        again = ledger.append(copy.deepcopy(batch))
        assert (first.appended, first.duplicates) == (len(batch), 0)
        assert (again.appended, again.duplicates) == (0, len(batch))
        assert again.head_seq == first.head_seq and again.head_hash == first.head_hash
        assert ledger.storage_info()["ids"] == len(batch)


def test_same_id_other_content_is_refused_and_nothing_is_appended(fast_dir):
    batch = make_batch(0, 0, seed=7) + make_batch(0, 1, seed=7)
    with Ledger(f"{fast_dir}/r2.ledger") as ledger:
        ledger.append(batch[:-1])
        head = ledger.head
        changed = copy.deepcopy(batch)
        changed[-2]["params"]["x"] += 1e-9  # one value changed, same id
        with pytest.raises(IdempotencyConflict) as info:
            ledger.append(changed)
        assert f"id {changed[-2]['id']!r} is already in the log" in str(info.value)
        assert "with other content" in str(info.value)
        assert ledger.head == head, "a refused batch moved the head"
        assert ledger.storage_info()["ids"] == len(batch) - 1
        assert [e.id for e in ledger.read()] == [e["id"] for e in batch[:-1]]


def test_derived_ids_make_resent_events_duplicates(fast_dir):
    events = [
        {"type": "study_created", "study": "s"},
        {"type": "case_created", "study": "s", "case": "a", "params": {"lr": 0.1}},
    ]
    with Ledger(f"{fast_dir}/r2.ledger") as ledger:
        ledger.append(events)
        resent = [dict(e, ts="2026-01-01T00:00:00Z") for e in events]  # ts never in the id
        assert ledger.append(resent).duplicates == 2
