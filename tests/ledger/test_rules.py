"""Every append-time rule (docs/architecture.md), and the exact text of its error."""

from __future__ import annotations

import pytest
from study_events import basic_study

from ledger import HeadMoved, IdempotencyConflict, Ledger, RuleViolation
from ledger.errors import EventTooLarge, LedgerDecodeError
from ledger.events import MetricsRecorded


def test_basic_study_appends_and_verifies(ledger):
    r = ledger.append(basic_study())
    assert (r.appended, r.duplicates, r.head_seq, r.first_seq) == (7, 0, 7, 1)
    assert ledger.head == (7, r.head_hash)
    assert [e.seq for e in ledger.read()] == list(range(1, 8))
    assert ledger.verify().ok


def test_reappending_the_same_events_is_a_noop(ledger):
    first = ledger.append(basic_study())
    again = ledger.append(basic_study())
    assert (again.appended, again.duplicates) == (0, 7)
    assert again.head_hash == first.head_hash


def test_same_id_other_content_is_a_conflict(ledger):
    ledger.append(
        basic_study()[:1] + [{"type": "case_created", "study": "s", "case": "a", "id": "k1"}]
    )
    with pytest.raises(IdempotencyConflict) as err:
        ledger.append([{"type": "case_created", "study": "s", "case": "b", "id": "k1"}])
    assert str(err.value) == (
        "event 1 of the batch: case_created: id 'k1' is already in the log (seq 2) with other "
        "content; a correction is a new event: give it another id, or none"
    )
    assert ledger.head.seq == 2


def test_explicit_ids_record_the_same_value_twice(ledger):
    ledger.append(basic_study()[:4])
    ev = {"type": "metrics_recorded", "study": "s", "run": "r1", "step": 3, "values": {"x": 1}}
    r = ledger.append([dict(ev, id="a"), dict(ev, id="b")])
    assert (r.appended, r.duplicates) == (2, 0)
    r = ledger.append([ev, ev])
    assert (r.appended, r.duplicates) == (1, 1)


@pytest.mark.parametrize(
    ("events", "message"),
    [
        (
            [{"type": "case_created", "study": "nope", "case": "c"}],
            "case_created: study 'nope' does not exist; append its study_created first",
        ),
        (
            [{"type": "run_started", "study": "s", "case": "ghost", "run": "r9"}],
            "run_started: case 'ghost' does not exist in study 's'; append its case_created (or eco_applied) first",
        ),
        (
            [{"type": "metrics_recorded", "study": "s", "run": "r7", "values": {"a": 1}}],
            "metrics_recorded: run 'r7' does not exist in study 's'; append its run_started first",
        ),
        (
            [{"type": "metrics_recorded", "study": "s", "run": "r1", "values": {"a": 1}}],
            "metrics_recorded: run 'r1' is already finished (run_finished with status 'completed' at seq 7)",
        ),
        (
            [{"type": "run_finished", "study": "s", "run": "r1", "status": "failed"}],
            "run_finished: run 'r1' is already finished (run_finished with status 'completed' at seq 7)",
        ),
        (
            [{"type": "case_created", "study": "s", "case": "base", "params": {"lr": 1}}],
            "case_created: case 'base' already exists in study 's' (created at seq 2); case ids are unique within a study",
        ),
        (
            [{"type": "run_started", "study": "s", "case": "base", "run": "r1"}],
            "run_started: run 'r1' already exists in study 's' (case 'c1'); run ids are unique within a study",
        ),
        (
            [{"type": "eco_applied", "study": "s", "case": "c2", "parent": "ghost", "eco": "x"}],
            "eco_applied: parent case 'ghost' does not exist in study 's'; create parents before their children",
        ),
        (
            [{"type": "case_created", "study": "s", "case": "c3", "parents": ["base", "ghost"]}],
            "case_created: parent case 'ghost' does not exist in study 's'; create parents before their children",
        ),
        (
            [{"type": "study_created", "study": "s", "description": "other"}],
            "study_created: study 's' already exists (created at seq 1) with other content; a study is created once",
        ),
        (
            [{"type": "selection_recorded", "study": "s", "stage": 1, "survivors": ["c1", "zz"]}],
            "selection_recorded: survivor 'zz' is not a case of study 's'",
        ),
        (
            [{"type": "run_invalidated", "study": "s", "run": "r2", "reason": "bad host"}],
            "run_invalidated: run 'r2' is not finished; only a finished run can be invalidated (finish it first, e.g. with status 'cancelled')",
        ),
    ],
)
def test_rule_violations(ledger, events, message):
    ledger.append(basic_study())
    ledger.append([{"type": "run_started", "study": "s", "case": "c1", "run": "r2"}])
    head = ledger.head
    with pytest.raises(RuleViolation) as err:
        ledger.append(events, source="events.jsonl")
    assert str(err.value) == f"events.jsonl[0]: {message}"
    assert ledger.head == head


