"""Random valid batches: seqs gapless, chain verifies, re-append is a no-op, refused
batches leave nothing."""

from __future__ import annotations

import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import Ledger, RuleViolation

names = st.text(alphabet="abcdefgh", min_size=1, max_size=3)
values = st.dictionaries(
    st.sampled_from(["loss", "acc", "lat"]),
    st.one_of(st.integers(-1000, 1000), st.floats(allow_nan=True, allow_infinity=True)),
    min_size=1,
    max_size=3,
)


@st.composite
def study_batches(draw):
    """A valid study as a list of batches (cases, runs, metrics, finishes)."""
    events = [{"type": "study_created", "study": "p"}]
    cases = draw(st.lists(names, min_size=1, max_size=4, unique=True))
    for c in cases:
        events.append({"type": "case_created", "study": "p", "case": c})
    open_runs = []
    for i in range(draw(st.integers(1, 6))):
        run = f"r{i}"
        events.append(
            {"type": "run_started", "study": "p", "case": draw(st.sampled_from(cases)), "run": run}
        )
        open_runs.append(run)
        for step in range(draw(st.integers(0, 4))):
            events.append(
                {
                    "type": "metrics_recorded",
                    "study": "p",
                    "run": run,
                    "step": step,
                    "values": draw(values),
                }
            )
        if draw(st.booleans()):
            events.append(
                {
                    "type": "run_finished",
                    "study": "p",
                    "run": run,
                    "status": draw(st.sampled_from(["completed", "failed", "pruned"])),
                }
            )
    cuts = sorted(draw(st.lists(st.integers(1, len(events)), max_size=4)))
    batches, start = [], 0
    for cut in cuts + [len(events)]:
        if cut > start:
            batches.append(events[start:cut])
            start = cut
    return batches


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(study_batches(), st.integers(0, 10))
def test_random_batches_keep_every_invariant(fast_base, batches, bad_at):
    with tempfile.TemporaryDirectory(dir=fast_base) as tmp, Ledger(tmp + "/l") as ledger:
        total = 0
        for i, batch in enumerate(batches):
            if i == bad_at:
                head = ledger.head
                refused = batch + [
                    {"type": "metrics_recorded", "study": "p", "run": "nope", "values": {"x": 1}}
                ]
                try:
                    ledger.append(refused)
                except RuleViolation:
                    pass
                else:  # pragma: no cover - the last event is always refused
                    raise AssertionError("refused batch was appended")
                assert ledger.head == head
            r = ledger.append(batch)
            total += r.appended
            assert r.head_seq == total
        seqs = [e.seq for e in ledger.read()]
        assert seqs == list(range(1, total + 1))
        report = ledger.verify()
        assert report.ok and report.events == total
        head = ledger.head
        for batch in batches:
            again = ledger.append(batch)
            assert again.appended == 0
        assert ledger.head == head
        assert ledger.storage_info()["ids"] == total
