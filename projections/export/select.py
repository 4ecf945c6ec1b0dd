"""``--where`` and ``--fields``: which rows and which columns an export keeps.

``--where`` is a list of conditions, all of which must hold (repeat the option to add
one). Each is ``FIELD OP VALUE``:

========== ============================ =================================================
field      operators                    matches
========== ============================ =================================================
stage      ``= != > >= < <=``           the case's stage (``=``/``!=`` take a comma list)
status     ``= !=``                     the run's status; ``running`` for a run not
                                        finished yet, ``invalidated`` for an invalidated
                                        run (whatever it finished with)
case       ``= !=``                     case id, fnmatch glob (``base*``), comma list
eco        ``= !=``                     the ECO that made the case (glob, comma list);
                                        a root case has none and never matches ``=``
eco_class  ``= !=``                     the ECO class, likewise
ts         ``> >= < <=``                the time of the event behind each row: a case's
                                        creation, a metric value's recording, and for a
                                        run any of its own events (start to last
                                        activity) — RFC 3339 with an offset, a date
                                        ``YYYY-MM-DD`` (midnight UTC) or Unix seconds
========== ============================ =================================================

Case conditions (stage, case, eco, eco_class) select cases, and with them their runs
and metric values; ``status`` selects runs and their values, never cases; ``ts`` is
checked row by row in each table. A literal comma inside a glob is written ``[,]``.

``--fields`` picks and orders columns. ``TABLE:col1,col2`` (TABLE one of ``cases``,
``runs``, ``metrics``) gives that table exactly those columns, in that order; plain
``col1,col2`` applies to every table that has at least one of the names (each keeps
the ones it has, in the given order; a table with none of them is left whole). Names
may be fnmatch globs (``param.*``). A name that matches nothing is an error.

Errors: ``SelectionError`` (an ``ExportError``) names the expression and the fix.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ledger.errors import LedgerDecodeError
from ledger.events import STATUSES
from projections.comparisons import COMPARISONS
from projections.errors import SelectionError as SelectionError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "TABLES",
    "Condition",
    "FieldSpec",
    "SelectionError",
    "Where",
    "parse_fields",
    "parse_where",
]

#: The tables ``--fields`` can name, in the order they are written.
TABLES = ("cases", "runs", "metrics")
WHERE_FIELDS = ("stage", "status", "case", "eco", "eco_class", "ts")
RUN_STATES = (*STATUSES, "running", "invalidated")

_CONDITION = re.compile(r"\s*(?P<field>[a-z_]+)\s*(?P<op>==|!=|>=|<=|=|>|<)\s*(?P<value>.*?)\s*")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_ORDERED_OPS = {">", ">=", "<", "<="}
_EXAMPLES = "e.g. 'stage>=1', 'status=completed,failed', 'case=base*', 'ts>=2024-05-01'"


@dataclass(frozen=True)
class Condition:
    """One parsed ``FIELD OP VALUE``; ``values`` holds ints for stage, µs for ts."""

    field: str
    op: str
    values: tuple[Any, ...]
    text: str

    def holds_text(self, value: str | None) -> bool:
        """For the glob fields and status: does ``value`` satisfy the condition?"""
        hit = value is not None and any(fnmatch.fnmatchcase(value, p) for p in self.values)
        return hit if self.op == "=" else not hit


def _fail(text: str, why: str) -> SelectionError:
    return SelectionError(f"cannot read --where {text!r}: {why}")


def _split(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(","))


def _parse_ts(text: str, value: str) -> int:
    from ledger.codec import parse_ts

    if _DATE.fullmatch(value):
        value += "T00:00:00Z"
    elif _NUMBER.fullmatch(value):
        return parse_ts(float(value))
    try:
        return parse_ts(value, field="ts")
    except LedgerDecodeError:
        raise _fail(
            text,
            f"{value!r} is not a time; write RFC 3339 with an offset "
            "(2024-05-01T12:00:00Z), a date (2024-05-01, midnight UTC) or Unix seconds",
        ) from None


def parse_condition(text: str) -> Condition:
    """Parse one ``--where`` expression. Raises ``SelectionError``."""
    m = _CONDITION.fullmatch(text)
    if m is None:
        raise _fail(
            text, f"write FIELD OP VALUE with FIELD one of {', '.join(WHERE_FIELDS)} ({_EXAMPLES})"
        )
    name, op, value = m["field"], m["op"], m["value"]
    op = "=" if op == "==" else op
    if name not in WHERE_FIELDS:
        raise _fail(text, f"unknown field {name!r}; use one of {', '.join(WHERE_FIELDS)}")
    if not value:
        raise _fail(text, "the value is empty")
    if name == "ts":
        if op not in _ORDERED_OPS:
            raise _fail(text, "ts takes >, >=, < or <= (a time range), e.g. 'ts>=2024-05-01'")
        return Condition(name, op, (_parse_ts(text, value),), text)
    if name == "stage":
        parts = _split(value) if op in ("=", "!=") else (value,)
        try:
            stages = tuple(int(p) for p in parts)
        except ValueError:
            raise _fail(text, f"stage takes whole numbers, got {value!r}") from None
        return Condition(name, op, stages, text)
    if op in _ORDERED_OPS:
        raise _fail(text, f"{name} takes = or != (with globs and comma lists), not {op}")
    values = _split(value)
    if any(not v for v in values):
        raise _fail(text, "an empty item in the comma list")
    if name == "status":
        unknown = [v for v in values if not any(fnmatch.fnmatchcase(s, v) for s in RUN_STATES)]
        if unknown:
            raise _fail(
                text, f"unknown status {unknown[0]!r}; statuses are {', '.join(RUN_STATES)}"
            )
    return Condition(name, op, values, text)


def _compare(op: str, left: Any, right: Any) -> Any:
    return COMPARISONS[op](left, right)


@dataclass(frozen=True)
class Where:
    """All ``--where`` conditions, split by what they select."""

    conditions: tuple[Condition, ...] = ()

    @property
    def texts(self) -> list[str]:
        return [c.text for c in self.conditions]

    def __bool__(self) -> bool:
        return bool(self.conditions)

    def _of(self, *names: str) -> list[Condition]:
        return [c for c in self.conditions if c.field in names]

    @property
    def has_ts(self) -> bool:
        return bool(self._of("ts"))

    def case_in_scope(self, case: str, stage: int, eco: str | None, eco_class: str | None) -> bool:
        """The case conditions (not ts): does this case, its runs and values stay?"""
        for c in self._of("stage", "case", "eco", "eco_class"):
            if c.field == "stage":
                if c.op in ("=", "!="):
                    ok = (stage in c.values) == (c.op == "=")
                else:
                    ok = bool(_compare(c.op, stage, c.values[0]))
            else:
                ok = c.holds_text({"case": case, "eco": eco, "eco_class": eco_class}[c.field])
            if not ok:
                return False
        return True

    def run_in_scope(self, state: str) -> bool:
        """``state``: the status, ``running`` or ``invalidated`` (see the module doc)."""
        return all(c.holds_text(state) for c in self._of("status"))

    def ts_window(self) -> tuple[int | None, int | None, bool, bool]:
        """(low, high, low inclusive, high inclusive) in µs; None for open ends."""
        lo = hi = None
        lo_inc = hi_inc = True
        for c in self._of("ts"):
            v = c.values[0]
            if c.op in (">", ">="):
                inc = c.op == ">="
                if lo is None or v > lo or (v == lo and not inc):
                    lo, lo_inc = v, inc
            else:
                inc = c.op == "<="
                if hi is None or v < hi or (v == hi and not inc):
                    hi, hi_inc = v, inc
        return lo, hi, lo_inc, hi_inc

    def ts_mask(self, ts: Any) -> Any:
        """Vectorised: which of the µs times ``ts`` (numpy int64) fall in the window."""
        import numpy as np

        ts = np.asarray(ts, np.int64)
        out = np.ones(len(ts), bool)
        for c in self._of("ts"):
            out &= _compare(c.op, ts, c.values[0])
        return out

    def overlaps(self, start: int, end: int) -> bool:
        """Does ``[start, end]`` (a run's activity) meet the ts window?"""
        lo, hi, lo_inc, hi_inc = self.ts_window()
        if lo is not None and (end < lo or (end == lo and not lo_inc)):
            return False
        return not (hi is not None and (start > hi or (start == hi and not hi_inc)))


def parse_where(exprs: Sequence[str] | Where | None) -> Where:
    """``--where`` values -> ``Where`` (all must hold). Raises ``SelectionError``."""
    if isinstance(exprs, Where):
        return exprs
    if isinstance(exprs, str):
        exprs = [exprs]
    return Where(tuple(parse_condition(e) for e in exprs or ()))


# ------------------------------------------------------------------------------ fields


@dataclass(frozen=True)
class FieldSpec:
    """Parsed ``--fields``: per-table name lists and a list for every table."""

    tables: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    common: tuple[str, ...] = ()
    texts: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.tables or self.common)

    def check(self, columns: Mapping[str, Sequence[str]]) -> None:
        """Refuse names that match no column (before anything is written)."""
        for table, names in self.tables.items():
            have = columns.get(table, ())
            for name in names:
                if not fnmatch.filter(have, name):
                    raise SelectionError(
                        f"--fields '{table}:{name}': table {table} has no such column; "
                        f"its columns are {', '.join(have)}"
                    )
        everything = [c for cols in columns.values() for c in cols]
        for name in self.common:
            if not fnmatch.filter(everything, name):
                listing = "; ".join(f"{t}: {', '.join(c)}" for t, c in columns.items())
                raise SelectionError(
                    f"--fields {name!r} matches no column of any table ({listing})"
                )

    def columns_for(self, table: str, have: Sequence[str]) -> list[str]:
        """The columns ``table`` keeps, in order (``have`` when nothing applies)."""
        names = self.tables.get(table)
        if names is None:
            names = self.common
            if not names or not any(fnmatch.filter(have, n) for n in names):
                return list(have)
        out: list[str] = []
        for name in names:
            for col in have if any(ch in name for ch in "*?[") else [name]:
                if col in have and fnmatch.fnmatchcase(col, name) and col not in out:
                    out.append(col)
        return out

    def apply(self, table_name: str, table: pa.Table) -> pa.Table:
        if not self:
            return table
        return table.select(self.columns_for(table_name, table.column_names))

    def to_dict(self) -> dict[str, Any]:
        return {
            "tables": {k: list(v) for k, v in sorted(self.tables.items())},
            "common": list(self.common),
        }