def test_a_refused_batch_appends_nothing(ledger):
    ledger.append(basic_study()[:1])
    bad = [
        {"type": "case_created", "study": "s", "case": "a"},
        {"type": "case_created", "study": "s", "case": "b"},
        {"type": "run_started", "study": "s", "case": "zz", "run": "r"},
    ]
    with pytest.raises(RuleViolation, match=r"\[2\]: run_started"):
        ledger.append(bad, source="b")
    assert ledger.head.seq == 1
    # The refused batch left no ids, refs or blocks behind: the same cases append fine.
    assert ledger.append(bad[:2]).appended == 2
    assert ledger.verify().ok


def test_events_in_one_batch_see_each_other(ledger):
    r = ledger.append(
        basic_study()
        + [{"type": "run_invalidated", "study": "s", "run": "r1", "reason": "bad host"}]
    )
    assert r.appended == 8
    with pytest.raises(RuleViolation, match="already invalidated at seq 8"):
        ledger.append([{"type": "run_invalidated", "study": "s", "run": "r1", "reason": "again"}])


def test_eco_stage_defaults_to_parent_plus_one(ledger):
    ledger.append(basic_study())
    ledger.append([{"type": "eco_applied", "study": "s", "case": "c2", "parent": "c1", "eco": "x"}])
    from ledger.summary import fold_studies

    cases = fold_studies(ledger.read())["s"].cases
    assert (cases["base"]["stage"], cases["c1"]["stage"], cases["c2"]["stage"]) == (0, 1, 2)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"type": "study_created", "study": ""}, "expected `str` of length >= 1 - at `$.study`"),
        (
            {"type": "study_created", "study": "x" * 257},
            "expected `str` of length <= 256 - at `$.study`",
        ),
        ({"type": "study_created", "study": "a\nb"}, "`study` 'a\\nb' contains control characters"),
        (
            {"type": "metrics_recorded", "study": "s", "run": "r", "values": {"a": True}},
            "got `bool`",
        ),
        (
            {"type": "metrics_recorded", "study": "s", "run": "r", "values": {}, "step": -1},
            ">= 0 - at `$.step`",
        ),
        (
            {"type": "run_finished", "study": "s", "run": "r", "status": "done"},
            "invalid enum value 'done' - at `$.status` (one of: completed, failed, pruned, timeout, cancelled, interrupted)",
        ),
    ],
)
def test_limits_on_input(ledger, event, message):
    with pytest.raises((LedgerDecodeError, RuleViolation)) as err:
        ledger.append([event])
    assert message in str(err.value)
    assert ledger.head.seq == 0


def test_structs_built_in_python_are_validated_too(ledger):
    ledger.append(basic_study()[:4])
    with pytest.raises(LedgerDecodeError, match=r"got `str` - at `\$.values\[...\]`"):
        ledger.append([MetricsRecorded(study="s", run="r1", values={"a": "x"})])


def test_oversized_and_too_deep_events_are_refused(ledger):
    with pytest.raises(EventTooLarge, match="the limit is 1048576 bytes"):
        ledger.append(
            [{"type": "study_created", "study": "s", "config": {"blob": "x" * (1 << 20)}}]
        )
    deep: dict = {}
    node = deep
    for _ in range(40):
        node["a"] = {}
        node = node["a"]
    with pytest.raises(EventTooLarge, match="nests deeper than 32 levels"):
        ledger.append([{"type": "study_created", "study": "s", "config": deep}])
    assert ledger.head.seq == 0


def test_ts_is_kept_and_never_part_of_the_id(ledger):
    ledger.append(basic_study()[:1])
    ev = {"type": "case_created", "study": "s", "case": "a"}
    r1 = ledger.append([dict(ev, ts="2026-01-01T00:00:00Z")])
    r2 = ledger.append([dict(ev, ts=1.0)])
    assert (r1.appended, r2.duplicates) == (1, 1)
    env = list(ledger.read(since=1))[0]
    assert env.ts == 1767225600_000000


