"""``AnalyticsResult``: what an analysis used, what it found, and what it left out.

Every function of ``projections.analytics.api`` returns one. It carries

- ``rows``: the rows the computation used (a pyarrow Table, the query's columns),
- ``table``: the aggregated result (groups, pairs, outliers...), and named ``extras``
  (e.g. eco-effects by ECO class, the edges),
- ``exclusions``: every run (or case) left out, with its reason,
- ``query`` and ``as_of``: what was asked, at which seq, so the numbers can be
  reproduced exactly later (``Query(...).as_of(result.as_of)``),
- ``data``: the JSON payload (the ``--json`` shapes) and ``warnings``.

Tables stay numpy columns until asked for as Arrow, so a command that prints text never
imports pyarrow. ``to_json()`` spells NaN and ±inf as in docs/architecture.md, Events, with sorted keys:
the same result gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .query import Columns, Exclusion, Query
from .stats import AnalyticsError

if TYPE_CHECKING:
    import pyarrow as pa

from projections.text import format_table, format_value

__all__ = ["AnalyticsResult", "format_table", "format_value"]


class AnalyticsResult:
    """Read-only; see the module docstring. ``str(result)`` is the text summary."""

    __slots__ = (
        "_extras",
        "_rows",
        "_table",
        "as_of",
        "data",
        "display",
        "exclusions",
        "kind",
        "query",
        "settings",
        "study",
        "title",
        "warnings",
    )

    def __init__(
        self,
        *,
        kind: str,
        study: str,
        as_of: int,
        query: Query | None,
        rows: Columns,
        table: Columns,
        data: Mapping[str, Any],
        exclusions: Sequence[Exclusion] = (),
        extras: Mapping[str, Columns] | None = None,
        settings: Mapping[str, Any] | None = None,
        warnings: Sequence[str] = (),
        title: str = "",
        display: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.kind = kind
        self.study = study
        self.as_of = as_of
        self.query = query
        self._rows = rows
        self._table = table
        self._extras = dict(extras or {})
        self.data = dict(data)
        self.exclusions = tuple(exclusions)
        self.settings = dict(settings or {})
        self.warnings = tuple(warnings)
        self.title = title or kind
        self.display = {k: tuple(v) for k, v in (display or {}).items()}

    def __repr__(self) -> str:
        return (
            f"AnalyticsResult({self.kind!r}, study={self.study!r}, as_of={self.as_of}, "
            f"rows={len(self._rows)}, table={len(self._table)}, "
            f"exclusions={len(self.exclusions)})"
        )

    def __str__(self) -> str:
        return self.summary()

    # -- tables ----------------------------------------------------------------------

    @property
    def rows(self) -> pa.Table:
        """The rows the computation used, as the query yields them."""
        return self._rows.to_arrow()

    @property
    def table(self) -> pa.Table:
        """The aggregated result."""
        return self._table.to_arrow()

    @property
    def extras(self) -> tuple[str, ...]:
        """Names of the further tables (``to_arrow(name)``)."""
        return tuple(self._extras)

    def columns(self, name: str | None = None) -> Columns:
        """A table as numpy columns (no Arrow): ``None`` the main one, ``"rows"`` the
        rows used, else an extra. Raises ``AnalyticsError`` for an unknown name."""
        if name is None:
            return self._table
        if name == "rows":
            return self._rows
        if name not in self._extras:
            known = ", ".join(["rows", *self._extras]) or "none"
            raise AnalyticsError(
                f"this {self.kind} result has no table {name!r} (tables: {known})",
                argument="name",
            )
        return self._extras[name]

    def to_arrow(self, name: str | None = None) -> pa.Table:
        """The aggregated table (or ``rows``, or an extra) as a pyarrow Table."""
        return self.columns(name).to_arrow()

    def to_pandas(self, name: str | None = None) -> Any:
        """``to_arrow(name).to_pandas()``. Raises ``AnalyticsError`` when pandas is not
        installed (it is not a dependency of the ledger)."""
        try:
            import pandas  # noqa: F401
        except ImportError:
            raise AnalyticsError(
                "to_pandas() needs pandas, which is not installed; install it "
                "(pip install pandas) or use to_arrow()"
            ) from None
        return self.to_arrow(name).to_pandas()

    def to_csv(self, path: str | Path | None = None, name: str | None = None) -> str:
        """The table as CSV (header, then rows); written to ``path`` when given, and
        returned as text either way."""
        import io

        import pyarrow.csv as pacsv

        buf = io.BytesIO()
        pacsv.write_csv(self.to_arrow(name), buf)
        text = buf.getvalue().decode("utf-8")
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    # -- JSON --------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The JSON payload: the ``--json`` keys of this kind of analysis plus
        ``study``, ``as_of``, ``query``, ``settings``, ``exclusions`` and ``warnings``."""
        out = dict(self.data)
        out["study"] = self.study
        out["as_of"] = self.as_of
        out["query"] = self.query.to_dict() if self.query is not None else None
        out["settings"] = dict(self.settings)
        out["exclusions"] = [e.to_dict() for e in self.exclusions]
        out["warnings"] = list(self.warnings)
        return out

    def to_json(self) -> str:
        """``to_dict()`` as deterministic JSON (sorted keys; NaN as ``"NaN"``)."""
        from ledger.codec import dumps

        return dumps(self.to_dict()).decode()

    # -- text --------------------------------------------------------------------------

    def summary(self, *, warnings: bool = True, limit: int | None = None) -> str:
        """A readable account: what was asked, the tables, what was left out and why.
        ``limit`` caps the rows printed per table (None: all)."""
        lines = [f"{self.title} — study {self.study}, as of seq {self.as_of}"]
        if self.query is not None:
            lines.append(f"query: {self.query!r}")
        shown = {k: v for k, v in self.settings.items() if v is not None}
        if shown:
            lines.append(
                "settings: " + ", ".join(f"{k}={format_value(v)}" for k, v in shown.items())
            )
        for name, cols in [(None, self._table), *self._extras.items()]:
            key = name or ""
            if name is not None and (key not in self.display or len(cols) == 0):
                continue
            headers = list(self.display.get(key) or cols.names)
            lines.append("")
            if name is not None:
                lines.append(f"{name.replace('_', ' ')} ({len(cols)})")
            if len(cols) == 0:
                lines.append("(no rows)")
                continue
            lines.append(format_table(headers, _rows_of(cols, headers, limit)))
            if limit is not None and len(cols) > limit:
                lines.append(f"... {len(cols) - limit} more rows (use --json for all)")
        if self.exclusions:
            lines.append("")
            lines.append(f"excluded ({len(self.exclusions)})")
            lines.append(
                format_table(
                    ["case", "run", "reason"],
                    [[e.case, e.run, e.reason] for e in self.exclusions],
                )
            )
        if warnings and self.warnings:
            lines.append("")
            lines.append("warnings:")
            lines.extend(f"  {w}" for w in self.warnings)
        return "\n".join(lines)


def _rows_of(cols: Columns, headers: Sequence[str], limit: int | None) -> list[list[Any]]:
    n = len(cols) if limit is None else min(limit, len(cols))
    lists = [cols.pylist(h)[:n] for h in headers]
    return [list(r) for r in zip(*lists)]
