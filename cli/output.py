"""Rendering: JSON for programs (stdout, deterministic), tables for people."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from ledger.codec import dumps


def echo_json(obj: Any) -> None:
    click.echo(dumps(obj).decode())


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "Infinity" if value > 0 else "-Infinity"
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v) for v in value)
    return str(value)


def table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], *, right: set[int] | None = None
) -> str:
    """A plain aligned text table; numbers right-aligned."""
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))
    if right is None:
        right = {
            i
            for i in range(len(headers))
            if rows
            and all(
                isinstance(r[i], (int, float)) and not isinstance(r[i], bool)
                for r in rows
                if r[i] is not None
            )
        }

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(row)
        ).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out.extend(line(r) for r in cells)
    return "\n".join(out)
