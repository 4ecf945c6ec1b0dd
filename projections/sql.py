"""``ledger sql``: read-only DuckDB SQL over a ledger's projections at one log position.

Four tables, each an Arrow table handed to DuckDB as it is (DuckDB scans the Arrow
buffers; no row goes through Python on the way in):

- ``cases``, ``runs``, ``metrics``: the export's tables and columns, built by the
  export's own builders (:mod:`projections.export.tables`) — values in force, secrets
  redacted as in an export. Over several studies the tables are stacked; a param column
  whose type differs between studies is text there.
- ``events``: one row per event up to ``as_of``: ``seq, ts, type, study, case, run,
  id``. ``case`` is the event's case, or for an event of a run (metrics, finish,
  artifact, invalidation) the case of that run; ``run`` is null for events of no run.

A table is built only when the query names it, and once per log position: the tables
are kept, keyed by the chain hash at ``as_of``, in this process
(:mod:`projections.table_cache`) and on disk outside the ledger for later processes
(:mod:`projections.disk_cache`), so the next query at the same position — in this
process or the next ``ledger sql`` command — reads them instead of folding the log.

Read-only by construction, not by string matching: DuckDB runs in memory with
``enable_external_access = false`` (no file, no URL, no extension load: ``read_csv``,
``COPY``, ``ATTACH`` fail inside DuckDB) and its configuration locked, and the statement
is checked by DuckDB's own parser to be one ``SELECT`` (``WITH``, ``DESCRIBE``,
``SUMMARIZE`` and ``SHOW`` are SELECTs) before anything runs.

Deterministic: DuckDB runs on one thread with the time zone set to UTC, and a query
without a top-level ``ORDER BY`` has its rows sorted by every column (``ORDER BY
ALL``), so the same ledger prefix and query give the same rows in the same order.

Errors (``LedgerError``): ``SqlError`` (DuckDB refused the query: its message, on one
line), ``SqlRefused`` (a statement that writes, attaches, loads or touches files),
``SqlUnavailable`` (DuckDB is not installed), and the projections' ``UnknownStudy`` and
``AsOfError``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ledger import Ledger
from projections.errors import SqlError as SqlError
from projections.errors import SqlRefused as SqlRefused
from projections.errors import SqlUnavailable as SqlUnavailable

from . import disk_cache
from .base import UnknownStudy, build_many, resolve_as_of
from .table_cache import TableCache

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped]

    from .study import StudyView

__all__ = [
    "EVENTS_COLUMNS",
    "TABLES",
    "SqlError",
    "SqlRefused",
    "SqlUnavailable",
    "TABLE_CACHE",
    "events_table",
    "query",
    "result_json",
    "result_rows",
    "tables",
]

TABLES = ("cases", "runs", "metrics", "events")
TABLE_CACHE = TableCache()
"""The tables of recent queries in this process (``TABLE_CACHE.clear()`` frees them;
``TABLE_CACHE.max_bytes`` bounds them)."""
EVENTS_COLUMNS = ("seq", "ts", "type", "study", "case", "run", "id")
_ALLOWED = "one SELECT statement (WITH, DESCRIBE, SUMMARIZE and SHOW are fine)"


def query(
    ledger: Ledger,
    sql: str,
    study: str | None = None,
    as_of: int | None = None,
    *,
    cache: bool = True,
) -> pa.Table:
    """Run ``sql`` over the projections of ``study`` (default: every study) after event
    ``as_of`` (default: the head) and return the result as an Arrow table. ``cache``:
    reuse the tables of the same log prefix kept by this process or on disk by an
    earlier one, and keep those built (see ``tables``); False always folds the log.

    Raises ``SqlRefused`` before building anything when the statement is not one
    SELECT, ``SqlError`` with DuckDB's message when DuckDB refuses it (a file read
    included), ``SqlUnavailable``, ``UnknownStudy`` and ``AsOfError``.
    """
    duckdb = _duckdb()
    limit = resolve_as_of(ledger, as_of)
    if study is not None and not ledger.has_study(study):
        raise UnknownStudy(study, ledger.studies())
    con = _connect(duckdb)
    try:
        ast = _check(con, duckdb, sql)
        wanted = _named_tables(ast)
        for name, table in tables(
            ledger, study=study, as_of=limit, only=wanted, cache=cache
        ).items():
            con.register(name, table)
        rel = _run(con, duckdb, sql)
        if rel is None:  # DuckDB ran it as something that returns no rows
            raise SqlRefused(f"ledger sql runs {_ALLOWED}; this statement returns no rows")
        if not _has_order_by(ast):
            rel = rel.order("ALL")
        return _fetch(rel, duckdb)
    finally:
        con.close()


# -- DuckDB ---------------------------------------------------------------------------


def _duckdb() -> Any:
    try:
        import duckdb
    except ImportError as exc:
        raise SqlUnavailable(exc) from None
    return duckdb


def _connect(duckdb: Any) -> Any:
    """An in-memory DuckDB that cannot reach the file system, the network or extensions,
    on one thread (the same rows in the same order every time) and in UTC; then the
    configuration is locked so a query cannot undo any of it."""
    con = duckdb.connect(
        ":memory:",
        config={
            "enable_external_access": False,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "threads": 1,
        },
    )
    try:
        con.execute("SET TimeZone = 'UTC'")
    except duckdb.Error:
        pass  # no ICU extension: DuckDB then shows every time in UTC anyway
    con.execute("SET lock_configuration = true")
    return con


def _one_line(exc: BaseException) -> str:
    """DuckDB's message without the ``LINE 1: ...`` excerpt and its caret line."""
    lines = []
    for line in str(exc).splitlines():
        if line.startswith("LINE "):
            break
        if line.strip():
            lines.append(line.strip())
    return " ".join(lines) or type(exc).__name__