def test_expected_head(ledger):
    ledger.append(basic_study()[:1], expected_head=0)
    with pytest.raises(HeadMoved, match="expected head seq 0, the ledger is at 1"):
        ledger.append([{"type": "case_created", "study": "s", "case": "a"}], expected_head=0)


def test_read_by_study_and_range(ledger):
    ledger.append(basic_study("a"))
    ledger.append(basic_study("b"))
    ledger.append(basic_study("a")[:0] + [{"type": "case_created", "study": "a", "case": "late"}])
    assert [e.seq for e in ledger.read(study="a")] == [1, 2, 3, 4, 5, 6, 7, 15]
    assert [e.seq for e in ledger.read(study="b", since=10, until=12)] == [11, 12]
    assert [e.seq for e in ledger.read(since=13)] == [14, 15]
    assert [e.event.TYPE for e in ledger.read(types=["run_finished"])] == ["run_finished"] * 2
    assert ledger.studies() == ["a", "b"]


def test_hashes_chain_and_match_hash_at(ledger):
    ledger.append(basic_study())
    ledger.append([{"type": "case_created", "study": "s", "case": "z"}])
    envs = list(ledger.read(with_hashes=True))
    import hashlib

    prev = bytes(32)
    from ledger.blocks import BlockView  # noqa: F401  (layout documented there)

    for env in envs:
        assert (
            env.hash
            == hashlib.blake2b(
                prev + env.seq.to_bytes(8, "big") + _stored(ledger, env.seq), digest_size=32
            ).digest()
        )
        assert ledger.hash_at(env.seq) == env.hash.hex()
        prev = env.hash
    assert ledger.head.hash == prev.hex()
    # reading from the middle recomputes the same hashes
    assert [e.hash for e in ledger.read(since=5, with_hashes=True)] == [e.hash for e in envs[5:]]


def _stored(ledger, seq):
    from ledger.blocks import BlockView, seq_key
    from ledger.store import lmdb_env as _lmdb

    with ledger._store.env.read() as txn:
        key, value = _lmdb.block_at_or_before(txn, ledger._store.dbs["events"], seq_key(seq))
        block = BlockView(int.from_bytes(key, "big"), value)
        return bytes(block.event_bytes(seq - block.first_seq))


def test_replica_through_wire_form_has_the_same_head(tmp_path, ledger):
    from ledger.codec import dumps, event_to_wire

    ledger.append(basic_study())
    ledger.append([{"type": "run_started", "study": "s", "case": "c1", "run": "r2"}])
    ledger.append(
        [
            {
                "type": "metrics_recorded",
                "study": "s",
                "run": "r2",
                "values": {"loss": float("nan"), "g": float("-inf")},
            }
        ]
    )
    lines = [dumps(event_to_wire(e, hash_hex=e.hash.hex())) for e in ledger.read(with_hashes=True)]
    with Ledger(tmp_path / "replica") as replica:
        r = replica.append_jsonl(lines, source="log")
        assert (r.appended, r.head_hash) == (9, ledger.head.hash)
        again = replica.append(basic_study())
        assert again.appended == 0


def test_missing_ledger_is_not_created(tmp_path):
    from ledger import LedgerNotFound

    with pytest.raises(LedgerNotFound, match="no ledger at"):
        Ledger(tmp_path / "typo.ledger", create=False)
    assert not (tmp_path / "typo.ledger").exists()


def test_same_path_shares_one_environment(ledger_path):
    with Ledger(ledger_path) as a, Ledger(ledger_path) as b:
        assert a._store.env is b._store.env
        a.append(basic_study())
        assert b.head.seq == 7


def test_non_json_values_are_refused(ledger):
    import msgspec

    with pytest.raises(LedgerDecodeError, match="`config` holds a Ext, which has no JSON form"):
        ledger.append(
            [{"type": "study_created", "study": "s", "config": {"x": msgspec.msgpack.Ext(1, b"a")}}]
        )
    with pytest.raises(LedgerDecodeError, match="`params` holds a bytes"):
        ledger.append(
            [
                {"type": "study_created", "study": "s"},
                {"type": "case_created", "study": "s", "case": "c", "params": {"b": b"x"}},
            ]
        )
    assert ledger.head.seq == 0


