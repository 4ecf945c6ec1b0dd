"""The hash chain, defined once.

    hash(seq) = BLAKE2b-256(hash(seq - 1) || be64(seq) || stored_event(seq)),
    hash(0)   = 32 zero bytes (``GENESIS``)

``stored_event`` is the event's stored envelope (msgpack ``[seq, id, ts, content]``).
The chain is defined per event and independent of how events are grouped into blocks
or which backend holds them, so a ledger replicated with ``log --json | append`` — or
the same batches appended to LMDB and to PostgreSQL — has the same head hash.
"""

from __future__ import annotations

from collections.abc import Sequence

try:  # the same type hashlib exports, without loading OpenSSL at start-up
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - an interpreter without CPython's _blake2
    from hashlib import blake2b

__all__ = ["GENESIS", "chain_hash", "chain_hashes", "chain_hashes_of_views"]

GENESIS = bytes(32)


def chain_hash(prev: bytes, seq: int, data: bytes | memoryview) -> bytes:
    """The hash after event ``seq`` whose stored bytes are ``data``."""
    return blake2b(prev + seq.to_bytes(8, "big") + bytes(data), digest_size=32).digest()


def chain_hashes(prev: bytes, seq8s: Sequence[bytes], stored: Sequence[bytes]) -> list[bytes]:
    """The hashes after each of consecutive events (``seq8s`` their be64 seqs): the
    append path, one C call per event."""
    out: list[bytes] = []
    append = out.append
    digest_of = blake2b  # a local: the loop runs once per event of every append
    h = prev
    for s8, data in zip(seq8s, stored):
        h = digest_of(h + s8 + data, digest_size=32).digest()
        append(h)
    return out


def chain_hashes_of_views(prev: bytes, first_seq: int, views: Sequence[memoryview]) -> list[bytes]:
    """The same hashes, fed to BLAKE2b piece by piece from views into a stored block
    instead of concatenated into a fresh copy per event (about 30% less time per event):
    the read path."""
    out: list[bytes] = []
    append = out.append
    h = prev
    seq = first_seq
    for view in views:
        digest = blake2b(h, digest_size=32)
        digest.update(seq.to_bytes(8, "big"))
        digest.update(view)
        h = digest.digest()
        append(h)
        seq += 1
    return out
