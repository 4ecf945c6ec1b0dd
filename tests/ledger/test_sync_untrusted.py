"""``sync`` from a source whose stored events break the input rules.

A sync reads its source's blocks with the strict input classes (``decode_as_input``) so
that the target need not check each event again. These sources hold what no append of
today writes — a buggy or older writer's, or a hostile peer's — with sound checksums
and chain, so only the rules can catch them: the target refuses what breaks a rule and
stores the rest exactly as an append of the same events would.
"""

from __future__ import annotations

import math
import struct

import msgspec
import pytest

import ledger
from ledger import EventError, Ledger
from ledger.blocks import BlockView, encode_block, seq_key
from ledger.chain import chain_hashes

_encode = msgspec.msgpack.encode
NEGATIVE_NAN = struct.unpack(">d", bytes.fromhex("fff8000000000001"))[0]
CANONICAL_NAN = struct.pack(">d", math.nan)


@pytest.fixture(params=["lmdb", "pg"])
def target(request, tmp_path):
    if request.param == "lmdb":
        return str(tmp_path / "target.ledger")
    from tests import pg

    return request.getfixturevalue("pg_server").schema_url(pg.new_schema())


def stored(seq: int, eid: str, ts: int, content: dict) -> bytes:
    """A stored envelope ``[seq, id, ts, content]`` as any writer could have encoded it."""
    return b"\x94\xcf" + seq_key(seq) + _encode(eid) + _encode(ts) + _encode(content)


def source_with(path: str, forged: dict[int, dict]) -> None:
    """A ledger of a study and a case (seqs 1-2), then a run and four metrics events
    (seqs 4-7) in one block, that block then rewritten with the events ``forged`` (seq -> content) in place, checksums and chain
    recomputed: only the rules tell these events from good ones."""
    with Ledger(path) as led:
        led.append(
            [
                {"type": "study_created", "study": "s"},
                {"type": "case_created", "study": "s", "case": "c"},
            ]
        )
        led.append(
            [{"type": "run_started", "study": "s", "case": "c", "run": "r"}]
            + [
                {
                    "type": "metrics_recorded",
                    "study": "s",
                    "run": "r",
                    "step": i,
                    "values": {"x": i},
                }
                for i in range(4)
            ]
        )
        store = led._store
        db = store.dbs["events"]

        def edit(txn):
            key = seq_key(3)
            block = BlockView(3, bytes(txn.get(key, db=db)))
            prev = BlockView(1, bytes(txn.get(seq_key(1), db=db))).last_hash
            events = [bytes(block.event_bytes(i)) for i in range(block.count)]
            for seq, content in forged.items():
                events[seq - 3] = stored(seq, f"forged-{seq}", 1_700_000_000_000_000, content)
            seqs = [seq_key(3 + i) for i in range(len(events))]
            hashes = chain_hashes(prev, seqs, events)
            txn.put(key, encode_block(events, hashes, first_seq=3), db=db)
            txn.put(b"head_hash", hashes[-1], db=store.dbs["meta"])

        store.env.write(edit)


def metrics(step: int, **values: float) -> dict:
    return {"type": "metrics_recorded", "study": "s", "run": "r", "step": step, "values": values}


def copied(path: str) -> list:
    with Ledger(path, create=False, readonly=True) as led:
        assert led.verify().ok
        return list(led.read())


def test_an_event_past_the_input_limits_is_refused_by_name(tmp_path, target):
    src = str(tmp_path / "source.ledger")
    source_with(src, {6: metrics(2**63, x=1.0)})  # a step an older release accepted
    with pytest.raises(EventError) as info:
        ledger.sync(src, target)
    message = str(info.value)
    assert message.startswith(f"{src} seq 6 (id forged-6, study s, run r): metrics_recorded: ")
    assert "at `$.step`" in message and f"({target} holds {src} up to seq 5)" in message
    assert [e.seq for e in copied(target)] == [1, 2, 3, 4, 5]


def test_an_unknown_field_is_dropped_as_an_append_of_the_stored_event_drops_it(tmp_path, target):
    src = str(tmp_path / "source.ledger")
    source_with(src, {5: {**metrics(1, x=1.0), "extra": "newer writer"}})
    assert ledger.sync(src, target).appended == 7
    envs = copied(target)
    assert envs[4].id == "forged-5" and envs[4].event == copied(src)[4].event
    assert "extra" not in msgspec.to_builtins(envs[4].event)


def test_a_nan_of_another_sign_or_payload_is_stored_as_the_canonical_nan(tmp_path, target):
    src = str(tmp_path / "source.ledger")
    source_with(src, {5: metrics(1, x=NEGATIVE_NAN, y=2.0)})
    ledger.sync(src, target)
    value = copied(target)[4].event.values["x"]
    assert struct.pack(">d", value) == CANONICAL_NAN


def test_an_id_or_ts_inside_a_stored_event_gives_way_to_the_envelopes(tmp_path, target):
    src = str(tmp_path / "source.ledger")
    source_with(src, {5: {**metrics(1, x=1.0), "id": "inner", "ts": 5.0}})
    ledger.sync(src, target)
    env = copied(target)[4]
    assert (env.id, env.ts, env.event.id, env.event.ts) == (
        "forged-5",
        1_700_000_000_000_000,
        None,
        None,
    )


def test_an_event_with_control_characters_in_a_name_is_refused(tmp_path, target):
    src = str(tmp_path / "source.ledger")
    source_with(src, {4: {**metrics(0, x=1.0), "run": "r\x00"}})
    with pytest.raises(EventError, match=r"seq 4 .*control characters"):
        ledger.sync(src, target)
    assert [e.seq for e in copied(target)] == [1, 2, 3]


def test_append_takes_envelopes_with_their_id_and_ts_and_checks_python_built_ones(tmp_path):
    from ledger import Envelope, LedgerDecodeError
    from ledger.events import MetricsRecorded

    src = str(tmp_path / "source.ledger")
    source_with(src, {})
    with Ledger(src, create=False, readonly=True) as a, Ledger(str(tmp_path / "b")) as b:
        plain = list(a.read())  # the stored (plain) classes: the append checks them
        b.append(plain)
        assert [(e.id, e.ts, e.event) for e in b.read()] == [(e.id, e.ts, e.event) for e in plain]
        event = MetricsRecorded(study="s", run="r", values={"x": 1.0})
        for bad in (
            Envelope(seq=0, id=7, ts=1, event=event),
            Envelope(0, "k", 1.5, event),
            Envelope(0, "k", 2**64, event),
        ):
            with pytest.raises(LedgerDecodeError, match="needs a str `id` and an int `ts`"):
                b.append([bad])
