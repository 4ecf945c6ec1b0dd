"""demo: record a real study live, then show what the ledger makes of it."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from cli.options import ledger_path

if TYPE_CHECKING:
    from ledger import Ledger
    from ledger.demo import Choice


def by_ranking(ledger: Ledger, study: str, stage: int, top: int) -> Choice:
    """The demo runner's survivors: the stage's top cases by the study's objectives."""
    from ledger.demo import Choice
    from projections.study import load_study

    ranking = load_study(ledger, study).rank(stage=stage, top=top)
    return Choice(ranking.survivors(), ranking.policy.to_dict(), ranking.rows[0].score)


@click.command()
@click.option("--study", default="spirals-mlp", show_default=True, help="Study name.")
@click.option("--seed", default=0, show_default=True, help="Data seed.")
@click.option(
    "--out",
    default=None,
    type=click.Path(file_okay=False),
    help="Export the study here at the end (all formats).",
)
@click.option(
    "--report",
    "report_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="Write the study's HTML report to this file at the end.",
)
@click.pass_context
def demo(
    ctx: click.Context, study: str, seed: int, out: str | None, report_path: str | None
) -> None:
    """Train a small numpy network over three stages of changes, recording every epoch
    through the Recorder; then print the DAG, the rankings, the stage summary, verify
    the chain and export the study.

    \b
    Example:
      ledger --ledger demo.ledger demo --out demo-export --report demo-report.html
    """
    from cli.commands.core import status, verify
    from cli.commands.dag import dag
    from cli.commands.rank import rank
    from ledger.demo import run_demo

    path = ledger_path(ctx)

    def say(text: str) -> None:
        click.echo(text)

    click.echo(f"recording study {study!r} into {path} ...")
    run_demo(path, choose=by_ranking, study=study, seed=seed, say=say)
    click.echo("\n$ ledger status")
    ctx.invoke(status)
    click.echo(f"\n$ ledger dag --study {study}")
    ctx.invoke(dag, study=study, fmt="text")
    click.echo(f"\n$ ledger rank --study {study} --top 3")
    ctx.invoke(rank, study=study, top=3)
    click.echo(f"\n$ ledger rank --study {study} --summary")
    ctx.invoke(rank, study=study, summary=True)
    click.echo("\n$ ledger verify")
    ctx.invoke(verify)
    if out is not None:
        from cli.main import LazyGroup

        if LazyGroup._available("export"):
            from cli.commands.export import export

            click.echo(f"\n$ ledger export --study {study} --format all --out {out}")
            ctx.invoke(export, study=study, formats=("all",), out=out)
            click.echo(f"export written under {os.path.abspath(out)}")
        else:
            click.echo("\n(export is not available in this build)")
    if report_path is not None:
        from cli.commands.report import report

        click.echo(f"\n$ ledger report --study {study} --out {report_path}")
        ctx.invoke(report, study=study, out=report_path)
