"""rank: order a study's cases by a policy; list the others with the reason."""

from __future__ import annotations

import click

from cli.commands.analytics import selection_options, selection_query
from cli.commands.checkpoint import reported_warnings
from cli.options import as_of_option, json_option, study_option
from cli.output import echo_json, fmt, table


@click.command()
@study_option(required=False)
@click.option(
    "--stage",
    type=click.IntRange(min=0),
    default=None,
    help="Only this stage's cases (default: all).",
)
@click.option(
    "--metric", "-m", default=None, help="Rank by this metric (default: the study's objectives)."
)
@click.option(
    "--direction",
    type=click.Choice(["min", "max"]),
    default=None,
    help="Needed with --metric when the metric is not an objective.",
)
@click.option("--by", default=None, help="Lexicographic keys, e.g. 'qor:max,area:min'.")
@click.option(
    "--agg",
    type=click.Choice(["mean", "median", "best", "last"]),
    default="mean",
    show_default=True,
    help="Across a case's completed runs.",
)
@click.option(
    "--require",
    "require",
    multiple=True,
    metavar="EXPR",
    help="A constraint on the case's aggregate, e.g. 'drc_errors==0' (repeatable).",
)
@click.option(
    "--top", type=click.IntRange(min=1), default=None, help="Mark the best K as survivors."
)
@click.option("--pareto", is_flag=True, help="Sort by Pareto front first (several keys).")
@click.option(
    "--summary",
    is_flag=True,
    help="Per-stage summary instead: best case, survivors recorded vs ranked.",
)
@selection_options
@as_of_option
@json_option
@click.pass_context
def rank(
    ctx: click.Context,
    study: str | None,
    stage: int | None,
    metric: str | None,
    direction: str | None,
    by: str | None,
    agg: str,
    require: tuple[str, ...],
    top: int | None,
    pareto: bool,
    summary: bool,
    case_globs: tuple[str, ...],
    wheres: tuple[str, ...],
    statuses: tuple[str, ...],
    as_of: int | None,
    as_json: bool,
) -> None:
    """Rank a study's cases by its objectives, a metric, or lexicographic keys.

    Each case scores the aggregate (--agg) of the final values of its completed,
    non-invalidated runs (--status: of these statuses instead). Constraints (--require)
    are checked on the same aggregate first: a case that breaks one is listed as
    unranked, infeasible, with the broken constraint. Ties break by case id. Cases with
    no counted run, a missing metric or a NaN aggregate are listed as unranked with the
    reason. --case and --where rank only the cases they select, as in the analytics
    commands.

    \b
    Example:
      ledger rank --study chip --stage 1 --top 3
      ledger rank --study chip --by qor:max,area:min --require drc_errors==0 --json
      ledger rank --study sweep --metric accuracy --direction max --agg median
      ledger rank --study sweep --where 'batch==64' --status completed --status pruned
    """
    from projections.analytics.rank_report import rank_selected

    if summary and (case_globs or wheres or statuses):
        raise click.UsageError(
            "--summary covers whole stages; drop --case, --where and --status to use it"
        )
    query = selection_query(ctx, study, case_globs, wheres, statuses, as_of)
    with reported_warnings():
        view = query.load()
    policy = view.policy(
        metric=metric,
        direction=direction,
        by=by,
        agg=agg,
        require=require,
        top=top,
        pareto=pareto,
    )
    if summary:
        _summary(view, policy, stage, as_json)
        return
    ranking = rank_selected(query, view, policy, stage)
    if as_json:
        echo_json(ranking.to_dict())
        return
    where = f"stage {stage}" if stage is not None else "all stages"
    click.echo(
        f"study {view.study}, {where}, as of seq {view.as_of}: {policy.text}"
        + _selection_text(ranking.selection)
    )
    headers = ["rank", "case", "stage"] + [k.metric for k in policy.keys] + ["runs"]
    if pareto:
        headers.append("front")
    if top is not None:
        headers.append("survivor")
    rows = []
    for r in ranking.rows:
        scores = r.score if isinstance(r.score, list) else [r.score]
        row = [r.rank, r.case, r.stage, *scores, r.runs]
        if pareto:
            row.append(r.front)
        if top is not None:
            row.append("yes" if r.survivor else "no")
        rows.append(row)
    if rows:
        click.echo(table(headers, rows))
    else:
        click.echo("no case could be ranked")
    if ranking.unranked:
        click.echo("")
        click.echo(f"unranked ({len(ranking.unranked)})")
        click.echo(
            table(
                ["case", "stage", "reason"], [[u.case, u.stage, u.reason] for u in ranking.unranked]
            )
        )


def _selection_text(selection: dict[str, list[str]] | None) -> str:
    if selection is None:
        return ""
    parts = []
    if selection["cases"]:
        parts.append("cases " + ", ".join(selection["cases"]))
    parts += [f"where {w}" for w in selection["where"]]
    parts.append("runs " + "/".join(selection["statuses"]))
    return "; " + "; ".join(parts)


def _summary(view, policy, stage: int | None, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    items = view.stage_summaries(policy)
    if stage is not None:
        items = [s for s in items if s.stage == stage]
    if as_json:
        echo_json(
            {
                "study": view.study,
                "as_of": view.as_of,
                "policy": policy.to_dict(),
                "stages": [s.to_dict() for s in items],
            }
        )
        return
    click.echo(f"study {view.study}, as of seq {view.as_of}: {policy.text}")
    rows = []
    for s in items:
        runs = " ".join(f"{k}={v}" for k, v in s.runs.items()) or "-"
        agree = "-" if s.agree is None else ("yes" if s.agree else "NO")
        rows.append(
            [
                s.stage,
                s.cases,
                runs,
                s.best_case,
                fmt(s.best_score),
                fmt(s.recorded_survivors),
                fmt(s.ranking_survivors),
                agree,
            ]
        )
    click.echo(
        table(
            [
                "stage",
                "cases",
                "runs",
                "best",
                "score",
                "recorded survivors",
                "ranking picks",
                "agree",
            ],
            rows,
        )
    )