def parse_fields(
    specs: Sequence[str] | Mapping[str, Sequence[str]] | FieldSpec | None,
) -> FieldSpec:
    """``--fields`` values (or ``{"runs": ["case", "run"]}``) -> ``FieldSpec``.

    Raises ``SelectionError`` for an empty list or a table named twice.
    """
    if isinstance(specs, FieldSpec):
        return specs
    if not specs:
        return FieldSpec()
    tables: dict[str, tuple[str, ...]] = {}
    common: list[str] = []
    texts: list[str] = []
    items: list[tuple[str | None, str]]
    if isinstance(specs, Mapping):
        items = [(t, ",".join(cols)) for t, cols in specs.items()]
    else:
        items = []
        for spec in [specs] if isinstance(specs, str) else specs:
            head, sep, rest = spec.partition(":")
            items.append((head.strip(), rest) if sep and head.strip() in TABLES else (None, spec))
    for table, text in items:
        names = tuple(n.strip() for n in text.split(","))
        shown = f"{table}:{text}" if table else text
        texts.append(shown)
        if not names or any(not n for n in names):
            raise SelectionError(
                f"--fields {shown!r} has an empty column name; write 'runs:case,run,status' "
                "or 'case,run,value'"
            )
        if table is None:
            common.extend(n for n in names if n not in common)
        elif table not in TABLES:
            raise SelectionError(f"--fields names table {table!r}; tables are {', '.join(TABLES)}")
        elif table in tables:
            raise SelectionError(f"--fields names table {table} twice; list its columns once")
        else:
            tables[table] = names
    return FieldSpec(tables, tuple(common), tuple(texts))
