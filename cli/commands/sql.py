"""sql: read-only DuckDB SQL over the projections at a log position."""

from __future__ import annotations

import sys

import click

from cli.options import as_of_option, open_ledger
from cli.output import echo_json, table


@click.command()
@click.argument("query_text", metavar="QUERY")
@click.option("--study", "-s", default=None, help="Only this study (default: every study).")
@as_of_option
@click.option("--json", "as_json", is_flag=True, help='Print {"columns": [...], "rows": [[...]]}.')
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (the export's spelling and safety).")
@click.option(
    "--no-cache",
    is_flag=True,
    help="Fold the log; neither read nor write the table cache (LEDGER_CACHE_DIR=off: always).",
)
@click.pass_context
def sql(
    ctx: click.Context,
    query_text: str,
    study: str | None,
    as_of: int | None,
    as_json: bool,
    as_csv: bool,
    no_cache: bool,
) -> None:
    """Run a read-only SQL query (DuckDB) over the tables cases, runs, metrics and events.

    cases, runs and metrics are the export's tables and columns (values in force);
    events has seq, ts, type, study, case, run, id. CASE is an SQL keyword: write the
    column as "case". Rows come in the query's order, and sorted by every column when
    it has no ORDER BY, so the same query gives the same bytes. Statements that write,
    ATTACH, COPY, or read files (read_csv, read_parquet, ...) are refused. Needs
    DuckDB: pip install 'results-ledger[sql]'.

    The built tables are kept on disk (never in the ledger) for the next command at the
    same log position: in $LEDGER_CACHE_DIR, else $XDG_CACHE_HOME/results-ledger/tables,
    else ~/.cache/results-ledger/tables, at most LEDGER_CACHE_MAX_BYTES (1 GiB), least
    recently used out first. LEDGER_CACHE_DIR=off or --no-cache turns it off.

    \b
    Example:
      ledger sql "SELECT status, count(*) AS runs FROM runs GROUP BY status"
      ledger sql "SELECT run, value FROM metrics WHERE metric = 'loss' AND step IS NULL ORDER BY value LIMIT 5" --json
      ledger sql 'SELECT type, count(*) AS n FROM events GROUP BY type' --as-of 100 --csv
    """
    from projections.sql import query, result_json, result_rows

    if as_json and as_csv:
        raise click.UsageError("--json and --csv exclude each other")
    ledger = open_ledger(ctx)
    result = query(ledger, query_text, study=study, as_of=as_of, cache=not no_cache)
    _warn_unwritable()
    if as_json:
        echo_json(result_json(result))
    elif as_csv:
        from projections.export.csv_writer import write_csv
        from projections.export.tables import csv_ready

        sys.stdout.flush()
        out = sys.stdout.buffer
        write_csv(csv_ready(result), out)
        out.flush()
    else:
        click.echo(table(result.column_names, result_rows(result)))


def _warn_unwritable() -> None:
    """Say once (a command is one process) that the cache folder could not be written:
    the answer is right, but the next command will fold the log again. The library
    stays silent; the command is where a person reads stderr."""
    from projections.disk_cache import unwritable

    for folder in unwritable():
        click.echo(
            f"warning: table cache {folder} is not writable; not caching "
            "(set LEDGER_CACHE_DIR to another folder, or to off)",
            err=True,
        )
