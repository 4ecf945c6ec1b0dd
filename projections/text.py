"""Plain text tables for people: one renderer for every command and report.

Lives in ``projections`` (not ``cli``) because analytics results render their own text
summary; the CLI uses the same functions, so a table looks the same everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["format_table", "format_value"]


def format_value(value: Any) -> str:
    """Six significant digits for floats, ``-`` for None, NaN/Infinity spelled out."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "Infinity" if value > 0 else "-Infinity"
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v) for v in value)
    return str(value)


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], *, right: set[int] | None = None
) -> str:
    """An aligned text table; numeric columns right-aligned unless ``right`` says."""
    cells = [[format_value(c) for c in row] for row in rows]
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

    out = [line(list(headers)), line(["-" * w for w in widths])]
    out.extend(line(r) for r in cells)
    return "\n".join(out)
