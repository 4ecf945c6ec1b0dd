"""What every importer shares: the typed error, stable ids, names, numbers, times, progress.

An importer turns a foreign source into wire dicts (docs/architecture.md, Events). Two properties make that
safe to repeat and safe to fail:

- ids are derived from the source (never from the wall clock or a counter), so
  importing the same source twice appends nothing the second time;
- a source is parsed whole before anything is returned, so a bad row refuses the whole
  file (the caller appends one atomic batch) and the error names ``file:line``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from ledger.errors import ImportSourceError as ImportSourceError
from ledger.errors import MissingDependency as MissingDependency
from ledger.numbers import is_number as is_number  # the importers' one number test

__all__ = [
    "ImportError_",
    "ImportResult",
    "ImportSourceError",
    "MissingDependency",
    "Progress",
    "Ticker",
    "check_name",
    "parse_number",
    "stable_id",
    "study_created",
    "to_utc",
]

MAX_NAME = 256
MAX_ID = 256

Progress = Callable[[int, "int | None"], None]
"""``progress(done, total)``: called now and then during a long import (``total`` may be
``None`` when unknown). Units are the importer's (bytes of a file, runs of a store)."""


ImportError_ = ImportSourceError  # the name the issue uses; ``ImportError`` is a builtin


@dataclass
class ImportResult:
    """The events to append as one batch, and a deterministic summary for people.

    ``summary`` holds only JSON-able values in an order fixed by the source (no set or
    hash order), so ``--dry-run --json`` prints the same bytes for the same source.
    """

    events: list[dict[str, Any]]
    summary: dict[str, Any] = field(default_factory=dict)


# -- ids and names ---------------------------------------------------------------


def stable_id(*parts: object) -> str:
    """``part:part:...``, or a hashed form when that exceeds the ledger's 256 characters.

    The hashed form keeps a readable prefix and appends a BLAKE2b digest of the whole
    text, so two long ids that share a prefix still differ.
    """
    return bounded_id(":".join(map(str, parts)))


def bounded_id(text: str) -> str:
    """``text`` itself when the ledger takes it as an id, else the hashed form."""
    if len(text) <= MAX_ID:
        return text
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()
    return text[: MAX_ID - len(digest) - 2] + ":#" + digest


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def check_name(
    value: str, what: str, *, where: str | None, field: str | None = None, label: str = "field"
) -> str:
    """Refuse here, with the source location, a study/case/run id the ledger would refuse."""
    if not value:
        raise ImportSourceError(f"the {what} id is empty", where=where, field=field, label=label)
    if len(value) > MAX_NAME:
        raise ImportSourceError(
            f"the {what} id is {len(value)} characters long; the ledger takes at most {MAX_NAME}",
            where=where,
            field=field,
            label=label,
        )
    if _CONTROL.search(value):
        raise ImportSourceError(
            f"the {what} id {value!r} contains a control character",
            where=where,
            field=field,
            label=label,
        )
    return value


def study_created(study: str) -> dict[str, Any]:
    """The minimal ``study_created`` every importer emits for a plain study.

    It is identical whichever importer emits it (same id, same content), so importing a
    CSV and an ORFS bundle into one study does not conflict on the study itself.
    """
    return {"type": "study_created", "study": study, "id": stable_id("study", study)}


# -- numbers ---------------------------------------------------------------------


def parse_number(text: str) -> int | float | None:
    """A metric cell as an int or float, or ``None`` when it is not a number.

    Stricter than ``float()``: ASCII only, no underscores, no surrounding spaces, no
    booleans; an integer literal stays an int so ``1`` and ``1.0`` keep their source
    spelling. ``nan``/``inf``/``infinity`` (any case, signed) are numbers. Cheap string
    tests first: this runs once per cell of a million-value file.
    """
    if not text.isascii():
        return None
    if text.isdigit():
        return int(text)
    if "_" in text or text != text.strip():
        return None
    if text[:1] in ("+", "-") and text[1:].isdigit():
        return int(text)
    try:
        return float(text)
    except ValueError:
        return None


# -- times -----------------------------------------------------------------------


def _zone(name: str) -> timezone | Any:
    if name.upper() in ("UTC", "Z"):
        return timezone.utc
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(name)
    except Exception as exc:  # ZoneInfoNotFoundError, ValueError
        raise ImportSourceError(
            f"unknown time zone {name!r} ({exc}); use an IANA name such as 'Europe/Paris' or 'UTC'"
        ) from None


def to_utc(value: str | datetime, *, naive_tz: str = "UTC") -> tuple[str, bool]:
    """An ISO 8601 time as RFC 3339 UTC (``...Z``), and whether a zone had to be assumed.

    A time without an offset is read in ``naive_tz``; the caller reports the assumption.
    Raises ``ValueError`` for text that is not an ISO 8601 time (callers add the location).
    """
    if isinstance(value, datetime):
        dt = value
    else:
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        dt = datetime.fromisoformat(text)
    assumed = dt.tzinfo is None
    if assumed:
        dt = dt.replace(tzinfo=_zone(naive_tz))
    dt = dt.astimezone(timezone.utc)
    return format_utc(dt), assumed


def format_utc(dt: datetime) -> str:
    """RFC 3339 UTC; microseconds only when there are any (the ledger accepts both)."""
    dt = dt.astimezone(timezone.utc)
    base = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if dt.microsecond:
        base += f".{dt.microsecond:06d}"
    return base + "Z"


def utc_from_millis(ms: int | None) -> str | None:
    """Unix milliseconds (MLflow's clock) as RFC 3339 UTC, without float rounding."""
    if ms is None:
        return None
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    return format_utc(epoch + timedelta(milliseconds=int(ms)))


# -- progress --------------------------------------------------------------------


class Ticker:
    """Calls ``progress`` at most about every ``every`` units, and once at the end.

    Importers call ``tick(done)`` per row; the callback (a CLI progress bar) is only
    invoked when enough has happened, so it costs nothing on the hot path.
    """

    __slots__ = ("_next", "every", "progress", "total")

    def __init__(self, progress: Progress | None, total: int | None, every: int = 4096):
        self.progress = progress
        self.total = total
        self.every = every
        self._next = every

    def tick(self, done: int) -> None:
        if self.progress is not None and done >= self._next:
            self._next = done + self.every
            self.progress(done, self.total)

    def done(self, done: int) -> None:
        if self.progress is not None:
            self.progress(done, self.total)
