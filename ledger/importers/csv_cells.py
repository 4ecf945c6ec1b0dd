"""What one CSV cell means: a status, an error, a step, JSON, a time, the row's study.

Both CSV readers (wide and long) turn cells into typed values the same way, and a bad
cell must fail the same way in both — naming ``file:line`` and the column — so the
CLI prints one kind of message whatever the file's shape.

An error cell implies a status: ``timeout`` when the text says it timed out,
``cancelled`` for cancel/kill/abort, ``interrupted`` for an interruption, else
``failed`` (a ``status`` column, where there is one, says otherwise).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from .common import ImportSourceError, check_name, parse_number, to_utc

__all__ = ["STATUS_WORDS", "status_from_error"]

STATUS_WORDS: dict[str, str] = {
    **dict.fromkeys(
        [
            "completed",
            "complete",
            "success",
            "succeeded",
            "successful",
            "finished",
            "ok",
            "done",
            "pass",
            "passed",
        ],
        "completed",
    ),
    **dict.fromkeys(["failed", "fail", "failure", "error", "errored", "crashed"], "failed"),
    **dict.fromkeys(["pruned"], "pruned"),
    **dict.fromkeys(["timeout", "timed_out", "timedout", "time_out"], "timeout"),
    **dict.fromkeys(["cancelled", "canceled", "killed", "aborted"], "cancelled"),
    **dict.fromkeys(["interrupted"], "interrupted"),
}
_TIMEOUT = re.compile(r"time[sd]?[\s_-]*out|deadline", re.IGNORECASE)
_CANCEL = re.compile(r"cancel|kill|abort", re.IGNORECASE)
_INTERRUPT = re.compile(r"interrupt", re.IGNORECASE)


def status_from_error(text: str) -> str:
    """The ledger status an error message implies (see the module docstring)."""
    if _TIMEOUT.search(text):
        return "timeout"
    if _CANCEL.search(text):
        return "cancelled"
    if _INTERRUPT.search(text):
        return "interrupted"
    return "failed"


def status_word(text: str, where: str, column: str) -> str:
    word = text.strip().lower().replace("-", "_").replace(" ", "_")
    status = STATUS_WORDS.get(word)
    if status is None:
        known = ", ".join(sorted(STATUS_WORDS))
        raise ImportSourceError(
            f"{text!r} is not a known status (known: {known})",
            where=where,
            field=column,
            label="column",
        )
    return status


def row_study(
    row: list[str],
    i_study: int | None,
    study: str | None,
    default: str,
    where: str,
    column: str | None,
) -> str | None:
    """The study a row belongs to, or None for a row of another study than ``study``
    (the rows a ``study_column`` filter skips)."""
    if i_study is None:
        return default
    s = row[i_study]
    if study is not None and s != study:
        return None
    check_name(s, "study", where=where, field=column, label="column")
    return s


def number_cell(cell: str, where: str, column: str) -> int | float:
    num = parse_number(cell)
    if num is None:
        raise ImportSourceError(
            f"{cell!r} is not a number", where=where, field=column, label="column"
        )
    return num


def int_cell(cell: str, where: str, column: str | None, what: str) -> int:
    num = parse_number(cell)
    if not isinstance(num, int) or num < 0:
        raise ImportSourceError(
            f"{cell!r} is not {what} (an integer ≥ 0)", where=where, field=column, label="column"
        )
    return num


def json_cell(cell: str, where: str, column: str) -> Any:
    try:
        return json.loads(cell)
    except ValueError as exc:
        raise ImportSourceError(
            f"not valid JSON ({exc})", where=where, field=column, label="column"
        ) from None


def time_cell(cell: str, naive_tz: str, where: str, column: str) -> tuple[datetime, bool]:
    """The time in UTC, and whether it had no offset (so ``naive_tz`` was assumed)."""
    try:
        text, assumed = to_utc(cell, naive_tz=naive_tz)
    except ValueError:
        raise ImportSourceError(
            f"{cell!r} is not an ISO 8601 time (e.g. 2026-03-02 09:00:37)",
            where=where,
            field=column,
            label="column",
        ) from None
    return datetime.fromisoformat(text.replace("Z", "+00:00")), assumed


def error_text(cell: str, key: str | None, where: str, column: str) -> str | None:
    if cell == "":
        return None
    if key is None:
        return cell
    obj = json_cell(cell, where, column)
    if not isinstance(obj, dict):
        raise ImportSourceError(
            f"expected a JSON object to read {key!r} from, got {type(obj).__name__}",
            where=where,
            field=column,
            label="column",
        )
    value = obj.get(key)
    if value in (None, "", False):
        return None
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
