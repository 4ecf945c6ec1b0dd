"""R10 decoder fuzz: the two decoders that read bytes from outside — JSON Lines input
(``ledger.codec.decode_json_event``) and stored blocks (``ledger.blocks.BlockView``) —
return an event or raise our own decode error, never anything else (msgspec raises
UnicodeDecodeError and RecursionError), and never take more than 50 ms of CPU.

Inputs: 10,000 random byte strings and 10,000 mutations of valid records per decoder,
the adversarial corpus in tests/corpus/decoder (add a file and an ``expected.json``
entry for every bug found), and a hypothesis round trip ``decode(encode(e)) == e``.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections import Counter

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from rel_common import ROOT, size

from ledger.blocks import BlockView, chain_hash, encode_block
from ledger.codec import decode_json_event, dumps, encode_canonical, event_from_obj, to_json_safe
from ledger.errors import CorruptionError, LedgerDecodeError
from ledger.events import Envelope, _Base

CORPUS = os.path.join(ROOT, "tests", "corpus", "decoder")
BUDGET = 0.050  # seconds of CPU per call
_encode = msgspec.msgpack.Encoder(order="deterministic").encode

WIRE = [
    {
        "type": "study_created",
        "study": "s",
        "config": {"lr": [0.1, 0.01], "opt": {"name": "adam"}},
        "description": "d",
        "objectives": [{"metric": "loss", "direction": "min"}],
        "tags": ["a"],
    },
    {
        "type": "case_created",
        "study": "s",
        "case": "c1",
        "parents": ["c0"],
        "stage": 2,
        "params": {"k": 1},
    },
    {
        "type": "eco_applied",
        "study": "s",
        "case": "c2",
        "parent": "c1",
        "eco": "resize",
        "eco_class": "timing",
        "params": {"cells": 12},
    },
    {
        "type": "run_started",
        "study": "s",
        "case": "c1",
        "run": "r1",
        "attempt": 1,
        "seed": 7,
        "host": "h",
        "pid": 12,
        "config": {"x": None},
        "provenance": {"commit": "3f786850e387550fdab836ed7e6dc881de23001b"},
    },
    {
        "type": "metrics_recorded",
        "study": "s",
        "run": "r1",
        "values": {"loss": 0.5, "n": 3},
        "step": 4,
    },
    {
        "type": "run_finished",
        "study": "s",
        "run": "r1",
        "status": "completed",
        "resources": {"cpu_s": 1.5},
    },
    {"type": "run_invalidated", "study": "s", "run": "r1", "reason": "bad host"},
    {
        "type": "artifact_recorded",
        "study": "s",
        "run": "r1",
        "name": "m",
        "uri": "s3://b/m.pt",
        "sha256": "ab" * 32,
        "bytes": 10,
        "media_type": "application/octet-stream",
    },
    {
        "type": "selection_recorded",
        "study": "s",
        "stage": 1,
        "survivors": ["c1"],
        "policy": {"top": 1},
        "as_of": 9,
    },
    {
        "type": "study_created",
        "study": "s2",
        "id": "client-id-1",
        "ts": "2026-01-31T12:00:00.5+02:00",
    },
]
JSON_RECORDS = [json.dumps(w).encode() for w in WIRE]
INTERESTING = [
    b"NaN",
    b"1e999",
    b"-0",
    b"[]",
    b"{}",
    b'"\\udc80"',
    b"\xff",
    b"null",
    b"true",
    b"9" * 40,
    b'"' + b"a" * 300 + b'"',
    b"[" * 50,
    b'{"a":' * 40,
]


def block_of(envelopes: list[bytes], first_seq: int = 1) -> bytes:
    h, hashes = bytes(32), []
    for i, raw in enumerate(envelopes):
        h = chain_hash(h, first_seq + i, raw)
        hashes.append(h)
    return encode_block(envelopes, hashes, first_seq=first_seq)


def stored(seq: int, event_id: str, ts: int, event: object) -> bytes:
    return _encode([seq, event_id, ts, event])


BLOCK_RECORDS = [
    block_of(
        [
            stored(1 + i, f"id{i}", 1_700_000_000_000_000 + i, event_from_obj(w))
            for i, w in enumerate(WIRE[:k])
        ]
    )
    for k in (1, 3, len(WIRE))
]


def decode_json(data: bytes) -> object:
    out = decode_json_event(data)
    assert isinstance(out, _Base), type(out)
    return out


def decode_block(data: bytes) -> object:
    out = BlockView(1, data).decode()
    assert isinstance(out, list) and all(isinstance(e, Envelope) for e in out)
    return out


DECODERS = {"json": (decode_json, LedgerDecodeError), "block": (decode_block, CorruptionError)}


def run_one(name: str, data: bytes, outcomes: Counter[str]) -> float:
    decode, allowed = DECODERS[name]
    started = time.thread_time()
    try:
        decode(data)
        outcomes["ok"] += 1
    except allowed:
        outcomes[allowed.__name__] += 1
    except Exception as exc:  # anything else is a bug: keep the input
        raise AssertionError(
            f"{name} decoder raised {type(exc).__name__}: {exc} on {data[:200]!r}"
        ) from None
    took = time.thread_time() - started
    assert took <= BUDGET, f"{name} decoder took {took * 1000:.1f} ms on {data[:200]!r}"
    return took


def mutate(rng: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    b = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3, 8))):
        op = rng.randrange(8)
        pos = rng.randrange(len(b) + 1)
        if op == 0 and b:
            b[pos % len(b)] ^= 1 << rng.randrange(8)
        elif op == 1 and b:
            b[pos % len(b)] = rng.randrange(256)
        elif op == 2:
            b[pos:pos] = rng.randbytes(rng.randint(1, 8))
        elif op == 3:
            del b[pos : pos + rng.randint(1, 16)]
        elif op == 4:
            b = b[:pos]
        elif op == 5:
            other = rng.choice(pool)
            cut = rng.randrange(len(other) + 1)
            b = b[:pos] + other[cut:]
        elif op == 6:
            b[pos:pos] = rng.choice(INTERESTING)
        elif op == 7 and b:
            start = rng.randrange(len(b))
            b[pos:pos] = b[start : start + rng.randint(1, 32)]
    return bytes(b)


def random_input(rng: random.Random, name: str) -> bytes:
    n = rng.choice((0, 1, 2, 8, 40, 200, 1000))
    if name == "json" and rng.random() < 0.5:
        alphabet = b'{}[]:,"0123456789.-eE truefalsnNaIiy\\u'
        return bytes(rng.choice(alphabet) for _ in range(n))
    if name == "block" and rng.random() < 0.5:  # a valid header with random content
        count = rng.choice((0, 1, 2, 5, 1 << 20))
        return b"LB\x01" + count.to_bytes(4, "little") + rng.randbytes(n)
    return rng.randbytes(n)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(DECODERS))
def test_r10_fuzz(name, seed):
    rng = random.Random(f"{seed}:{name}")
    n = size(10_000, 200_000)
    pool = JSON_RECORDS if name == "json" else BLOCK_RECORDS
    for record in pool:
        run_one(name, record, Counter())  # the seeds themselves decode
    outcomes: Counter[str] = Counter()
    worst = 0.0
    started = time.monotonic()
    for _ in range(n):
        worst = max(worst, run_one(name, random_input(rng, name), outcomes))
    for _ in range(n):
        worst = max(worst, run_one(name, mutate(rng, rng.choice(pool), pool), outcomes))
    print(
        f"R10 {name}: {2 * n} inputs ({n} random, {n} mutated) in "
        f"{time.monotonic() - started:.1f} s, slowest call {worst * 1000:.2f} ms CPU; "
        f"{dict(sorted(outcomes.items()))}"
    )
    assert outcomes["ok"] > 0, "no mutated record decoded: the mutations are too coarse"


with open(os.path.join(CORPUS, "expected.json")) as _fh:
    EXPECTED = json.load(_fh)


@pytest.mark.parametrize("filename", sorted(EXPECTED))
def test_r10_adversarial_corpus(filename):
    spec = EXPECTED[filename]
    with open(os.path.join(CORPUS, filename), "rb") as fh:
        data = fh.read()
    decode, _ = DECODERS[spec["decoder"]]
    took = []
    for _ in range(3):  # the least CPU of three: a decode that is slow is slow every time,
        started = time.thread_time()  # a busy machine's cache misses are not
        if spec["result"] == "ok":
            decode(data)
        else:
            with pytest.raises((LedgerDecodeError, CorruptionError)) as info:
                decode(data)
            assert type(info.value).__name__ == spec["result"]
            assert spec["match"] in str(info.value)
        took.append(time.thread_time() - started)
    assert min(took) <= BUDGET, f"{filename}: {min(took) * 1000:.1f} ms CPU"


def test_r10_huge_input_is_linear():
    line = b'{"type":"study_created","study":"s","description":"' + b"x" * (4 << 20) + b'"}'
    started = time.thread_time()
    assert decode_json(line).description == "x" * (4 << 20)
    assert time.thread_time() - started <= 4 * BUDGET  # 4 MiB, four times the budget


_name = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1, max_size=12
)
_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
_json = st.recursive(
    _scalar,
    lambda c: st.one_of(
        st.lists(c, max_size=4), st.dictionaries(st.text(max_size=8), c, max_size=4)
    ),
    max_leaves=12,
)
_params = st.dictionaries(st.text(max_size=8), _json, max_size=4)
# JSON spells every NaN "NaN": a NaN with its sign bit set (x86's default NaN, what
# numpy's inf - inf gives) comes back positive, with other canonical bytes, hence another
# hash (see test_negative_nan_keeps_its_bytes_through_json).
_metric = st.one_of(
    st.integers(-(2**63), 2**63 - 1), st.floats().map(lambda f: math.nan if f != f else f)
)
_events = st.one_of(
    st.builds(
        lambda s, c, d: {"type": "study_created", "study": s, "config": c, "description": d},
        _name,
        _params,
        st.text(max_size=20),
    ),
    st.builds(
        lambda s, c, p, g, k: {
            "type": "case_created",
            "study": s,
            "case": c,
            "parents": p,
            "stage": g,
            "params": k,
        },
        _name,
        _name,
        st.lists(_name, max_size=3),
        st.integers(0, 99),
        _params,
    ),
    st.builds(
        lambda s, r, v, t: {
            "type": "metrics_recorded",
            "study": s,
            "run": r,
            "values": v,
            "step": t,
        },
        _name,
        _name,
        st.dictionaries(_name, _metric, min_size=1, max_size=4),
        st.none() | st.integers(0, 10**6),
    ),
    st.builds(
        lambda s, r, x: {"type": "run_finished", "study": s, "run": r, "status": x},
        _name,
        _name,
        st.sampled_from(["completed", "failed", "pruned", "interrupted"]),
    ),
)


@pytest.mark.slow
def test_r10_round_trip(seed):
    @hypothesis_seed(seed)
    @settings(max_examples=size(500, 5000), deadline=None, database=None)
    @given(_events, st.integers(1, 2**40), st.integers(0, 2**62))
    def check(wire, seq, ts):
        event = event_from_obj(wire)
        again = decode_json(dumps(to_json_safe(msgspec.to_builtins(event))))
        assert encode_canonical(again) == encode_canonical(event)
        envelope = BlockView(seq, block_of([stored(seq, "id", ts, event)], seq)).decode()[0]
        assert (envelope.seq, envelope.id, envelope.ts) == (seq, "id", ts)
        assert encode_canonical(envelope.event) == encode_canonical(event)
        if wire["type"] == "metrics_recorded":
            for k, v in wire["values"].items():
                got = envelope.event.values[k]
                assert got == v or (math.isnan(v) and math.isnan(got))

    check()


def test_negative_nan_keeps_its_bytes_through_json():
    wire = {"type": "metrics_recorded", "study": "s", "run": "r", "values": {"x": -math.nan}}
    event = event_from_obj(wire)
    again = decode_json(dumps(to_json_safe(msgspec.to_builtins(event))))
    assert encode_canonical(again) == encode_canonical(event)
