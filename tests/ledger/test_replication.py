"""``ledger.sync`` in one process: what it copies, its cursors, its refusals."""

from __future__ import annotations

import threading
import time

import pytest
from study_events import basic_study

import ledger
from ledger import (
    EventError,
    IdempotencyConflict,
    Ledger,
    LedgerError,
    LedgerNotFound,
    StorageError,
)
from ledger.codec import event_to_wire
from ledger.replication import CURSORS, cursor_key, is_url, mask_location, read_cursor


def wire(path, **read) -> list[dict]:
    """The events as ``log --json`` prints them, without what the target assigns."""
    with Ledger(path, create=False, readonly=True) as led:
        out = []
        for env in led.read(**read):
            w = event_to_wire(env)
            del w["seq"]
            out.append(w)
        return out


def _head(path: str) -> int:
    """The head of a ledger the sync under test may still be creating (never created
    here: two creators of one PostgreSQL schema at once can deadlock)."""
    try:
        with Ledger(path, create=False, readonly=True) as led:
            return led.head.seq
    except (LedgerNotFound, StorageError):
        return 0


def timed(events: list[dict], start: float) -> list[dict]:
    return [{**e, "ts": start + i} for i, e in enumerate(events)]


# source backend -> target backend; "a" is the source of every test, the rest targets
# (or other sources of the same backend as the targets).
COMBOS = {"lmdb": ("lmdb", "lmdb"), "lmdb-to-pg": ("lmdb", "pg"), "pg-to-lmdb": ("pg", "lmdb")}


@pytest.fixture(params=list(COMBOS))
def paths(request, tmp_path):
    source_kind, target_kind = COMBOS[request.param]

    def location(kind: str, name: str) -> str:
        if kind == "lmdb":
            return str(tmp_path / f"{name}.ledger")
        from tests import pg

        return request.getfixturevalue("pg_server").schema_url(pg.new_schema())

    return {n: location(source_kind if n == "a" else target_kind, n) for n in "abcdef"}


def test_sync_copies_every_event_with_its_id_ts_and_content(paths):
    with Ledger(paths["a"]) as a:
        a.append(timed(basic_study("s"), 1_700_000_000.25))
        a.append([{"type": "study_created", "study": "t", "id": "my-id", "config": {"k": 1}}])
        a.append(basic_study("u"))
        head = a.head
    r = ledger.sync(paths["a"], paths["b"])
    assert (r.appended, r.duplicates, r.source_seq, r.target_head_seq) == (15, 0, 15, 15)
    assert (r.source, r.target) == (paths["a"], paths["b"])
    assert wire(paths["b"]) == wire(paths["a"])
    assert wire(paths["b"])[0]["ts"] == "2023-11-14T22:13:20.250000Z"
    # An empty target numbers and chains them exactly as the source did.
    assert r.target_head_hash == head.hash
    with Ledger(paths["b"], create=False) as b:
        assert b.verify().ok


@pytest.mark.parametrize(
    "ts",
    [
        "2026-01-01T00:00:00.000001Z",
        "2026-01-01T00:00:00.999999Z",
        "1969-12-31T23:59:59.999999Z",
        "1970-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999Z",  # past 2**53 microseconds: sent as text
    ],
)
def test_every_microsecond_survives(paths, ts):
    with Ledger(paths["a"]) as a:
        a.append([{"type": "study_created", "study": "s", "ts": ts}])
    ledger.sync(paths["a"], paths["b"])
    assert wire(paths["b"])[0]["ts"] == ts.replace("00Z", "00.000000Z")


def test_a_second_sync_appends_nothing_and_a_later_one_only_what_is_new(paths):
    with Ledger(paths["a"]) as a:
        a.append(basic_study("s"))
        assert ledger.sync(paths["a"], paths["b"]).appended == 7
        again = ledger.sync(paths["a"], paths["b"])
        assert (again.appended, again.duplicates, again.batches, again.source_seq) == (0, 0, 0, 7)
        a.append(basic_study("t"))
    later = ledger.sync(paths["a"], paths["b"])
    assert (later.appended, later.duplicates, later.source_seq) == (7, 0, 14)
    assert wire(paths["b"]) == wire(paths["a"])


def test_the_cursor_rides_in_the_target_with_the_source_hash(paths):
    with Ledger(paths["a"]) as a:
        a.append(basic_study("s"))
        a.append(basic_study("t"))
        source_id, hash_at_10, hash_at_14 = a.ledger_id, a.hash_at(10), a.hash_at(14)
    r = ledger.sync(paths["a"], paths["b"], batch_size=5)
    assert r.batches == 3
    with Ledger(paths["b"], create=False) as b:
        raw = b.aux_get(CURSORS, cursor_key(source_id, None))
        assert read_cursor(raw) == (14, hash_at_14)
    # Put the cursor back to seq 10: the next sync resends 11..14 and finds them there.
    with Ledger(paths["b"], create=False) as b:
        b.aux_put(
            CURSORS,
            cursor_key(source_id, None),
            raw.replace(b'"seq":14', b'"seq":10').replace(hash_at_14.encode(), hash_at_10.encode()),
        )
    again = ledger.sync(paths["a"], paths["b"])
    assert (again.appended, again.duplicates) == (0, 4)


