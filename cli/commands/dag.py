"""dag: a study's cases and the ECO lineage between them, as of any seq."""

from __future__ import annotations

import click

from cli.commands.checkpoint import reported_warnings
from cli.options import as_of_option, json_option, open_ledger, study_option
from cli.output import echo_json


@click.command()
@study_option(required=False)
@as_of_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "dot", "mermaid"]),
    default="text",
    show_default=True,
    help="text: an indented tree; dot: Graphviz; mermaid: a Mermaid flowchart.",
)
@json_option
@click.pass_context
def dag(ctx: click.Context, study: str | None, as_of: int | None, fmt: str, as_json: bool) -> None:
    """Draw a study's case DAG: every case with its stage and ECO, parent -> child.

    A case with several parents is drawn once, under the first parent, and named with
    a note under the others. --study may be left out when the ledger holds one study.

    \b
    Example:
      ledger dag --study chip
      ledger dag --study chip --as-of 120 --json
      ledger dag --study chip --format dot | dot -Tsvg > dag.svg
    """
    from projections.dag import render_dot, render_mermaid, render_text
    from projections.study import load_study, resolve_study

    ledger = open_ledger(ctx)
    with reported_warnings():
        view = load_study(ledger, resolve_study(ledger, study), as_of)
    if as_json:
        echo_json(view.dag_dict())
        return
    if fmt == "dot":
        click.echo(render_dot(view.dag))
    elif fmt == "mermaid":
        click.echo(render_mermaid(view.dag))
    else:
        nodes = view.dag.cases()
        stages = view.dag.stages()
        span = (
            f"stages {stages[0]}-{stages[-1]}"
            if len(stages) > 1
            else f"stage {stages[0]}"
            if stages
            else "no cases"
        )
        click.echo(f"study {view.study} as of seq {view.as_of}: {len(nodes)} cases, {span}")
        if nodes:
            click.echo(render_text(view.dag))