def _error(exc: BaseException, duckdb: Any) -> SqlError:
    text = _one_line(exc)
    if isinstance(exc, duckdb.PermissionException):
        return SqlRefused(f"ledger sql cannot read or write files, URLs or extensions: {text}")
    return SqlError(text)


def _check(con: Any, duckdb: Any, sql: str) -> dict[str, Any] | None:
    """Refuse anything but one SELECT, by DuckDB's parser; return the parsed tree (None
    when DuckDB cannot serialise it, as for a PIVOT)."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise _error(exc, duckdb) from None
    if len(statements) != 1:
        raise SqlRefused(f"ledger sql runs {_ALLOWED}; this text holds {len(statements)}")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        name = getattr(kind, "name", str(kind)).replace("_STATEMENT", "")
        raise SqlRefused(
            f"ledger sql is read-only and refuses {name} statements; it runs {_ALLOWED}"
        )
    try:
        rows = con.execute("SELECT json_serialize_sql(?::VARCHAR)", [sql]).fetchall()
        tree = json.loads(rows[0][0])
    except (duckdb.Error, TypeError, ValueError):
        return None
    if tree.get("error") or not tree.get("statements"):
        return None
    return tree


def _named_tables(tree: dict[str, Any] | None) -> set[str]:
    """The names the query reads as tables (every one of ours when unknown)."""
    if tree is None:
        return set(TABLES)
    found: set[str] = set()
    stack: list[Any] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("type") == "BASE_TABLE" and isinstance(node.get("table_name"), str):
                found.add(node["table_name"].lower())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found & set(TABLES)


def _has_order_by(tree: dict[str, Any] | None) -> bool:
    if tree is None:
        return False
    node = tree["statements"][0].get("node") or {}
    return any(m.get("type") == "ORDER_MODIFIER" for m in node.get("modifiers") or [])


def _run(con: Any, duckdb: Any, sql: str) -> Any:
    try:
        return con.sql(sql)
    except duckdb.Error as exc:
        raise _error(exc, duckdb) from None


def _fetch(rel: Any, duckdb: Any) -> pa.Table:
    try:
        for name in ("to_arrow_table", "fetch_arrow_table", "arrow"):  # DuckDB 2, 1.x
            method = getattr(rel, name, None)
            if method is not None:
                table = method()
                return table if hasattr(table, "schema") else table.read_all()
    except duckdb.Error as exc:
        raise _error(exc, duckdb) from None
    raise SqlError("this DuckDB cannot return Arrow tables; upgrade it (pip install -U duckdb)")


# -- the tables -----------------------------------------------------------------------


def tables(
    ledger: Ledger,
    *,
    study: str | None = None,
    as_of: int | None = None,
    only: Iterable[str] = TABLES,
    cache: bool = True,
) -> dict[str, pa.Table]:
    """The query's tables (those of ``only``) as Arrow tables, for ``study`` or every
    study that exists at ``as_of``.

    With ``cache``, tables built before for the same log prefix (its chain hash at
    ``as_of``), position and study are served instead of folding the log again: from
    ``TABLE_CACHE`` (this process, :mod:`projections.table_cache`), else from the disk
    cache (an earlier process, :mod:`projections.disk_cache`; off with
    ``LEDGER_CACHE_DIR=off``); the tables are the same either way."""
    limit = resolve_as_of(ledger, as_of)
    wanted = [name for name in TABLES if name in set(only)]
    if not cache:
        return _build(ledger, study, limit, set(wanted))
    key = (ledger.hash_at(limit), limit, study)
    out = TABLE_CACHE.get(key, wanted)
    disk = disk_cache.from_env()
    if disk is not None:
        found = _from_disk(disk, ledger, key, [n for n in wanted if n not in out])
        TABLE_CACHE.put(key, found)
        out.update(found)
    missing = {name for name in wanted if name not in out}
    if missing:
        built = _build(ledger, study, limit, missing)
        if ledger.hash_at(limit) == key[0]:  # the log built from is the one keyed
            TABLE_CACHE.put(key, built)
            if disk is not None:
                for name, table in built.items():
                    disk.put(_disk_key(ledger, key, name), table)
        out.update(built)
    return {name: out[name] for name in wanted}


TABLES_FORMAT = 2
"""Bump when a table's columns or values change for the same log: the disk cache
outlives the code that wrote it, and the key carries this (and the package version)."""


def _disk_key(ledger: Ledger, key: tuple[str, int, str | None], name: str) -> list[Any]:
    """The disk level's key: the in-process key plus what a file on disk must also
    match — the tables' format and code version (a file outlives an upgrade) and the
    ledger id (a ledger rebuilt at the same path must not share files by accident)."""
    return [TABLES_FORMAT, _version(), ledger.ledger_id, *key, name]


@functools.cache
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("results-ledger")
    except PackageNotFoundError:
        return "unknown"


def _from_disk(
    disk: disk_cache.DiskCache,
    ledger: Ledger,
    key: tuple[str, int, str | None],
    names: Iterable[str],
) -> dict[str, pa.Table]:
    """The tables of ``names`` a previous process left on disk for this key; a file
    whose columns are not this code's is dropped and rebuilt."""
    out = {}
    for name in names:
        accept = functools.partial(_has_columns, _columns(name))
        table = disk.get(_disk_key(ledger, key, name), accept)
        if table is not None:
            out[name] = table
    return out


