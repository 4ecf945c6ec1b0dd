"""export, exports: write deterministic snapshot folders; list the export journal."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from cli.commands.checkpoint import reported_warnings
from cli.options import as_of_option, json_option, open_ledger
from cli.output import echo_json, table

FORMAT_CHOICES = ["json", "csv", "parquet", "xlsx", "all"]


class _Bar:
    """A one-line progress bar on stderr, drawn only when stderr is a terminal."""

    def __init__(self) -> None:
        self.width = 24
        self.drawn = False

    def __call__(self, done: int, total: int, label: str) -> None:
        filled = self.width * done // max(total, 1)
        line = f"\rexport [{'#' * filled}{'.' * (self.width - filled)}] {done}/{total} {label}"
        sys.stderr.write(line[:120].ljust(80))
        sys.stderr.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            sys.stderr.write("\n")
            sys.stderr.flush()


@click.command()
@click.option("--study", "-s", default=None, help="The study to export.")
@click.option("--all-studies", is_flag=True, help="Export every study, one folder each.")
@click.option(
    "--format",
    "formats",
    multiple=True,
    type=click.Choice(FORMAT_CHOICES),
    help="json (study.json), csv, parquet, xlsx (report.xlsx) or all; repeatable. Default: all.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="The folder the snapshot folders go into (created if missing).",
)
@as_of_option
@click.option(
    "--fields",
    multiple=True,
    metavar="SPEC",
    help="Columns to keep, in order: 'runs:case,run,status' for one table, or "
    "'case,run,value' for every table that has them; globs like 'param.*'. Repeatable.",
)
@click.option(
    "--where",
    multiple=True,
    metavar="EXPR",
    help="Keep rows where EXPR holds on the row's fields (all must): stage, status, case, "
    "eco, eco_class with = or != (globs, comma lists); stage with < <= > >=; ts>=TIME, "
    "ts<TIME. Fields, not params (the analytics commands' --where filters params). "
    "Repeatable.",
)
@click.option(
    "--redact",
    "extra_redact",
    multiple=True,
    metavar="PATTERN",
    help="Also redact values under keys or paths matching PATTERN (fnmatch, "
    "case-insensitive), e.g. '*_host' or '$.config.db.*'. Repeatable.",
)
@click.option(
    "--no-redact", is_flag=True, help="Write configs and params as stored (no redaction)."
)
@click.option(
    "--csv-raw",
    is_flag=True,
    help="Write CSV cells as stored, without the ' that keeps a spreadsheet from running "
    "a cell starting with = + - @ as a formula: for programs that join CSV ids with "
    "Parquet or the ledger. Never open such a file in a spreadsheet. Recorded in the "
    "manifest (csv_raw); report.xlsx stays protected.",
)
@json_option
@click.pass_context
def export(
    ctx: click.Context,
    study: str | None,
    all_studies: bool,
    formats: tuple[str, ...],
    out: str,
    as_of: int | None,
    fields: tuple[str, ...],
    where: tuple[str, ...],
    extra_redact: tuple[str, ...],
    no_redact: bool,
    csv_raw: bool,
    as_json: bool,
) -> None:
    """Write a study's snapshot folder: manifest, study.json, tables, report.

    The folder (OUT/<study's safe name>) holds manifest.json (ledger id, as-of seq,
    head hash, versions, every file's SHA-256 and row count, what was redacted),
    study.json with --format json, cases/runs/metrics as CSV and Parquet with csv and
    parquet, and report.xlsx with xlsx. The same ledger prefix gives the same bytes;
    an existing snapshot is replaced atomically. Every export is recorded in the
    ledger's export journal (see `ledger exports`); the event log is not touched.

    \b
    Example:
      ledger export --study chip --format all --out exports
      ledger export --all-studies --format csv --format parquet --out exports --as-of 1200
      ledger export --study sweep --format csv --out x --where 'status=completed' \\
          --where 'stage>=1' --fields 'runs:case,run,status,wall_s'
      ledger export --study sweep --format csv --csv-raw --out for-a-script
    """
    from projections.export.api import export_all, export_study

    if (study is None) == (not all_studies):
        raise click.UsageError("give either --study S or --all-studies")
    ledger = open_ledger(ctx, readonly=False)
    bar = _Bar() if sys.stderr.isatty() else None
    options: dict[str, Any] = {
        "formats": formats or ("all",),
        "as_of": as_of,
        "fields": fields,
        "where": where,
        "redact": not no_redact,
        "extra_redact": extra_redact,
        "progress": bar,
        "csv_raw": csv_raw,
    }
    try:
        with reported_warnings():
            if study is not None:
                results = [export_study(ledger, study, out, **options)]
            else:
                results = list(export_all(ledger, out, **options).values())
    finally:
        if bar is not None:
            bar.close()
    if as_json:
        echo_json(
            {
                "exports": [
                    dict(m, path=os.fspath(m.path), manifest_sha256=m.sha256) for m in results
                ]
            }
        )
        return
    if not results:
        click.echo(f"no study existed at seq {as_of}; nothing exported")
    for m in results:
        names = ", ".join(sorted(m["files"]))
        click.echo(
            f"exported {m['study']!r} as of seq {m['as_of']} to {os.fspath(m.path)}: "
            f"{names}, manifest.json (sha256 {m.sha256[:16]}…)"
        )


@click.command()
@click.option("--study", "-s", default=None, help="Only this study's exports.")
@json_option
@click.pass_context
def exports(ctx: click.Context, study: str | None, as_json: bool) -> None:
    """List the export journal: every export made from this ledger, oldest first.

    Each entry holds the time it was made, the study, the as-of seq and head hash, the
    formats, the SHA-256 of the manifest written and the folder. Compare the hash with
    `sha256sum DIR/manifest.json` to check a snapshot is the one that was exported.

    \b
    Example:
      ledger exports
      ledger exports --study chip --json
    """
    from projections.export.api import list_exports

    ledger = open_ledger(ctx)
    with reported_warnings():
        entries = list_exports(ledger, study)
    if as_json:
        echo_json({"exports": entries})
        return
    if not entries:
        click.echo("no exports recorded yet")
        return
    rows = [
        [
            e.get("time"),
            e.get("study"),
            e.get("as_of"),
            ",".join(e.get("formats") or []),
            str(e.get("manifest_sha256", ""))[:16],
            e.get("path"),
        ]
        for e in entries
    ]
    click.echo(table(["time", "study", "as_of", "formats", "manifest", "path"], rows))
