"""Checkpoints: a projection's snapshot stored in the ledger, trusted only when it checks out.

A checkpoint is an optimisation, never a source of truth: an unreadable or doubtful one
is ignored (with a ``CheckpointWarning`` naming why) and the state is rebuilt from an
earlier position. It is trusted only when

- it was written by the same projection ``name`` and ``version`` (snapshot format),
- the log's chain hash at its seq is the hash recorded with it (the log it summarises
  is the log we have: not rolled back, rewritten or another ledger's), and
- its payload's digest matches (no bit rot, no truncation) and it restores.

The payload digest is CRC-32 (spelt ``crc32:<8 hex digits>``). An unkeyed digest
cannot stop tampering — whoever can write this table can recompute any — so its job
is accidental damage (LMDB keeps no page checksums), which CRC-32 is built to catch,
at about eight times BLAKE2b's speed: a 16 MB metrics checkpoint checks in ~10 ms
instead of ~60 ms. What binds a checkpoint to *this* log is the chain hash at its seq,
a BLAKE2b-256 the ledger already keeps.

Layout in the ledger's ``checkpoints`` table (outside the event log; writing one never
moves the head)::

    <name>/<be64 seq>             header (msgpack): format, name, version, seq, hash,
                                  digest, size — small, so listing is cheap
    #payload/<name>/<be64 seq>    the snapshot bytes

The payload is written before its header, so a header never names a payload that was
not written. Read-only commands never write checkpoints; ``ledger checkpoint`` (and
``projections.builtins.write_checkpoints``) do.

This module imports only ``projections.protocol`` and ``projections.errors``:
``projections.base`` imports it to restore checkpoints while building.
"""

from __future__ import annotations

import re
import warnings
import zlib
from collections.abc import Sequence
from typing import Any

import msgspec

from ledger import Ledger
from ledger.errors import LedgerError, StorageError

from .errors import ProjectionError
from .protocol import Projection

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointHeader",
    "CheckpointWarning",
    "check_checkpoints",
    "delete_checkpoints",
    "list_checkpoints",
    "prune_checkpoints",
    "restore_newest",
    "write_checkpoint",
]

TABLE = "checkpoints"
CHECKPOINT_FORMAT = 1
PAYLOAD_PREFIX = b"#payload/"
_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


class CheckpointWarning(UserWarning):
    """A checkpoint was ignored; the state is rebuilt without it (slower, still exact)."""


class CheckpointHeader(msgspec.Struct, kw_only=True, frozen=True):
    format: int
    name: str
    version: int
    seq: int
    hash: str  # the log's chain hash after event ``seq`` (hex)
    digest: str  # of the payload: "crc32:<hex>"
    size: int  # payload bytes

    def to_dict(self) -> dict[str, Any]:
        return msgspec.structs.asdict(self)


_encode = msgspec.msgpack.Encoder(order="deterministic").encode
_decode_header = msgspec.msgpack.Decoder(CheckpointHeader).decode


def _check_name(name: str) -> bytes:
    if not _NAME.fullmatch(name):
        raise ProjectionError(
            f"projection name {name!r} cannot name a checkpoint: use 1-64 lowercase "
            "letters, digits or '_', starting with a letter"
        )
    return name.encode()


def header_key(name: str, seq: int) -> bytes:
    return _check_name(name) + b"/" + seq.to_bytes(8, "big")


def payload_key(name: str, seq: int) -> bytes:
    return PAYLOAD_PREFIX + header_key(name, seq)


DIGEST_PREFIX = "crc32:"


def _digest(payload: bytes | memoryview) -> str:
    return f"{DIGEST_PREFIX}{zlib.crc32(payload):08x}"


def _payload_problem(header: CheckpointHeader, payload: bytes | None) -> str | None:
    if payload is None:
        return "its payload is missing"
    if not header.digest.startswith(DIGEST_PREFIX):
        kind = header.digest.split(":")[0] if ":" in header.digest else "unnamed"
        return f"its digest ({kind}) is not one this version checks"
    if len(payload) != header.size or _digest(payload) != header.digest:
        return "its payload does not match its digest (corrupt)"
    return None


def _warn(name: str, seq: int, why: str) -> None:
    warnings.warn(
        f"checkpoint {name}@{seq} ignored: {why}; rebuilding from an earlier position "
        "(run `ledger checkpoint` to write a fresh one)",
        CheckpointWarning,
        stacklevel=3,
    )


def _headers(ledger: Ledger, name: str) -> list[tuple[int, bytes]]:
    """(seq, raw header) of ``name``'s checkpoints, oldest first."""
    prefix = _check_name(name) + b"/"
    out = []
    for key, value in ledger.aux_items(TABLE, prefix):
        rest = key[len(prefix) :]
        if len(rest) == 8:
            out.append((int.from_bytes(rest, "big"), value))
    return out


def list_checkpoints(ledger: Ledger, name: str | None = None) -> list[CheckpointHeader]:
    """Headers of the stored checkpoints (of ``name``, or all), by name then seq.

    Headers that do not decode are left out here; ``restore_newest`` warns about them.
    """
    out = []
    for key, value in ledger.aux_items(TABLE):
        if key.startswith(PAYLOAD_PREFIX):
            continue
        try:
            header = _decode_header(value)
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
        if name is None or header.name == name:
            out.append(header)
    out.sort(key=lambda h: (h.name, h.seq))
    return out