def _columns(name: str) -> Sequence[str]:
    """The columns a table of ``name`` starts with (a cases table adds its params)."""
    from projections.export.tables import CASES_COLUMNS, METRICS_COLUMNS, RUNS_COLUMNS

    known = {"cases": CASES_COLUMNS, "runs": RUNS_COLUMNS, "metrics": METRICS_COLUMNS}
    return known.get(name, EVENTS_COLUMNS)


def _has_columns(leading: Sequence[str], schema: Any) -> bool:
    return tuple(schema.names[: len(leading)]) == tuple(leading)


def _build(ledger: Ledger, study: str | None, limit: int, wanted: set[str]) -> dict[str, pa.Table]:
    """The tables of ``wanted``, built. The projections and the metric events' times
    (the metrics table's ``ts``, as in an export) come from one read of the log;
    ``metrics`` alone skips the cases' and runs' selection and redaction, which it does
    not use (the columns are the same)."""
    from projections.export.tables import CASES_COLUMNS, EventTimes

    out: dict[str, pa.Table] = {}
    if wanted & {"cases", "runs", "metrics"}:
        times = EventTimes()
        views = _views(ledger, study, limit, times)
        for name, build in _builders(wanted, times).items():
            parts = [build(v) for v in views] or [build(_empty_view())]
            out[name] = _stack(parts, CASES_COLUMNS if name == "cases" else None)
    if "events" in wanted:
        out["events"] = events_table(ledger, study=study, as_of=limit)
    return out


def _builders(wanted: set[str], times: Any) -> dict[str, Callable[[StudyView], pa.Table]]:
    """Per wanted table of ``cases, runs, metrics`` (in that order), how to build it from
    a study's view: through ``collect`` (once per view) when cases or runs are wanted,
    else the metric columns alone."""
    from projections.export.tables import (
        cases_table,
        collect,
        metric_columns,
        metrics_table,
        metrics_table_of,
        runs_table,
    )

    def event_times(view: StudyView) -> Callable[[], Any]:
        return functools.partial(times.of, view.study)

    if not wanted & {"cases", "runs"}:
        return {
            "metrics": lambda v: metrics_table_of(
                v.study, metric_columns(v, event_times=event_times(v))
            )
        }

    @functools.cache
    def records(view: StudyView) -> Any:
        return collect(view, event_times=event_times(view))

    builders = {"cases": cases_table, "runs": runs_table, "metrics": metrics_table}
    return {
        name: (lambda v, build=build: build(records(v)))  # type: ignore[misc]
        for name, build in builders.items()
        if name in wanted
    }


def _views(ledger: Ledger, study: str | None, limit: int, times: Any) -> list[StudyView]:
    """One view per study. For one study, its own events (through the study index);
    for all, one pass that builds every study's projections together. ``times`` sees
    every frame of that read (the metric events' times)."""
    from .study import StudyView, builtin_projections, load_study

    if study is not None:
        checkpoints = ledger.studies() == [study]
        return [load_study(ledger, study, limit, checkpoints=checkpoints, on_frame=times)]
    dag, runs, metrics, selections = build_many(
        ledger, builtin_projections(), limit, on_frame=times
    )
    views = [
        StudyView(s, limit, dag, runs, metrics, selections)  # type: ignore[arg-type]
        for s in ledger.studies()
    ]
    return [v for v in views if v.dag.info is not None]  # created after as_of: absent


