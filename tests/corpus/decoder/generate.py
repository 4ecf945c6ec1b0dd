"""How the seed files of this corpus were made (run from the repository root).

The .bin files are committed; expected.json says which decoder reads each one and what
it must give (``ok``, or the error class and a phrase of its message). A bug found by
R10's fuzzing becomes a new .bin file plus an entry, by hand or by adding it here.
"""

import json
import math
import os
import struct

import msgspec

from ledger.blocks import chain_hash, encode_block

out = os.path.dirname(os.path.abspath(__file__))
enc = msgspec.msgpack.Encoder(order="deterministic").encode


def block_of(envelopes):
    raws = [e if isinstance(e, bytes) else enc(e) for e in envelopes]
    h, hs = bytes(32), []
    for i, r in enumerate(raws):
        h = chain_hash(h, 1 + i, r)
        hs.append(h)
    return encode_block(raws, hs, first_seq=1)


def raw_block(count, body, n_offsets=None):
    h = bytes(32)
    n = count
    return (
        struct.pack("<3sI32s", b"LB\x01", n, h)
        + bytes(8 * n)
        + struct.pack(f"<{n + 1}I", *([1] * n + [len(body)]))
        + body
    )


S = b"\x83\xa4type\xadstudy_created\xa5study\xa1s"
cases = {
    # JSON Lines records (ledger.codec.decode_json_event)
    "json-deep-nesting-100k": (
        "json",
        b'{"type":"study_created","study":"s","config":{"a":'
        + b"[" * 100000
        + b"]" * 100000
        + b"}}",
        "LedgerDecodeError",
        "nested deeper than 32 levels",
    ),
    "json-deep-array-100k": (
        "json",
        b"[" * 100000,
        "LedgerDecodeError",
        "nested deeper than 32 levels",
    ),
    "json-invalid-utf8": (
        "json",
        b'{"type":"study_created","study":"s\xff\xfe"}',
        "LedgerDecodeError",
        "invalid JSON",
    ),
    "json-lone-surrogate": ("json", b'{"type":"study_created","study":"\\ud800"}', "ok", ""),
    "json-nan-infinity": (
        "json",
        b'{"type":"metrics_recorded","study":"s","run":"r","values":{"loss":NaN,"acc":"Infinity","x":-Infinity}}',
        "ok",
        "",
    ),
    "json-unknown-field": (
        "json",
        b'{"type":"study_created","study":"s","colour":"red"}',
        "LedgerDecodeError",
        "unknown field `colour`",
    ),
    "json-str-for-int": (
        "json",
        b'{"type":"case_created","study":"s","case":"c","stage":"3"}',
        "LedgerDecodeError",
        "expected `int`, got `str` - at `$.stage`",
    ),
    "json-bool-metric": (
        "json",
        b'{"type":"metrics_recorded","study":"s","run":"r","values":{"x":true}}',
        "LedgerDecodeError",
        "got `bool`",
    ),
    "json-huge-int": (
        "json",
        b'{"type":"metrics_recorded","study":"s","run":"r","values":{"x":' + b"9" * 5000 + b"}}",
        "LedgerDecodeError",
        "out of range",
    ),
    "json-huge-exponent": (
        "json",
        b'{"type":"metrics_recorded","study":"s","run":"r","values":{"x":1e400}}',
        "ok",
        "",
    ),
    "json-nul": ("json", b"\x00", "LedgerDecodeError", "invalid JSON"),
    "json-empty": ("json", b"", "LedgerDecodeError", "invalid JSON"),
    "json-not-an-object": ("json", b"[1,2]", "LedgerDecodeError", "must be a JSON object"),
    "json-type-not-a-string": ("json", b'{"type":7}', "LedgerDecodeError", "unknown event type 7"),
    "json-long-name": (
        "json",
        b'{"type":"study_created","study":"' + b"s" * 257 + b'"}',
        "LedgerDecodeError",
        "length <= 256",
    ),
    # stored blocks (ledger.blocks.BlockView(...).decode())
    "block-valid": (
        "block",
        block_of([[1, "id1", 1000, {"type": "study_created", "study": "s"}]]),
        "ok",
        "",
    ),
    "block-empty": ("block", b"", "CorruptionError", "truncated"),
    "block-bad-magic": ("block", b"XX\x01" + bytes(60), "CorruptionError", "bad magic"),
    "block-huge-count": (
        "block",
        struct.pack("<3sI32s", b"LB\x01", 0xFFFFFFFF, bytes(32)) + bytes(100),
        "CorruptionError",
        "truncated",
    ),
    "block-huge-str32": (
        "block",
        raw_block(1, b"\x91\x94\x01\xdb\xff\xff\xff\xffabc"),
        "CorruptionError",
        "does not decode",
    ),
    "block-huge-array32": (
        "block",
        raw_block(1, b"\xdd\xff\xff\xff\xff"),
        "CorruptionError",
        "does not decode",
    ),
    "block-huge-map32": (
        "block",
        raw_block(1, b"\x91\x94\x01\xa3id1\xcd\x03\xe8\xdf\xff\xff\xff\xff"),
        "CorruptionError",
        "does not decode",
    ),
    "block-deep-nesting-100k": (
        "block",
        raw_block(
            1,
            b"\x91\x94\x01\xa3id1\xcd\x03\xe8\x84\xa4type\xadstudy_created\xa5study\xa1s\xa6config\x81\xa1a"
            + b"\x91" * 100000
            + b"\x01",
        ),
        "CorruptionError",
        "does not decode",
    ),
    "block-invalid-utf8": (
        "block",
        raw_block(1, b"\x91\x94\x01\xa3i\xff\xfe\xcd\x03\xe8" + S),
        "CorruptionError",
        "does not decode",
    ),
    "block-str-for-int": (
        "block",
        raw_block(1, b"\x91\x94\xa11\xa3id1\xcd\x03\xe8" + S),
        "CorruptionError",
        "does not decode",
    ),
    "block-ext-in-seq": (
        "block",
        raw_block(1, b"\x91\x94\xd4\x05\x01\xa3id1\xcd\x03\xe8" + S),
        "CorruptionError",
        "does not decode",
    ),
    "block-ext-in-config": (
        "block",
        block_of(
            [
                [
                    1,
                    "id1",
                    1000,
                    {
                        "type": "study_created",
                        "study": "s",
                        "config": {"x": msgspec.msgpack.Ext(5, b"abc")},
                    },
                ]
            ]
        ),
        "ok",
        "",
    ),
    "block-nan-metric": (
        "block",
        block_of(
            [
                [
                    1,
                    "id1",
                    1000,
                    {
                        "type": "metrics_recorded",
                        "study": "s",
                        "run": "r",
                        "values": {"x": math.nan},
                    },
                ]
            ]
        ),
        "ok",
        "",
    ),
    "block-unknown-field": (
        "block",
        block_of([[1, "id1", 1000, {"type": "study_created", "study": "s", "colour": "red"}]]),
        "ok",
        "",
    ),
    "block-unknown-type": (
        "block",
        block_of([[1, "id1", 1000, {"type": "teleported", "study": "s"}]]),
        "CorruptionError",
        "does not decode",
    ),
    "block-offsets-past-end": (
        "block",
        struct.pack("<3sI32s", b"LB\x01", 1, bytes(32))
        + bytes(8)
        + struct.pack("<2I", 1, 10**6)
        + b"\x91\xc0",
        "CorruptionError",
        "bad offsets",
    ),
    "block-count-mismatch": (
        "block",
        struct.pack("<3sI32s", b"LB\x01", 2, bytes(32))
        + bytes(16)
        + struct.pack("<3I", 1, 1, 1)
        + b"\x91\xc0",
        "CorruptionError",
        "",
    ),
    "block-seq-mismatch": (
        "block",
        block_of([[7, "id1", 1000, {"type": "study_created", "study": "s"}]]),
        "CorruptionError",
        "does not match its key",
    ),
}
expected = {}
for name, (decoder, data, result, match) in cases.items():
    with open(os.path.join(out, name + ".bin"), "wb") as fh:
        fh.write(data)
    expected[name + ".bin"] = {"decoder": decoder, "result": result, "match": match}
with open(os.path.join(out, "expected.json"), "w") as fh:
    json.dump(expected, fh, indent=1, sort_keys=True)
    fh.write("\n")
