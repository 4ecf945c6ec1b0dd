"""``BlockView.hashes``: the per-event chain recomputed from a stored block equals the
chain's definition, stops at ``upto``, and names the seq of a bad offset."""

from __future__ import annotations

import struct
from hashlib import blake2b

import pytest

from ledger.blocks import GENESIS, MAGIC, MAGIC_V2, BlockView, encode_block
from ledger.errors import CorruptionError


def _reference(prev: bytes, first_seq: int, events: list[bytes]) -> list[bytes]:
    out, h = [], prev
    for i, data in enumerate(events):
        h = blake2b(h + (first_seq + i).to_bytes(8, "big") + data, digest_size=32).digest()
        out.append(h)
    return out


EVENTS = [bytes([0x90 + (i % 3)]) + b"x" * (i * 7 % 50) for i in range(40)]


def _block(
    first_seq: int = 11, prev: bytes = b"\x07" * 32, magic: bytes = MAGIC
) -> tuple[BlockView, list[bytes]]:
    want = _reference(prev, first_seq, EVENTS)
    return BlockView(first_seq, encode_block(EVENTS, want, first_seq=first_seq, magic=magic)), want


def test_hashes_follow_the_chain_definition() -> None:
    view, want = _block()
    assert view.hashes(b"\x07" * 32) == want
    assert view.last_hash == want[-1]
    assert [view.prefix(i) for i in range(view.count)] == [h[:8] for h in want]
    assert view.hashes(b"\x07" * 32, upto=11) == want[:1]
    assert view.hashes(b"\x07" * 32, upto=30) == want[:20]
    assert view.hashes(GENESIS) != want  # the previous hash is part of every link


def test_a_changed_offset_fails_the_checksum_naming_the_block() -> None:
    view, _ = _block()
    raw = bytearray(view.buf)
    struct.pack_into("<I", raw, 63 + 8 * view.count + 4 * 6, len(raw) * 2)
    broken = BlockView(11, bytes(raw))
    with pytest.raises(CorruptionError, match=r"block of seqs 11-50 fails its events checksum"):
        broken.hashes(b"\x07" * 32)
    with pytest.raises(CorruptionError, match="header checksum"):
        BlockView(12, bytes(view.buf))  # a block stored under another seq


def test_a_bad_offset_names_its_seq() -> None:
    """Layout 2 blocks (no checksums) still have their offsets checked one by one."""
    view, _ = _block(magic=MAGIC_V2)
    raw = bytearray(view.buf)
    off = 39 + 8 * view.count  # the offsets table, after the header and the prefixes
    bad = 5  # event 5 (seq 16) ends past the block
    struct.pack_into("<I", raw, off + 4 * (bad + 1), len(raw) * 2)
    broken = BlockView(11, bytes(raw))
    with pytest.raises(CorruptionError, match=r"corrupt at seq 16: bad offsets") as info:
        broken.hashes(b"\x07" * 32)
    assert info.value.seq == 16
    # hashes before the bad event are still computed when asked only for those
    assert len(broken.hashes(b"\x07" * 32, upto=15)) == 5


def test_read_with_hashes_matches_hash_at(ledger) -> None:
    ledger.append(
        [
            {"type": "study_created", "study": "s"},
            {"type": "case_created", "study": "s", "case": "c"},
        ]
    )
    ledger.append([{"type": "run_started", "study": "s", "case": "c", "run": "r"}])
    ledger.append(
        [
            {
                "type": "metrics_recorded",
                "study": "s",
                "run": "r",
                "step": i,
                "values": {"loss": 1 / (i + 1)},
            }
            for i in range(50)
        ]
    )
    envs = list(ledger.read(with_hashes=True))
    assert [e.seq for e in envs] == list(range(1, 54))
    for env in envs:
        assert env.hash.hex() == ledger.hash_at(env.seq)
    assert envs[-1].hash.hex() == ledger.head.hash
    assert ledger.verify().ok