def test_a_target_that_already_holds_the_events_counts_them_as_duplicates(paths):
    events = basic_study("s")
    with Ledger(paths["a"]) as a, Ledger(paths["b"]) as b:
        a.append(events)
        b.append(events[:5])
    r = ledger.sync(paths["a"], paths["b"])
    assert (r.appended, r.duplicates, r.target_head_seq) == (2, 5, 7)


def test_study_filter_copies_that_study_only_in_source_order(paths):
    s, t, u = basic_study("s"), basic_study("t"), basic_study("u")
    with Ledger(paths["a"]) as a:
        for i in range(7):  # interleaved: s, t, u, s, t, u, ...
            a.append([s[i], t[i], u[i]])
    r = ledger.sync(paths["a"], paths["b"], studies=["u", "s"])
    assert (r.appended, r.source_seq, r.studies) == (14, 21, ["s", "u"])
    assert [w["study"] for w in wire(paths["b"])] == ["s", "u"] * 7
    assert wire(paths["b"]) == [w for w in wire(paths["a"]) if w["study"] != "t"]
    assert ledger.sync(paths["a"], paths["b"], studies=["s", "u"]).appended == 0
    one = ledger.sync(paths["a"], paths["c"], studies="t")
    assert (one.appended, one.source_seq) == (7, 21)
    assert wire(paths["c"]) == wire(paths["a"], study="t")
    # Everything else later: t's events are already there.
    rest = ledger.sync(paths["a"], paths["c"])
    assert (rest.appended, rest.duplicates) == (14, 7)
    # and after a whole-ledger sync, a study sync starts at its cursor.
    assert ledger.sync(paths["a"], paths["c"], studies=["s"]).duplicates == 0


def test_study_sync_of_a_study_the_source_lacks_copies_nothing(paths):
    with Ledger(paths["a"]) as a:
        a.append(basic_study("s"))
    r = ledger.sync(paths["a"], paths["b"], studies=["nope"])
    assert (r.appended, r.source_seq, r.target_head_seq) == (0, 7, 0)


def test_a_refused_event_stops_the_sync_naming_it_and_keeps_what_came_before(paths):
    events = basic_study("s")
    with Ledger(paths["a"]) as a, Ledger(paths["b"]) as b:
        a.append(events)  # the run finished as completed ...
        b.append(events[:4])
        b.append([{"type": "run_finished", "study": "s", "run": "r1", "status": "failed"}])
    for _ in range(2):  # and again: the same refusal, nothing more copied
        with pytest.raises(EventError) as info:
            ledger.sync(paths["a"], paths["b"], batch_size=100)
        assert str(info.value) == (
            f"{paths['a']} seq 5 (id {wire(paths['a'])[4]['id']}, study s, run r1): "
            f"metrics_recorded: refused by {paths['b']}: run 'r1' is already finished "
            "(run_finished with status 'failed' at seq 5); the events before it are copied "
            f"({paths['b']} holds {paths['a']} up to seq 4)"
        )
    with Ledger(paths["a"]) as a, Ledger(paths["b"], create=False) as b:
        assert b.head.seq == 5 and b.verify().ok
        assert read_cursor(b.aux_get(CURSORS, cursor_key(a.ledger_id, None))) == (4, a.hash_at(4))


def test_same_id_with_other_content_is_refused_after_copying_the_batch_before_it(paths):
    with Ledger(paths["a"]) as a, Ledger(paths["b"]) as b:
        a.append([{"type": "study_created", "study": "s"}])
        a.append([{"type": "study_created", "study": f"x{i}"} for i in range(5)])
        a.append([{"type": "case_created", "study": "s", "case": "c", "id": "K", "params": {}}])
        a.append([{"type": "study_created", "study": "after"}])
        b.append([{"type": "study_created", "study": "s"}])
        b.append([{"type": "case_created", "study": "s", "case": "d", "id": "K"}])
    with pytest.raises(IdempotencyConflict) as info:
        ledger.sync(paths["a"], paths["b"], batch_size=4)
    assert str(info.value).startswith(
        f"{paths['a']} seq 7 (id K, study s, case c): case_created: refused by {paths['b']}: "
        "id 'K' is already in the log (seq 2) with other content"
    )
    assert str(info.value).endswith(f"({paths['b']} holds {paths['a']} up to seq 6)")
    assert [w["study"] for w in wire(paths["b"])] == ["s", "s", "x0", "x1", "x2", "x3", "x4"]