def test_an_oversized_json_line_is_refused_before_decoding(ledger):
    line = b'{"type":"study_created","study":"s","config":{"x":"' + b"a" * (5 << 20) + b'"}}'
    with pytest.raises(
        EventTooLarge, match=r"big.jsonl:1: line is \d+ bytes; an event is at most 1048576"
    ):
        ledger.append_jsonl([line], source="big.jsonl")


def test_nan_is_canonical_whatever_its_sign(ledger):
    import math

    ledger.append(basic_study()[:4])
    neg = -math.nan
    r1 = ledger.append(
        [{"type": "metrics_recorded", "study": "s", "run": "r1", "step": 5, "values": {"x": neg}}]
    )
    r2 = ledger.append(
        [
            {
                "type": "metrics_recorded",
                "study": "s",
                "run": "r1",
                "step": 5,
                "values": {"x": math.nan},
            }
        ]
    )
    assert (r1.appended, r2.duplicates) == (1, 1)
    r3 = ledger.append([MetricsRecorded(study="s", run="r1", step=5, values={"x": neg})])
    assert r3.duplicates == 1


def test_verify_notices_a_damaged_id_index(ledger):
    from ledger.store import lmdb_env as _lmdb

    ledger.append(basic_study())
    with ledger._store.env.read() as txn:
        key = next(iter(_lmdb.cursor_iter_from(txn, ledger._store.dbs["ids"], b"")))[0]
        key = bytes(key)
    ledger._store.env.write(lambda txn: txn.delete(key, db=ledger._store.dbs["ids"]))
    report = ledger.verify()
    assert not report.ok and "the id index holds 6 entries for 7 events" in report.error


# -- issue 18: eco_applied with several parents ---------------------------------------------

_BASE = [
    {"type": "study_created", "study": "s"},
    {"type": "case_created", "study": "s", "case": "a"},
    {"type": "case_created", "study": "s", "case": "b", "stage": 3},
]


def test_eco_applied_names_several_parents(ledger):
    from ledger.summary import fold_studies

    ledger.append(_BASE)
    ledger.append(
        [{"type": "eco_applied", "study": "s", "case": "m", "parents": ["a", "b"], "eco": "merge"}]
    )
    (env,) = list(ledger.read(3))
    assert (env.event.parents, env.event.parent, env.event.parent_ids) == (
        ["a", "b"],
        None,
        ["a", "b"],
    )
    assert fold_studies(ledger.read())["s"].cases["m"]["stage"] == 4  # highest parent + 1
    # the rule state agrees: a child of m defaults to stage 5
    ledger.append([{"type": "eco_applied", "study": "s", "case": "n", "parent": "m", "eco": "x"}])
    assert fold_studies(ledger.read())["s"].cases["n"]["stage"] == 5


@pytest.mark.parametrize(
    "fields, message, field",
    [
        (
            {"parent": "a", "parents": ["b"]},
            "give `parent` or `parents` (a list), not both",
            "parents",
        ),
        ({}, "missing field `parent` (or `parents`, a list)", "parent"),
        ({"parents": []}, "`parents` is empty", "parents"),
        ({"parents": ["a", "a"]}, "`parents` names 'a' twice", "parents[1]"),
        (
            {"parents": ["a", "ghost"]},
            "parent case 'ghost' does not exist in study 's'",
            "parents[1]",
        ),
        ({"parents": ["a", "m"]}, "case 'm' cannot be its own parent", "parents[1]"),
        (
            {"parents": ["a", "b\x00"]},
            "`parents[1]` 'b\\x00' contains control characters",
            "parents[1]",
        ),
    ],
)
def test_eco_applied_parents_are_checked(ledger, fields, message, field):
    ledger.append(_BASE)
    head = ledger.head
    event = {"type": "eco_applied", "study": "s", "case": "m", "eco": "merge", **fields}
    with pytest.raises(RuleViolation) as err:
        ledger.append([event])
    assert message in str(err.value) and err.value.field == field
    assert ledger.head == head


def test_an_eco_applied_with_one_parent_encodes_as_before():
    """The golden test holds this for stored logs; here, the field itself: ``parents``
    absent is not written, so an old event keeps its bytes, id and hash."""
    from ledger.codec import encode_canonical
    from ledger.events import EcoApplied

    old = EcoApplied(study="s", case="c", parent="p", eco="e", stage=2)
    assert encode_canonical(old) == (
        b"\x86\xa4type\xabeco_applied\xa5study\xa1s\xa4case\xa1c\xa6parent\xa1p\xa3eco\xa1e"
        b"\xa5stage\x02"
    )
