"""resume: what a restarted runner still has to do."""

from __future__ import annotations

import click

from cli.options import json_option, open_ledger, study_option
from cli.output import echo_json, table


@click.command()
@study_option()
@click.option(
    "--close-interrupted",
    is_flag=True,
    help="Also close provably dead runs with status 'interrupted' (writes to the ledger).",
)
@json_option
@click.pass_context
def resume(ctx: click.Context, study: str, close_interrupted: bool, as_json: bool) -> None:
    """Classify a study's runs (completed, failed, interrupted, running) and list the
    cases still pending.

    A started, unfinished run is running while its lease is fresh or its process is
    alive on this host; otherwise it is interrupted. Read-only unless
    --close-interrupted is given.

    \b
    Example:
      ledger resume --study sweep-1 --json
    """
    from ledger.plan import build_plan, close_interrupted_runs
    from ledger.summary import study_states

    ledger = open_ledger(ctx, readonly=not close_interrupted)
    state = study_states(ledger, study=study).get(study)
    from ledger.summary import StudyState

    plan = build_plan(ledger, study, state or StudyState(study=study))
    if close_interrupted and plan.to_close:
        close_interrupted_runs(ledger, study, plan)
    if as_json:
        echo_json(plan.to_dict())
        return
    rows = [
        [
            kind,
            len(getattr(plan, kind)),
            ", ".join(getattr(plan, kind)[:8]) + (" ..." if len(getattr(plan, kind)) > 8 else ""),
        ]
        for kind in ("completed", "failed", "interrupted", "running", "pending")
    ]
    click.echo(table(["", "count", "ids"], rows, right={1}))
    if plan.to_close and not close_interrupted:
        click.echo(
            f"{len(plan.to_close)} run(s) can be closed as interrupted: "
            "rerun with --close-interrupted (or call Recorder.resume())",
            err=True,
        )