def test_a_source_restored_from_an_older_copy_is_noticed_and_reread(paths, tmp_path):
    from ledger.backup import backup, restore

    if is_url(paths["a"]):
        pytest.skip("backup and restore are LMDB's")
    paths = {**paths, "c": str(tmp_path / "restored.ledger")}
    with Ledger(paths["a"]) as a:
        a.append(basic_study("s"))
    backup(paths["a"], tmp_path / "bk")
    with Ledger(paths["a"]) as a:
        a.append(basic_study("t"))
    assert ledger.sync(paths["a"], paths["b"]).source_seq == 14
    restore(tmp_path / "bk", paths["c"])  # the same ledger id, rolled back to seq 7 ...
    with Ledger(paths["c"]) as c:
        c.append(basic_study("other"))  # ... then grown differently: 14 events again
        assert c.head.seq == 14
    notes: list[str] = []
    r = ledger.sync(paths["c"], paths["b"], notify=notes.append)
    assert (r.appended, r.duplicates) == (7, 7)
    assert notes == [
        f"warning: {paths['c']} no longer holds what {paths['b']} copied from it up to seq "
        "14: it was restored from an older copy or rewritten; reading it again from the start "
        "(events the target holds are skipped as duplicates)"
    ]
    assert ledger.sync(paths["c"], paths["b"], notify=notes.append).appended == 0
    assert len(notes) == 1


def test_sync_refuses_a_ledger_into_itself_and_a_missing_source(paths):
    with Ledger(paths["a"]) as a:
        a.append(basic_study("s"))
        ledger_id = a.ledger_id
    with pytest.raises(LedgerError, match=f"are the same ledger \\(id {ledger_id}\\)"):
        ledger.sync(paths["a"], paths["a"])
    missing = paths["a"] + "nope"  # a folder, or a schema, that holds nothing
    with pytest.raises(LedgerNotFound, match="no ledger .*nope"):
        ledger.sync(missing, paths["b"])
    with pytest.raises(LedgerNotFound):  # the failed call created no target
        Ledger(paths["b"], create=False)


def test_sync_takes_open_ledgers_and_leaves_them_open(paths):
    with Ledger(paths["a"]) as a, Ledger(paths["b"]) as b:
        a.append(basic_study("s"))
        r = ledger.sync(a, b)
        assert r.appended == 7 and b.head.seq == 7
        assert r.source == paths["a"]


def test_passwords_never_show():
    assert (
        mask_location("postgresql://runner:s3cret@db.example:5432/results?schema=x")
        == "postgresql://runner:***@db.example:5432/results?schema=x"
    )
    assert (
        mask_location("postgres://db/results?user=u&password=s3cret")
        == "postgres://db/results?user=u&password=***"
    )
    assert mask_location("postgresql:///results") == "postgresql:///results"
    assert mask_location("runs/node7.ledger") == "runs/node7.ledger"


def test_follow_copies_what_arrives_until_stopped(paths):
    with Ledger(paths["a"]) as a:
        a.append(basic_study("s"))
        stop = threading.Event()
        out: list = []
        worker = threading.Thread(
            target=lambda: out.append(
                ledger.sync(paths["a"], paths["b"], follow=True, interval=0.02, stop=stop)
            )
        )
        worker.start()
        try:
            for study in ("t", "u"):
                a.append(basic_study(study))
                deadline = time.monotonic() + 20
                while _head(paths["b"]) < a.head.seq:
                    assert time.monotonic() < deadline, "follow did not copy new events"
                    time.sleep(0.01)
        finally:
            stop.set()
            worker.join(20)
    (r,) = out
    assert (r.appended, r.source_seq, r.stopped) == (21, 21, True)
    assert wire(paths["b"]) == wire(paths["a"])


def test_a_long_sync_reports_progress(paths, monkeypatch):
    import ledger.replication as replication

    monkeypatch.setattr(replication, "PROGRESS_SECONDS", 0.0)  # every batch is "long"
    with Ledger(paths["a"]) as a:
        a.append(basic_study("s"))
    notes: list[str] = []
    ledger.sync(paths["a"], paths["b"], batch_size=3, notify=notes.append)
    assert [n.split(" (")[0] for n in notes] == [
        f"sync: {paths['a']} seq 3 of 7, 3 events appended",
        f"sync: {paths['a']} seq 6 of 7, 6 events appended",
        f"sync: {paths['a']} seq 7 of 7, 7 events appended",
    ]
    assert all(n.endswith("/s)") for n in notes)
    assert ledger.sync(paths["a"], paths["c"], batch_size=3).appended == 7  # no notify: quiet
