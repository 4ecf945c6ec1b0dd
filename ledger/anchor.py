"""Heads recorded outside the log, to catch rollback and rewrite.

A hash chain proves that the log is consistent with itself, not that it is the log you
had: restoring an older copy, truncating it, or rewriting one event and recomputing
every hash after it all leave a chain that verifies (docs/reliability.md, pitfall 11). So the
head ``(seq, hash)`` is also written down somewhere the ledger cannot change — an anchor
file the user keeps elsewhere, an export's ``manifest.json``, a backup's marker — and
``verify --against FILE`` checks that the log still reaches that seq with that hash.
Checkpoints cannot serve: they live inside the ledger, so an old copy brings its old
checkpoints along.
"""

from __future__ import annotations

import json
import os
from typing import Any, NamedTuple

from .errors import AnchorError as AnchorError
from .fsync import fsync_dir as fsync_dir  # ledger.backup imports it from here

__all__ = [
    "ANCHOR_FORMAT",
    "AnchorError",
    "Reference",
    "check_against",
    "load_reference",
    "make_anchor",
    "write_anchor",
]

ANCHOR_FORMAT = "results-ledger-anchor/1"
_HEX = frozenset("0123456789abcdef")


class Reference(NamedTuple):
    """A head recorded outside the log: the chain hash after event ``seq``."""

    ledger_id: str | None
    seq: int
    hash: str
    kind: str  # "anchor", "export manifest" or "backup marker"
    source: str


def make_anchor(ledger: Any) -> dict[str, Any]:
    """The anchor of ``ledger``'s current head (keys sorted when written)."""
    head = ledger.head
    return {
        "format": ANCHOR_FORMAT,
        "ledger_id": ledger.ledger_id,
        "head_seq": head.seq,
        "head_hash": head.hash,
    }


def write_anchor(ledger: Any, out: str | os.PathLike[str]) -> dict[str, Any]:
    """Write the anchor to ``out`` atomically (temporary file, fsync, rename)."""
    anchor = make_anchor(ledger)
    out = os.fspath(out)
    tmp = f"{out}.{os.getpid()}.tmp"
    data = (json.dumps(anchor, sort_keys=True, indent=2) + "\n").encode()
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise AnchorError(f"cannot write the anchor to {out}: {exc.strerror or exc}") from None
    fsync_dir(os.path.dirname(os.path.abspath(out)))
    return anchor


def load_reference(path: str | os.PathLike[str]) -> Reference:
    """Read an anchor (``head_seq``), an export manifest (``as_of``) or a backup marker.

    Raises ``AnchorError`` naming the file and the missing or malformed key.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            data = json.loads(fh.read(1 << 20))
    except OSError as exc:
        raise AnchorError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise AnchorError(
            f"{path} is not JSON ({exc}); expected an anchor or manifest.json"
        ) from None
    if not isinstance(data, dict):
        raise AnchorError(f"{path}: expected a JSON object (an anchor or manifest.json)")
    if "head_seq" in data:
        kind, seq_key = (
            ("backup marker" if "backup" in str(data.get("format")) else "anchor"),
            "head_seq",
        )
    elif "as_of" in data:
        kind, seq_key = "export manifest", "as_of"
    else:
        raise AnchorError(
            f"{path} is neither an anchor (head_seq, head_hash) nor an export manifest "
            "(as_of, head_hash); write one with `ledger anchor --out FILE`"
        )
    seq, digest, ledger_id = data.get(seq_key), data.get("head_hash"), data.get("ledger_id")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise AnchorError(f"{path}: `{seq_key}` must be a seq (an integer >= 0), got {seq!r}")
    if not (isinstance(digest, str) and len(digest) == 64 and set(digest) <= _HEX):
        raise AnchorError(f"{path}: `head_hash` must be 64 lowercase hex digits, got {digest!r}")
    if ledger_id is not None and not isinstance(ledger_id, str):
        raise AnchorError(f"{path}: `ledger_id` must be a string, got {ledger_id!r}")
    return Reference(ledger_id, seq, digest, kind, path)


def check_against(ledger: Any, ref: Reference) -> str | None:
    """None when the log still holds ``ref``'s head, else what is wrong, for a user."""
    if ref.ledger_id is not None and ref.ledger_id != ledger.ledger_id:
        return (
            f"{ref.kind} {ref.source} belongs to ledger {ref.ledger_id}, this is ledger "
            f"{ledger.ledger_id}: check the --ledger path and the file"
        )
    head = ledger.head
    if head.seq < ref.seq:
        return (
            f"rollback detected: {ref.kind} {ref.source} records head seq {ref.seq} "
            f"({ref.hash[:16]}) but the ledger ends at seq {head.seq}; events were removed "
            "or an older copy was restored"
        )
    actual = ledger.hash_at(ref.seq)
    if actual != ref.hash:
        return (
            f"head mismatch with {ref.kind} {ref.source} at seq {ref.seq}: the ledger has "
            f"{actual[:16]}, the {ref.kind} records {ref.hash[:16]}; the log was rewritten"
        )
    return None
