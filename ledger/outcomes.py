"""What the ledger's calls return: the head, an append's and a verify's figures."""

from __future__ import annotations

from typing import NamedTuple

import msgspec

__all__ = ["AppendResult", "Head", "VerifyReport"]


class Head(NamedTuple):
    seq: int
    hash: str


class AppendResult(msgspec.Struct, kw_only=True):
    appended: int
    duplicates: int
    head_seq: int
    head_hash: str
    first_seq: int | None = None
    redacted: list[str] = msgspec.field(default_factory=list)


class VerifyReport(msgspec.Struct, kw_only=True):
    ok: bool
    events: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    error: str | None = None
