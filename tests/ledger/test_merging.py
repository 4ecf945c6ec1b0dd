"""``ledger.merge``: one deterministic union of several ledgers."""

from __future__ import annotations

import itertools
import os

import pytest
from study_events import basic_study

import ledger
from ledger import EventError, Ledger, LedgerError, LedgerNotFound
from ledger.codec import event_to_wire

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def at(seconds: float, event: dict) -> dict:
    return {**event, "ts": T0 + seconds}


def stored(path: str) -> list[tuple[int, int, str]]:
    """(seq, seconds after T0, type) of every event."""
    with Ledger(path, create=False, readonly=True) as led:
        return [(e.seq, e.ts // 1_000_000 - T0, e.event.TYPE) for e in led.read()]


def wire(path: str) -> list[dict]:
    with Ledger(path, create=False, readonly=True) as led:
        return [event_to_wire(e) for e in led.read()]


def export_bytes(path: str, out) -> dict[str, bytes]:
    from projections.export.api import export_study

    with Ledger(path, create=False) as led:
        manifest = export_study(led, "s", out, formats={"csv", "json"}, journal=False)
    return {p.name: p.read_bytes() for p in sorted(manifest.path.iterdir())}


@pytest.fixture
def hosts(tmp_path):
    """A study defined on 'shared', pulled by two hosts that each record runs."""
    study = basic_study("s")
    shared, a, b = (str(tmp_path / f"{n}.ledger") for n in ("shared", "a", "b"))
    with Ledger(shared) as led:
        led.append([at(0, e) for e in study[:3]])  # study, case base, eco c1
    for host, offset in ((a, 10), (b, 11)):
        ledger.sync(shared, host, studies=["s"])
        with Ledger(host) as led:
            run = f"r-{os.path.basename(host)[0]}"
            led.append(
                [
                    at(offset, {"type": "run_started", "study": "s", "case": "c1", "run": run}),
                    at(offset + 2, {**study[5], "run": run, "values": {"loss": offset / 10}}),
                    at(offset + 4, {**study[6], "run": run}),
                ]
            )
    return [shared, a, b]


def test_three_sources_in_all_six_orders_give_one_ledger(hosts, tmp_path):
    heads, contents, results = set(), [], []
    for n, order in enumerate(itertools.permutations(hosts)):
        out = str(tmp_path / f"m{n}.ledger")
        r = ledger.merge(list(order), out)
        results.append(r)
        assert (r.appended, r.duplicates) == (9, 6)  # the definitions came three times
        assert [s["source"] for s in r.sources] == list(order)
        heads.add((r.head_seq, r.head_hash))
        contents.append(wire(out))
        with Ledger(out, create=False) as led:
            assert (led.head.seq, led.head.hash) == (r.head_seq, r.head_hash)
            assert led.verify().ok
    assert len(heads) == 1
    assert all(c == contents[0] for c in contents)
    # and the same export bytes, manifest included: the new ledger's id is the sources'
    exports = [export_bytes(str(tmp_path / f"m{n}.ledger"), tmp_path / f"x{n}") for n in (0, 5)]
    assert exports[0] == exports[1]
    assert {"cases.csv", "runs.csv", "metrics.csv", "study.json", "manifest.json"} <= set(
        exports[0]
    )
    assert len({r.ledger_id for r in results}) == 1
    with Ledger(str(tmp_path / "m0.ledger"), readonly=True) as led:
        assert led.ledger_id == results[0].ledger_id
        for host in hosts:
            with Ledger(host, readonly=True) as source:
                assert source.ledger_id != led.ledger_id
    # (ts, id) order; the definitions once, before the runs that need them.
    assert [(t, typ) for _, t, typ in stored(str(tmp_path / "m0.ledger"))] == [
        (0, "study_created"),
        (0, "case_created"),
        (0, "eco_applied"),
        (10, "run_started"),
        (11, "run_started"),
        (12, "metrics_recorded"),
        (13, "metrics_recorded"),
        (14, "run_finished"),
        (15, "run_finished"),
    ]


def test_each_source_keeps_its_own_order_when_its_clock_runs_backwards(tmp_path):
    """Host b's clock is behind: its run starts 'before' the study existed. Its order
    is kept (the run after its case), and the hosts' events interleave by (ts, id)."""
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    study = basic_study("s")
    with Ledger(a) as led:
        led.append([at(100, e) for e in study[:2]])
        ledger.sync(led, b, studies="s")
        led.append([at(101, {**study[3], "case": "base", "run": "ra"})])
    with Ledger(b) as led:
        led.append([at(50, {**study[3], "case": "base", "run": "rb"})])
        led.append([at(51, {**study[6], "run": "rb"})])
    orders = {}
    for order in ([a, b], [b, a]):
        out = str(tmp_path / f"m{len(orders)}")
        ledger.merge(order, out)
        orders[tuple(order)] = stored(out)
    first, second = orders.values()
    assert first == second
    assert [(t, typ) for _, t, typ in first] == [
        (100, "study_created"),
        (100, "case_created"),
        (50, "run_started"),  # rb: b's order keeps it after its case
        (51, "run_finished"),
        (101, "run_started"),  # ra
    ]


def test_an_event_taken_is_consumed_in_every_source_at_once(tmp_path):
    """Both hosts hold the study's event (synced: same id, same ts); each then records
    something stamped earlier (clocks differ). Once the shared event is taken, its copy
    in the other source is consumed at once, so what follows it competes on (ts, id)
    in both argument orders (a plain k-way merge would let the untaken copy hold its
    source back, and the order would depend on which source was named first)."""
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    with Ledger(a) as led:
        led.append([at(10, {"type": "study_created", "study": "s"})])
    ledger.sync(a, b)
    for path, when in ((a, 5), (b, 7)):
        with Ledger(path) as led:
            led.append([at(when, {"type": "study_created", "study": f"after-{path[-1]}"})])
    results = []
    for n, order in enumerate(([a, b], [b, a])):
        out = str(tmp_path / f"m{n}")
        r = ledger.merge(order, out)
        results.append((r.head_hash, [w["study"] for w in wire(out)]))
    assert results[0] == results[1]
    assert results[0][1] == ["s", "after-a", "after-b"]


def test_a_later_copy_of_an_event_is_a_duplicate(tmp_path):
    """The same content recorded on two hosts at different times has one id: the
    first (ts, id) is kept."""
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    for path, when in ((a, 20), (b, 10)):
        with Ledger(path) as led:
            led.append([at(when, {"type": "study_created", "study": "s"})])
    r = ledger.merge([a, b], str(tmp_path / "m"))
    assert (r.appended, r.duplicates) == (1, 1)
    assert stored(str(tmp_path / "m")) == [(1, 10, "study_created")]


def test_disagreeing_sources_stop_the_merge_and_nothing_is_written(hosts, tmp_path):
    a = hosts[1]
    other = str(tmp_path / "other.ledger")
    ledger.sync(hosts[0], other)
    with Ledger(other) as led:  # the same run of the same case, finished otherwise
        led.append([at(10, {"type": "run_started", "study": "s", "case": "c1", "run": "r-a"})])
        led.append(
            [at(14, {"type": "run_finished", "study": "s", "run": "r-a", "status": "failed"})]
        )
    out = str(tmp_path / "m.ledger")
    for order in ([a, other], [other, a]):
        with pytest.raises(EventError) as info:
            ledger.merge(order, out)
        assert f"refused by {out}: " in str(info.value)
        assert str(info.value).endswith(f"; nothing was written to {out}")
        assert not os.path.exists(out)
        assert not [n for n in os.listdir(tmp_path) if "merging" in n]


def test_merge_refuses_an_existing_out_and_a_missing_source(hosts, tmp_path):
    out = str(tmp_path / "m.ledger")
    ledger.merge(hosts, out)
    with pytest.raises(LedgerError, match="already exists; merge writes a new ledger"):
        ledger.merge(hosts, out)
    with pytest.raises(LedgerNotFound, match="nope"):
        ledger.merge([hosts[0], str(tmp_path / "nope")], str(tmp_path / "m2"))
    assert not os.path.exists(tmp_path / "m2")
    with pytest.raises(LedgerError, match="at least one SOURCE"):
        ledger.merge([], str(tmp_path / "m3"))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert ledger.merge(hosts[:1], str(empty)).appended == 3  # an empty folder is new


def test_merge_of_one_ledger_is_a_copy_with_the_same_head(hosts, tmp_path):
    with Ledger(hosts[1], readonly=True) as led:
        head = led.head
    r = ledger.merge([hosts[1]], str(tmp_path / "copy"))
    assert (r.head_seq, r.head_hash) == (head.seq, head.hash)


@pytest.fixture
def pg_location(pg_server):
    from tests import pg

    return lambda: pg_server.schema_url(pg.new_schema())


def test_merge_into_postgresql_gives_the_same_ledger(hosts, tmp_path, pg_location):
    lmdb = ledger.merge(hosts, str(tmp_path / "m.ledger"))
    url = pg_location()
    shared = ledger.merge(list(reversed(hosts)), url)
    assert (shared.head_seq, shared.head_hash) == (lmdb.head_seq, lmdb.head_hash)
    assert (shared.appended, shared.duplicates) == (lmdb.appended, lmdb.duplicates)
    assert wire(url) == wire(str(tmp_path / "m.ledger"))
    with Ledger(url, create=False, readonly=True) as led:
        assert led.verify().ok
        assert led.ledger_id == shared.ledger_id == lmdb.ledger_id
        assert led.aux_items("cursors") == []  # the temporary ledger's cursor is gone
    with pytest.raises(LedgerError, match="already holds a ledger .9 events.; merge writes"):
        ledger.merge(hosts, url)


def test_merge_of_postgresql_sources_in_any_order(hosts, tmp_path, pg_location):
    urls = []
    for path in hosts:
        url = pg_location()
        ledger.sync(path, url)
        urls.append(url)
    lmdb = ledger.merge(hosts, str(tmp_path / "lmdb"))
    for n, order in enumerate((urls, urls[::-1], [urls[1], urls[0], urls[2]])):
        r = ledger.merge(order, str(tmp_path / f"pg{n}"))
        assert (r.head_seq, r.head_hash) == (lmdb.head_seq, lmdb.head_hash)
