"""stats, compare, outliers, failures, curves, eco-effects: the analytics commands.

Each builds a ``Query`` from the shared selection options, makes one call to
``projections.analytics.api`` and renders the ``AnalyticsResult``: a readable summary
by default, the README's JSON shapes with ``--json``; warnings go to stderr. Defaults come
from ``ledger.toml`` (current directory, else beside the ledger); flags override it.
Nothing heavy is imported at module level, so ``ledger stats --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from cli.commands.checkpoint import reported_warnings
from cli.options import as_of_option, json_option, ledger_path, open_ledger
from cli.output import echo_json
from ledger.store.location import is_url

F = TypeVar("F", bound=Callable[..., Any])

# Spelled out here (not imported from projections) so --help needs no numpy.
STATUSES = ("completed", "failed", "pruned", "timeout", "cancelled", "interrupted", "running")
AGGS = ("mean", "median", "best", "last")
BY_HELP = "case, stage, eco, eco_class, host, status, all, or param:NAME"
_open01 = click.FloatRange(0, 1, min_open=True, max_open=True)


def selection_options(f: F) -> F:
    """--case, --where and --status: which cases, and which of their runs (shared by
    the analytics commands and ``rank``)."""
    options = [
        click.option(
            "--case",
            "case_globs",
            metavar="GLOB",
            multiple=True,
            help="Only cases whose id matches this glob, e.g. 's1-*' (repeatable).",
        ),
        click.option(
            "--where",
            "wheres",
            metavar="EXPR",
            multiple=True,
            help="A filter on the case's params (not on fields such as stage or status, "
            "which `export --where` filters), e.g. 'util>0.6', 'lib==nangate45' (repeatable).",
        ),
        click.option(
            "--status",
            "statuses",
            type=click.Choice(STATUSES),
            multiple=True,
            help="Only runs of this status (repeatable; each command has its default).",
        ),
    ]
    for opt in reversed(options):
        f = opt(f)
    return f


def query_options(f: F) -> F:
    """--study, --stage, --case, --where, --status, --as-of and --json."""
    options = [
        click.option("--study", "-s", default=None, help="The study (default: the only one)."),
        click.option(
            "--stage",
            "stages",
            type=click.IntRange(min=0),
            multiple=True,
            help="Only cases of this stage (repeatable).",
        ),
        selection_options,
        as_of_option,
        json_option,
    ]
    for opt in reversed(options):
        f = opt(f)
    return f


def selection_query(
    ctx: click.Context,
    study: str | None,
    case_globs: tuple[str, ...],
    wheres: tuple[str, ...],
    statuses: tuple[str, ...],
    as_of: int | None,
) -> Any:
    """The ``Query`` the selection options describe (no stage filter)."""
    return _query(ctx, study, (), case_globs, wheres, statuses, as_of)


def _query(
    ctx: click.Context,
    study: str | None,
    stages: tuple[int, ...],
    case_globs: tuple[str, ...],
    wheres: tuple[str, ...],
    statuses: tuple[str, ...],
    as_of: int | None,
) -> Any:
    from projections.analytics.query import Query, parse_param_filter

    q = Query(open_ledger(ctx))
    if study is not None:
        q = q.study(study)
    if stages:
        q = q.stage(*stages)
    if case_globs:
        q = q.cases(*case_globs)
    for expr in wheres:
        f = parse_param_filter(expr)
        q = q.where_param(f.name, f.op, f.value)
    if statuses:
        q = q.runs(status=statuses)
    return q.as_of(as_of)


def _config(ctx: click.Context) -> Any:
    from projections.analytics.config import load_config

    location = ledger_path(ctx)
    return load_config(None if is_url(location) else location)


def _render(result: Any, as_json: bool) -> None:
    for w in result.warnings:
        click.echo(f"warning: {w}", err=True)
    if as_json:
        echo_json(result.to_dict())
    else:
        click.echo(result.summary(warnings=False))


def _analyse(
    ctx: click.Context, q: Any, kw: dict[str, Any], name: str, *names: str, **extra: Any
) -> None:
    """Run ``api.<name>`` on the query with the options ``names`` passed as given (and
    ``extra``), the ``ledger.toml`` defaults, warnings on stderr; then render."""
    from projections.analytics import api

    args = {n: kw[n] for n in names}
    args.update(extra)
    with reported_warnings():
        result = getattr(api, name)(q, config=_config(ctx), **args)
    _render(result, kw["as_json"])


def _sel(kw: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(
        kw.pop(k) for k in ("study", "stages", "case_globs", "wheres", "statuses", "as_of")
    )


# ----------------------------------------------------------------------------- stats


@click.command()
@query_options
@click.option("--metric", "-m", default=None, help="The metric (default: the only objective).")
@click.option("--by", default="case", show_default=True, help=f"Group by {BY_HELP}.")
@click.option(
    "--agg",
    type=click.Choice(AGGS),
    default=None,
    help="Aggregate each case's runs first (one value per case), e.g. case means by stage.",
)
@click.option(
    "--direction",
    type=click.Choice(["min", "max"]),
    default=None,
    help="For --agg best when the metric is not an objective.",
)
@click.option("--confidence", type=_open01, default=None, help="Interval level [0.95].")
@click.option(
    "--bootstrap",
    type=click.IntRange(min=0),
    default=None,
    help="Bootstrap resamples for a second interval (0: none) [0].",
)
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Bootstrap seed [0].")
@click.option("--min-n", type=click.IntRange(min=1), default=None, help="Warn below this size [3].")
@click.option(
    "--percentiles",
    default="5,25,75,95",
    show_default=True,
    help="Comma-separated percentiles (JSON only).",
)
@click.pass_context
def stats(ctx: click.Context, **kw: Any) -> None:
    """Describe a metric per group: count, mean, median, std, min, max, percentiles,
    and the t interval of the mean (plus a seeded bootstrap interval with --bootstrap).

    Uses the final values of completed runs unless --status says otherwise; every run
    left out (invalidated, another status, no value, NaN) is listed with its reason.
    A group of one run gets no interval; small groups get a warning.

    \b
    Example:
      ledger stats --study chip --metric wns_ps --by stage
      ledger stats -s chip -m wns_ps --by param:util --bootstrap 2000 --json
      ledger stats -s chip -m wns_ps --agg mean --by eco_class --stage 1
    """
    q = _query(ctx, *_sel(kw))
    try:
        pct = tuple(float(p) for p in kw["percentiles"].split(",") if p.strip())
    except ValueError:
        raise click.BadParameter(
            f"{kw['percentiles']!r} is not a comma-separated list of numbers",
            param_hint="--percentiles",
        ) from None
    _analyse(
        ctx,
        q,
        kw,
        "stats",
        "metric",
        "by",
        "confidence",
        "bootstrap",
        "seed",
        "min_n",
        "agg",
        "direction",
        percentiles=pct,
    )


# --------------------------------------------------------------------------- compare


@click.command()
@query_options
@click.option("--metric", "-m", default=None, help="The metric (default: the only objective).")
@click.option(
    "--a", "case_a", default=None, metavar="CASE", help="The first case (with --by: a value)."
)
@click.option(
    "--b", "case_b", default=None, metavar="CASE", help="The second case (with --by: a value)."
)
@click.option(
    "--by",
    default=None,
    metavar="GROUPING",
    help="Compare groups of cases instead: the runs of every case whose param:NAME (or "
    "stage, eco, eco_class, host) is --a against those where it is --b.",
)
@click.option(
    "--cases",
    default=None,
    metavar="A,B,C",
    help="Every pair of these cases (ids or globs), Holm-corrected.",
)
@click.option(
    "--rank",
    "rank_all",
    is_flag=True,
    help="Rank the selected cases by mean with confidence intervals instead.",
)
@click.option(
    "--test",
    type=click.Choice(["welch", "student", "mannwhitney"]),
    default="welch",
    show_default=True,
)
@click.option(
    "--paired",
    is_flag=True,
    help="Pair runs by seed (paired t, or Wilcoxon signed-rank with mannwhitney).",
)
@click.option(
    "--direction",
    type=click.Choice(["min", "max"]),
    default=None,
    help="For --rank when the metric is not an objective.",
)
@click.option("--confidence", type=_open01, default=None, help="Interval level [0.95].")
@click.pass_context
def compare(ctx: click.Context, **kw: Any) -> None:
    """Compare cases on a metric over their completed runs.

    --a/--b: one test (Welch, Student or Mann-Whitney U) with its effect size (Hedges'
    g, or Cliff's delta for Mann-Whitney), means and counts. --by: the same test between
    two groups of cases, e.g. every case with batch 16 against every case with batch
    64. --cases: every pair, with Holm-adjusted p-values. --rank: the cases ranked by
    mean, each with its interval.

    \b
    Example:
      ledger compare --study chip --metric wns_ps --a base --b s1-resize
      ledger compare -s sweep -m loss --by param:batch --a 16 --b 64
      ledger compare -s chip -m wns_ps --cases 'base,s1-*' --test mannwhitney --json
      ledger compare -s chip -m wns_ps --stage 1 --rank
    """
    q = _query(ctx, *_sel(kw))
    modes = sum(
        [
            kw["rank_all"],
            kw["cases"] is not None,
            kw["case_a"] is not None or kw["case_b"] is not None,
        ]
    )
    if modes != 1:
        raise click.UsageError("give --a and --b, or --cases A,B,C, or --rank (one of them)")
    if (kw["case_a"] is None) != (kw["case_b"] is None):
        raise click.UsageError("--a and --b go together")
    if kw["by"] is not None and kw["case_a"] is None:
        raise click.UsageError("--by compares two of its values: give them as --a and --b")
    if kw["rank_all"]:
        _analyse(ctx, q, kw, "rank_ci", "metric", "direction", "confidence")
        return
    cases = None
    if kw["cases"] is not None:
        cases = [c.strip() for c in kw["cases"].split(",") if c.strip()]
    _analyse(
        ctx,
        q,
        kw,
        "compare",
        "test",
        "paired",
        "metric",
        "confidence",
        "by",
        a=kw["case_a"],
        b=kw["case_b"],
        cases=cases,
    )


# -------------------------------------------------------------------------- outliers


@click.command()
@query_options
@click.option("--metric", "-m", default=None, help="The metric (default: the only objective).")
@click.option(
    "--method",
    type=click.Choice(["iqr", "zscore", "modified-z", "bounds"]),
    default=None,
    help="The rule [iqr, or ledger.toml].",
)
@click.option(
    "--factor",
    type=click.FloatRange(0, min_open=True),
    default=None,
    help="IQR factor k, or the z / modified-z threshold [1.5 / 3 / 3.5].",
)
@click.option("--low", type=float, default=None, help="Lower bound (bounds).")
@click.option("--high", type=float, default=None, help="Upper bound (bounds).")
@click.option("--by", default=None, help=f"Apply the rule per group: {BY_HELP}.")
@click.pass_context
def outliers(ctx: click.Context, **kw: Any) -> None:
    """Flag runs whose metric is an outlier, each with the reason a reader can check
    (the value and the fence it crossed); the rest are counted as kept.

    Rules: iqr (outside Q1-k·IQR .. Q3+k·IQR), zscore (|x-mean| > t·sd), modified-z
    (Iglewicz-Hoaglin, MAD-based), bounds (outside --low/--high). NaN values are
    always flagged.

    \b
    Example:
      ledger outliers --study chip --metric wns_ps --method iqr
      ledger outliers -s chip -m wns_ps --method modified-z --factor 3.5 --by case --json
      ledger outliers -s chip -m wns_ps --method bounds --low -500 --high 0
    """
    q = _query(ctx, *_sel(kw))
    _analyse(ctx, q, kw, "outliers", "metric", "method", "factor", "low", "high", "by")


# -------------------------------------------------------------------------- failures


@click.command()
@query_options
@click.option("--by", default="stage", show_default=True, help=f"Rates per {BY_HELP}.")
@click.option(
    "--failed-status",
    "failed_statuses",
    type=click.Choice(["failed", "timeout", "interrupted", "pruned", "cancelled"]),
    multiple=True,
    help="Statuses that count as a failure (repeatable) [failed, timeout, interrupted].",
)
@click.option(
    "--param",
    "params",
    multiple=True,
    help="Test only these params for association (repeatable; default: all, and host).",
)
@click.option(
    "--window",
    type=click.IntRange(min=2),
    default=20,
    show_default=True,
    help="Runs per window when looking for bursts.",
)
@click.option(
    "--alpha",
    type=_open01,
    default=0.01,
    show_default=True,
    help="Significance of a burst (Bonferroni over windows).",
)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Most common error messages to list.",
)
@click.option("--confidence", type=_open01, default=None, help="Wilson interval level [0.95].")
@click.pass_context
def failures(ctx: click.Context, **kw: Any) -> None:
    """Where and when runs fail: failure rates per group with Wilson intervals, the
    params (and hosts) that go with failure ranked by strength (chi-square or Fisher
    for categories, point-biserial r for numbers), bursts of failures over the log,
    and the most common error messages (numbers, paths and ids normalised).

    \b
    Example:
      ledger failures --study chip --by eco_class
      ledger failures -s chip --by host --failed-status failed --failed-status timeout --json
    """
    q = _query(ctx, *_sel(kw))
    kwargs: dict[str, Any] = {}
    if kw["failed_statuses"]:
        kwargs["failure_statuses"] = kw["failed_statuses"]
    _analyse(
        ctx,
        q,
        kw,
        "failures",
        "by",
        "window",
        "alpha",
        "top",
        "confidence",
        params=kw["params"] or None,
        **kwargs,
    )


# ---------------------------------------------------------------------------- curves


@click.command()
@query_options
@click.option(
    "--metric", "-m", default=None, help="The stepped metric (default: the only objective)."
)
@click.option(
    "--direction",
    type=click.Choice(["min", "max"]),
    default=None,
    help="Needed when the metric is not an objective.",
)
@click.option(
    "--window",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Plateau: steps ahead over which the best must improve.",
)
@click.option(
    "--min-delta",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Plateau: improvement over the window that still counts as none.",
)
@click.option(
    "--tolerance",
    type=click.FloatRange(0, 1),
    default=0.01,
    show_default=True,
    help="Convergence: share of the total improvement still to come.",
)
@click.option(
    "--band",
    type=click.Choice(["std", "ci"]),
    default="std",
    show_default=True,
    help="Mean curve band: mean ± sd, or the t interval of the mean.",
)
@click.option(
    "--align",
    type=click.Choice(["exact", "ffill"]),
    default="exact",
    show_default=True,
    help="Mean curve: runs at each logged step, or carried forward between logs.",
)
@click.option("--series", is_flag=True, help="Include every run's series in the JSON.")
@click.option("--confidence", type=_open01, default=None, help="Level of --band ci [0.95].")
@click.pass_context
def curves(ctx: click.Context, **kw: Any) -> None:
    """Training curves: per run the best so far, the plateau step (no improvement
    beyond --min-delta over the next --window steps) and the convergence step; per
    case the mean curve across its runs with a band (JSON: every step).

    Uses every run that is not invalidated (failed and live runs have curves too)
    unless --status says otherwise.

    \b
    Example:
      ledger curves --study sweep --metric loss --window 100 --min-delta 0.001
      ledger curves -s sweep -m acc --direction max --case 'lr-*' --band ci --json
    """
    q = _query(ctx, *_sel(kw))
    _analyse(
        ctx,
        q,
        kw,
        "curves",
        "metric",
        "direction",
        "window",
        "min_delta",
        "tolerance",
        "band",
        "align",
        "confidence",
        "series",
    )


# ----------------------------------------------------------------------- eco-effects


@click.command(name="eco-effects")
@query_options
@click.option("--metric", "-m", default=None, help="The metric (default: the only objective).")
@click.option(
    "--agg",
    type=click.Choice(AGGS),
    default="mean",
    show_default=True,
    help="A case's score: this aggregate of its runs' final values.",
)
@click.option(
    "--direction",
    type=click.Choice(["min", "max"]),
    default=None,
    help="Which way is better, when the metric is not an objective.",
)
@click.option("--confidence", type=_open01, default=None, help="Interval level [0.95].")
@click.option(
    "--bootstrap", type=click.IntRange(min=0), default=None, help="Bootstrap resamples [0]."
)
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Bootstrap seed [0].")
@click.option("--min-n", type=click.IntRange(min=1), default=None, help="Warn below this size [3].")
@click.pass_context
def eco_effects(ctx: click.Context, **kw: Any) -> None:
    """Which changes actually help: for every case an ECO created, its score minus its
    parent's, aggregated by ECO and by ECO class with the interval of the mean delta
    and a verdict (helps / hurts when the interval excludes 0, else unclear).

    Case filters (--stage, --case, --where) pick the children; parents are scored
    whatever they say. Edges whose child or parent has no score are listed with why.

    \b
    Example:
      ledger eco-effects --study chip --metric wns_ps
      ledger eco-effects -s chip -m wns_ps --stage 2 --agg median --json
    """
    q = _query(ctx, *_sel(kw))
    _analyse(
        ctx,
        q,
        kw,
        "eco_effects",
        "metric",
        "agg",
        "direction",
        "confidence",
        "bootstrap",
        "seed",
        "min_n",
    )
