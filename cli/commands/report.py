"""report: one self-contained HTML file to look at a study at one seq."""

from __future__ import annotations

import os

import click

from cli.commands.checkpoint import reported_warnings
from cli.options import as_of_option, json_option, open_ledger, study_option
from cli.output import echo_json


@click.command()
@study_option(required=False)
@as_of_option
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False),
    help="The HTML file to write (replaced whole when it exists).",
)
@click.option(
    "--agg",
    type=click.Choice(["mean", "median", "best", "last"]),
    default="mean",
    show_default=True,
    help="How a case's runs are aggregated for its ranking (as `ledger rank --agg`).",
)
@click.option(
    "--require",
    multiple=True,
    metavar="EXPR",
    help="A constraint like 'drc_errors==0': cases breaking it are marked infeasible and "
    "left out of the rankings. Repeatable.",
)
@click.option(
    "--curve-cases",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Draw the curves of this many cases (the best-ranked).",
)
@json_option
@click.pass_context
def report(
    ctx: click.Context,
    study: str | None,
    as_of: int | None,
    out: str,
    agg: str,
    require: tuple[str, ...],
    curve_cases: int,
    as_json: bool,
) -> None:
    """Write one self-contained HTML file to look at a study: the case DAG, rankings
    per stage, the Pareto front, curves, statistics, ECO effects, failures, the search
    history and parameter importance, the runs and their provenance.

    Everything is inline (no URL is loaded) and the charts are SVG that read without
    JavaScript. The same ledger prefix and options give the same bytes, so a report
    made with --as-of SEQ reproduces the one made at that seq; it names the seq and the
    chain hash there, as an export's manifest does. --study may be left out when the
    ledger holds one study.

    \b
    Example:
      ledger report --study chip --out chip.html
      ledger report --study chip --as-of 120 --require drc_errors==0 --out chip-120.html
    """
    from projections.report import write

    ledger = open_ledger(ctx)
    with reported_warnings():
        info = write(
            ledger, study, out, as_of, agg=agg, require=tuple(require), curve_cases=curve_cases
        )
    if as_json:
        echo_json(info._asdict())
        return
    click.echo(
        f"report of study {info.study} as of seq {info.as_of} "
        f"(head {info.head_hash[:16]}): {os.path.abspath(info.path)} ({info.bytes:,} bytes)"
    )
