"""check: judge each run's final metrics against an OpenROAD rules file; a CI gate."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import click

from cli.commands.checkpoint import reported_warnings
from cli.options import as_of_option, json_option, open_ledger, study_option
from cli.output import echo_json, fmt, table


def _time_unit(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    from ledger.importers.orfs_time import parse_time_unit

    text = value.strip()
    if text[:1].isalpha():
        text = "1" + text
    try:
        parse_time_unit(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return text


@click.command()
@study_option(required=False)
@click.option(
    "--rules",
    "rules_file",
    required=True,
    type=click.Path(dir_okay=False),
    help="An OpenROAD rules JSON file, either form.",
)
@click.option("--case", default=None, help="Only this case's runs.")
@click.option("--run", "runs", multiple=True, metavar="RUN", help="Only this run (repeatable).")
@click.option(
    "--time-unit",
    default=None,
    metavar="UNIT",
    callback=_time_unit,
    help="The rules' time unit (ns, ps): convert each run's timing metrics from its own "
    "unit first (read from the run, or assumed from its platform).",
)
@as_of_option
@json_option
@click.pass_context
def check(
    ctx: click.Context,
    study: str | None,
    rules_file: str,
    case: str | None,
    runs: tuple[str, ...],
    time_unit: str | None,
    as_of: int | None,
    as_json: bool,
) -> None:
    """Check each completed run's final metrics against a rules file; exit 1 when any
    run fails a rule.

    Reads both OpenROAD forms: {"<field>": {"value", "compare", "level"?}} and the older
    {"rules": [{"field", "value", "compare"}]}. A failed rule of level "warning" warns
    without failing the run; a rule on a metric the run lacks (or with values that cannot
    be compared) is not evaluable, never a pass. Runs that did not complete, and
    invalidated runs, are listed as not checked. With --json the report is printed even
    when the check fails.

    \b
    Example:
      ledger check --study orfs --case asap7/aes --rules rules-asap7-aes.json
      ledger check --study orfs --rules rules.json --time-unit ps --json
      ledger check --study chip --run "$RUN_ID" --rules rules.json
    """
    from projections.rules_eval import load_rules
    from projections.rules_study import check_study
    from projections.study import load_study, resolve_study

    rules = load_rules(rules_file)
    ledger = open_ledger(ctx)
    with reported_warnings():
        view = load_study(ledger, resolve_study(ledger, study), as_of)
    result = check_study(
        view, rules, case=case, runs=runs, rules_time_unit=time_unit, rules_source=rules_file
    )
    if as_json:
        echo_json(result.to_json())
    else:
        _render(result)
    if not result.report.runs:
        where = f"case {case!r} of study" if case else "study"
        click.echo(
            f"warning: no completed run of {where} {result.study!r} to check"
            + (f" ({len(result.skipped)} not checked)" if result.skipped else ""),
            err=True,
        )
    if not result.ok:
        failing = result.report.counts["fail"]
        click.echo(
            f"error: {failing} run{'s' if failing != 1 else ''} of study {result.study!r} "
            f"failed rules of {rules_file}",
            err=True,
        )
        ctx.exit(1)


def _render(result: Any) -> None:
    report = result.report
    where = f"case {result.case}" if result.case else "all cases"
    if result.only_runs:
        where += f", run{'s' if len(result.only_runs) > 1 else ''} {', '.join(result.only_runs)}"
    unit = (
        f"timing in {report.time_unit} (converted from each run's unit)"
        if report.time_unit
        else "values as recorded"
    )
    click.echo(
        f"study {result.study}, {where}, as of seq {result.as_of}: "
        f"{len(report.rules)} rules from {result.rules_source}, {unit}"
    )
    c = report.counts
    click.echo(
        f"{len(report.runs)} run{'s' if len(report.runs) != 1 else ''} checked: {c['pass']} pass, {c['fail']} fail, "
        f"{c['warn']} warn, {c['not_evaluable']} not evaluable"
        + (f"; {len(result.skipped)} not checked" if result.skipped else "")
    )
    if report.runs:
        rows = [
            [
                rc.run,
                result.case_of.get(rc.run, ""),
                rc.status,
                len(rc.failed),
                len(rc.warnings),
                len(rc.not_evaluable),
                sum(1 for r in rc.results if r.outcome == "pass"),
            ]
            for rc in report.runs
        ]
        click.echo("")
        click.echo(
            table(["run", "case", "status", "failed", "warnings", "not evaluable", "passed"], rows)
        )

    broken = [(rc.run, r) for rc in report.runs for r in rc.failed]
    if broken:
        click.echo("")
        click.echo(f"failed rules ({len(broken)})")
        click.echo(_rule_table(broken))
    warned = [(rc.run, r) for rc in report.runs for r in rc.warnings]
    if warned:
        click.echo("")
        click.echo(f"warnings ({len(warned)})")
        click.echo(_rule_table(warned))

    # not evaluable: grouped by rule and reason (one line per rule, not per run)
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for rc in report.runs:
        for r in rc.not_evaluable:
            groups[(r.field, r.reason or "")].append(rc.run)
    if groups:
        click.echo("")
        click.echo(f"not evaluable ({sum(len(v) for v in groups.values())})")
        rows = [[field, len(runs), reason] for (field, reason), runs in sorted(groups.items())]
        click.echo(table(["rule", "runs", "reason"], rows))

    assumed = [rc for rc in report.runs if rc.time_unit is not None and rc.time_unit.assumed]
    if assumed:
        notes: dict[str, int] = defaultdict(int)
        for rc in assumed:
            notes[rc.time_unit.note] += 1  # type: ignore[union-attr]
        click.echo("")
        click.echo(f"time units assumed ({len(assumed)} runs)")
        for note, n in sorted(notes.items()):
            click.echo(f"  {n} runs: {note}")

    if result.skipped:
        click.echo("")
        click.echo(f"not checked ({len(result.skipped)})")
        click.echo(
            table(
                ["run", "case", "reason"],
                [[s["run"], s["case"], s["reason"]] for s in result.skipped],
            )
        )


def _rule_table(items: list[tuple[str, Any]]) -> str:
    """One row per (run, rule); the run is named on its first row only."""
    rows = []
    previous = None
    for run, r in items:
        rows.append(
            [
                run if run != previous else "",
                r.field,
                fmt(r.actual),
                f"{r.compare} {fmt(r.limit)}",
                r.level,
            ]
        )
        previous = run
    return table(["run", "rule", "actual", "limit", "level"], rows, right=set())