def _problem(
    ledger: Ledger,
    name: str,
    version: int | None,
    seq: int,
    raw: bytes,
    hashes: dict[int, str] | None = None,
) -> tuple[str | None, Any]:
    """Why the checkpoint cannot be trusted (None if it can), and its header."""
    try:
        header = _decode_header(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return f"its header is corrupt ({exc})", None
    if header.format != CHECKPOINT_FORMAT:
        return f"checkpoint format {header.format}, this version reads {CHECKPOINT_FORMAT}", None
    if header.name != name or header.seq != seq:
        return "its header does not match its key (corrupt)", None
    if version is not None and header.version != version:
        return (
            f"written by version {header.version} of projection {name!r}, this is version {version}"
        ), None
    try:
        actual = hashes.get(seq) if hashes is not None else None
        if actual is None:
            actual = ledger.hash_at(seq)  # a mid-block seq recomputes its block's hashes
            if hashes is not None:
                hashes[seq] = actual
    except LedgerError:
        head = ledger.head.seq
        return (
            f"it is past the head of the log (seq {head}): the log was rolled back or replaced"
        ), None
    if actual != header.hash:
        return (
            f"the log's hash at seq {seq} ({actual[:16]}...) is not the one it was written "
            f"at ({header.hash[:16]}...): the log was rewritten or this checkpoint is "
            "another ledger's"
        ), None
    return None, header


def check_checkpoints(
    ledger: Ledger, versions: dict[str, int] | None = None
) -> list[tuple[CheckpointHeader | None, str, int, str | None]]:
    """Every stored checkpoint as (header or None, name, seq, problem or None), by name
    then seq; the payload's digest is checked too. ``versions`` (name -> current
    version) flags checkpoints of other versions. Reads only; never warns."""
    out = []
    for key, raw in ledger.aux_items(TABLE):
        if key.startswith(PAYLOAD_PREFIX) or len(key) < 10 or key[-9:-8] != b"/":
            continue
        name, seq = key[:-9].decode("utf-8", "replace"), int.from_bytes(key[-8:], "big")
        why, header = _problem(ledger, name, (versions or {}).get(name), seq, raw)
        if why is None:
            why = _payload_problem(header, ledger.aux_get(TABLE, payload_key(name, seq)))
        if header is None:
            try:
                header = _decode_header(raw)
            except (msgspec.DecodeError, msgspec.ValidationError):
                header = None
        out.append((header, name, seq, why))
    out.sort(key=lambda item: (item[1], item[2]))
    return out


def restore_newest(
    ledger: Ledger,
    projection: Projection,
    as_of: int,
    *,
    newer_than: int = 0,
    hashes: dict[int, str] | None = None,
) -> int:
    """Restore ``projection`` from its newest valid checkpoint with
    ``newer_than < seq <= as_of``; return that seq, or 0 when none was usable (the
    projection is then untouched). Every checkpoint passed over for a reason warns.
    ``hashes`` caches the log's chain hash per seq across calls (projections
    checkpointed together share a seq).
    """
    name = projection.name
    for seq, raw in reversed(_headers(ledger, name)):
        if seq > as_of:
            continue
        if seq <= newer_than:
            break
        why, header = _problem(ledger, name, projection.version, seq, raw, hashes)
        if why is None:
            payload = ledger.aux_get(TABLE, payload_key(name, seq))
            why = _payload_problem(header, payload)
            if why is None:
                assert payload is not None  # _payload_problem names a missing payload
                try:
                    projection.restore(payload)
                except Exception as exc:  # a payload that passed its digest but not restore
                    why = f"its payload does not restore ({type(exc).__name__}: {exc})"
                else:
                    projection.seq = seq
                    return seq
        _warn(name, seq, why)
    return 0


def write_checkpoint(ledger: Ledger, projection: Projection) -> CheckpointHeader:
    """Store ``projection``'s snapshot at its ``seq`` (overwriting one at the same seq).

    Raises ``ProjectionError`` for a projection at seq 0 (nothing to save) or past the
    head; ``StorageError`` when the ledger is read-only.
    """
    if getattr(ledger, "readonly", False):
        # Ledger.aux_put does not refuse on a read-only Ledger (the env may be writable),
        # so the promise "read-only commands never write" is kept here.
        raise StorageError(f"{ledger.path} is open read-only; checkpoints are not written")
    seq = projection.seq
    if seq <= 0:
        raise ProjectionError(
            f"projection {projection.name!r} is at seq 0: there is nothing to checkpoint"
        )
    try:
        chain = ledger.hash_at(seq)
    except LedgerError:
        raise ProjectionError(
            f"projection {projection.name!r} is at seq {seq}, past the head of "
            f"{ledger.path} (seq {ledger.head.seq}); it was built from another log"
        ) from None
    payload = projection.snapshot()
    header = CheckpointHeader(
        format=CHECKPOINT_FORMAT,
        name=projection.name,
        version=projection.version,
        seq=seq,
        hash=chain,
        digest=_digest(payload),
        size=len(payload),
    )
    ledger.aux_put(TABLE, payload_key(projection.name, seq), payload)
    ledger.aux_put(TABLE, header_key(projection.name, seq), _encode(header))
    return header


def delete_checkpoints(ledger: Ledger, name: str, seqs: Sequence[int]) -> None:
    for seq in seqs:
        ledger.aux_delete(TABLE, header_key(name, seq))
        ledger.aux_delete(TABLE, payload_key(name, seq))


def prune_checkpoints(ledger: Ledger, keep: int, names: Sequence[str] | None = None) -> int:
    """Keep the newest ``keep`` checkpoints of each projection; return how many went."""
    if keep < 1:
        raise ProjectionError(f"keep must be at least 1, got {keep}")
    if names is None:
        names = sorted({h.name for h in list_checkpoints(ledger)})
    removed = 0
    for name in names:
        seqs = [seq for seq, _ in _headers(ledger, name)]
        old = seqs[:-keep]
        delete_checkpoints(ledger, name, old)
        removed += len(old)
    return removed