def _empty_view() -> StudyView:
    """The view of an empty study, so an empty ledger still has typed tables."""
    from projections.study import StudyView, builtin_projections

    dag, runs, metrics, selections = builtin_projections()
    return StudyView("", 0, dag, runs, metrics, selections)  # type: ignore[arg-type]


def _stack(parts: Sequence[pa.Table], leading: Sequence[str] | None) -> pa.Table:
    """Tables of several studies as one. The cases tables' param columns differ by
    study: their union, sorted, after the fixed columns; a param whose type differs
    between studies becomes text (Arrow's cast), one absent from a study is null."""
    import pyarrow as pa  # type: ignore[import-untyped]

    if len(parts) == 1:
        return parts[0]
    if leading is None:
        return pa.concat_tables(parts)
    types: dict[str, set[Any]] = {}
    for t in parts:
        for f in t.schema:
            types.setdefault(f.name, set()).add(f.type)
    extra = sorted(n for n in types if n not in leading)
    names = [*leading, *extra]
    target = {
        n: (next(iter(types[n] - {pa.null()})) if len(types[n] - {pa.null()}) == 1 else None)
        for n in names
    }
    fields = [pa.field(n, target[n] or pa.string(), nullable=n in extra) for n in names]
    if not extra:
        fields = [parts[0].schema.field(n) for n in names]
    schema = pa.schema(fields)
    aligned = []
    for t in parts:
        cols = []
        for f in schema:
            if f.name in t.column_names:
                col = t.column(f.name)
                cols.append(col if col.type == f.type else col.cast(f.type))
            else:
                cols.append(pa.nulls(t.num_rows, f.type))
        aligned.append(pa.table(cols, schema=schema))
    return pa.concat_tables(aligned)


def events_table(ledger: Ledger, *, study: str | None = None, as_of: int | None = None) -> pa.Table:
    """``seq, ts, type, study, case, run, id`` of every event up to ``as_of`` (of
    ``study`` when given), in seq order; ``ts`` as ``timestamp[us, UTC]``."""
    import pyarrow as pa  # type: ignore[import-untyped]

    limit = resolve_as_of(ledger, as_of)
    cols: dict[str, list[Any]] = {name: [] for name in EVENTS_COLUMNS}
    seq, ts, typ, stu, case, run, ids = cols.values()
    case_of_run: dict[tuple[str, str], str] = {}
    for batch in ledger.read_batches(0, limit, study=study):
        for env in batch:
            ev = env.event
            r = getattr(ev, "run", None)
            c = getattr(ev, "case", None)
            if r is not None:
                if c is not None:
                    case_of_run[(ev.study, r)] = c
                else:
                    c = case_of_run.get((ev.study, r))
            seq.append(env.seq)
            ts.append(env.ts)
            typ.append(ev.TYPE)
            stu.append(ev.study)
            case.append(c)
            run.append(r)
            ids.append(env.id)
    text = pa.string()
    schema = pa.schema(
        [
            pa.field("seq", pa.int64(), nullable=False),
            pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
            pa.field("type", text, nullable=False),
            pa.field("study", text, nullable=False),
            pa.field("case", text),
            pa.field("run", text),
            pa.field("id", text, nullable=False),
        ]
    )
    return pa.table([pa.array(cols[f.name], f.type) for f in schema], schema=schema)


# -- results as data ------------------------------------------------------------------


def result_rows(table: pa.Table) -> list[list[Any]]:
    """The rows of a result as JSON-able lists, in order: times as RFC 3339 (``Z`` and
    microseconds when zoned, as ``ledger log`` prints them), whole decimals (DuckDB's
    HUGEINT sums) as ints and others as floats, bytes as hex; NaN and infinities stay
    floats (the JSON writer spells them)."""
    columns = [[_plain(v) for v in col.to_pylist()] for col in table.columns]
    return [list(row) for row in zip(*columns)] if columns else []


def result_json(table: pa.Table) -> dict[str, Any]:
    """``{"columns": [...], "rows": [[...], ...]}``, what ``ledger sql --json`` prints."""
    return {"columns": list(table.column_names), "rows": result_rows(table)}


def _plain(value: Any) -> Any:
    from datetime import date, datetime, time, timedelta, timezone
    from decimal import Decimal

    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.isoformat(timespec="microseconds")
        utc = value.astimezone(timezone.utc).replace(tzinfo=None)
        return utc.isoformat(timespec="microseconds") + "Z"
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if all(isinstance(x, tuple) and len(x) == 2 for x in value) and value:
            return {str(k): _plain(v) for k, v in value}  # an Arrow map
        return [_plain(v) for v in value]
    return str(value)
