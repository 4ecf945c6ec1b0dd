"""ledger import csv|orfs|mlflow|optuna: bring in results that already exist elsewhere.

Each subcommand maps its flags 1:1 onto one reader of ``ledger.importers`` (parse), hands
the parsed sources to ``ledger.importers.batches.import_sources`` (one atomic append per
source file, or a dry run's plan), and renders the outcome. The shared flags —
``--dry-run``, ``--json``, ``--keep-secrets`` — come from one decorator so every importer
behaves alike.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

from cli.options import json_option, ledger_path, open_ledger
from cli.output import echo_json
from cli.progress import StderrProgress, parse_with
from ledger.events import STATUSES

if TYPE_CHECKING:
    from ledger.importers.batches import Outcome, Source

F = TypeVar("F", bound=Callable[..., Any])


def _shared(f: F) -> F:
    f = click.option(
        "--dry-run",
        is_flag=True,
        help="Parse and print the summary and what would be appended; append nothing.",
    )(f)
    f = click.option(
        "--keep-secrets", is_flag=True, help="Store secret-looking config values as given."
    )(f)
    return json_option(f)


@click.group("import")
def import_group() -> None:
    """Import results you already have: CSV tables, OpenROAD flow metrics, MLflow, Optuna.

    Every importer parses its whole source first, then appends each source file as one
    atomic batch: a bad row refuses the import, naming file:line, and nothing is
    appended. Event ids come from the source, so importing it again appends nothing.
    Creates the ledger when it is missing. A study that already exists keeps its own
    settings (the importer's study_created is dropped; a warning names settings that
    differ).

    \b
    Example:
      ledger import orfs metadata-history.jsonl --dry-run
      ledger import csv results.csv --case model --metric 'acc*' --unmapped config
    """


# -- the shared run ----------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_peers() -> Iterator[None]:
    """The peers' own deprecation and experimental warnings and INFO logs are not ours to
    show: stderr carries only this command's progress, warnings and errors."""
    names = ("mlflow", "alembic", "optuna", "sqlalchemy")
    levels = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for n, lvl in levels.items():
            logging.getLogger(n).setLevel(lvl)


def _finish(
    ctx: click.Context,
    sources: Sequence[Source],
    summary: dict[str, Any],
    *,
    dry_run: bool,
    keep_secrets: bool,
    as_json: bool,
) -> None:
    """Open the ledger (a dry run never creates one), import, render."""
    from ledger import Ledger, LedgerNotFound
    from ledger.importers.batches import import_sources

    if dry_run:
        try:
            ledger: Ledger | None = Ledger(ledger_path(ctx), create=False, readonly=True)
        except LedgerNotFound:
            ledger = None
        if ledger is not None:
            ctx.call_on_close(ledger.close)
    else:
        ledger = open_ledger(ctx, create=True, readonly=False)
    outcome = import_sources(
        ledger, sources, summary, dry_run=dry_run, redact=not keep_secrets, progress=StderrProgress
    )
    _render(outcome, as_json)


def _render(outcome: Outcome, as_json: bool) -> None:
    for note in outcome.studies_existing:
        if note["not_recorded"]:
            what = ", ".join(f"{k} {v!r}" for k, v in note["not_recorded"].items())
            click.echo(
                f"warning: study {note['study']!r} already exists (seq {note['seq']}) and keeps "
                f"its own settings; not recorded from the source: {what}",
                err=True,
            )
    if as_json:
        echo_json(outcome.to_json())
        return
    for line in summary_lines(outcome.summary):
        click.echo(line)
    if outcome.dry_run:
        plan = outcome.plan or {}
        kinds = ", ".join(f"{t} {n:,}" for t, n in plan["by_type"].items())
        batches = plan["batches"]
        click.echo(
            f"dry run: would append {plan['events']:,} events in {batches} "
            f"batch{'es' if batches != 1 else ''} ({kinds}); nothing appended"
        )
        for note in outcome.studies_existing:
            click.echo(f"study {note['study']} exists (seq {note['seq']}): its settings are kept")
        return
    for f in outcome.files:
        dup = f" ({f['duplicates']:,} duplicates skipped)" if f["duplicates"] else ""
        click.echo(f"{f['source']}: appended {f['appended']:,} events{dup}")
        for where in f["redacted"]:
            click.echo(f"redacted {where}", err=True)
    if outcome.files:
        last = outcome.files[-1]
        click.echo(f"head {last['head_seq']} {last['head_hash'][:16]}")


def _plain(value: Any, nested: bool = False) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dict):
        text = " ".join(f"{k}={_plain(v, True)}" for k, v in value.items()) or "-"
        return f"({text})" if nested and value else text
    if isinstance(value, list):
        text = ", ".join(_plain(v, True) for v in value) or "-"
        return f"[{text}]" if nested and value else text
    return str(value)


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The importer's summary for people: ``key: value``, in the importer's order."""
    width = max((len(k) for k in summary), default=0)
    return [f"{k + ':':<{width + 1}} {_plain(v)}" for k, v in summary.items()]


def _parse(label: str, unit: str, read: Callable[[Any], Any]) -> Any:
    return parse_with(StderrProgress(label, unit), read)


# -- csv ---------------------------------------------------------------------------------

_WIDE_ONLY = (
    "stage",
    "status",
    "error_column",
    "error_key",
    "params",
    "metrics",
    "config",
    "json_columns",
    "time_column",
    "sample_as",
)
_LONG_ONLY = ("metric_column", "value_column", "finish_status")


@import_group.command("csv")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--long", "long_form", is_flag=True, help="A long file: run, metric, step, value.")
@click.option(
    "--study",
    default=None,
    help="The target study (default: the file's stem); with "
    "--study-column, only that study's rows.",
)
@click.option("--study-column", default=None, help="A column whose values are studies.")
@click.option(
    "--case",
    "case",
    multiple=True,
    metavar="COL",
    help="Column(s) joined into the case id, each a case param (repeatable).",
)
@click.option("--case-sep", default="/", show_default=True, help="Joins the --case columns.")
@click.option("--run", default=None, help="The run id column (long default: run).")
@click.option("--step", default=None, help="The step column (long default: step).")
@click.option("--stage", default=None, help="The stage column (wide).")
@click.option("--status", default=None, help="The status column (wide).")
@click.option("--error-column", default=None, help="A column holding an error message (wide).")
@click.option("--error-key", default=None, help="Read the error from this JSON key of the cell.")
@click.option("--metric", "metrics", multiple=True, metavar="GLOB", help="Metric columns (wide).")
@click.option("--param", "params", multiple=True, metavar="GLOB", help="Case param columns.")
@click.option("--config", "config", multiple=True, metavar="GLOB", help="Run attribute columns.")
@click.option(
    "--json-column",
    "json_columns",
    multiple=True,
    metavar="GLOB",
    help="Run attribute columns parsed as JSON.",
)
@click.option("--ignore", multiple=True, metavar="GLOB", help="Columns to leave out.")
@click.option("--time-column", default=None, help="The run's time (ISO 8601) column (wide).")
@click.option(
    "--naive-tz",
    default="UTC",
    show_default=True,
    help="Zone of times without a UTC offset (IANA name).",
)
@click.option(
    "--unmapped",
    type=click.Choice(["error", "config", "ignore", "auto"]),
    default="error",
    show_default=True,
    help="What columns without a role become (long: error or ignore).",
)
@click.option(
    "--sample-as",
    type=click.Choice(["run", "step"]),
    default="run",
    show_default=True,
    help="Each row a run, or a step (--step) of one run per case.",
)
@click.option(
    "--metric-column", default=None, help="The metric name column (long; default metric)."
)
@click.option("--value-column", default=None, help="The value column (long; default value).")
@click.option(
    "--finish-status",
    type=click.Choice([*STATUSES, "none"]),
    default=None,
    help="Status the runs of a long file finish with (default completed).",
)
@click.option("--delimiter", default=",", show_default=True, help="The field separator.")
@click.option("--encoding", default="utf-8-sig", show_default=True, help="The file's encoding.")
@_shared
@click.pass_context
def csv_cmd(ctx: click.Context, file: str, long_form: bool, **opts: Any) -> None:
    """Import a CSV FILE: wide (a row per run or per sample) or --long (a row per value).

    Every column gets one role: named columns (--run, --case, --step, ...), globs
    (--metric, --param, --config, --json-column, --ignore), else --unmapped decides.
    A cell that is not a number in a metric column refuses the file, naming file:line
    and the column; empty cells are skipped and counted.

    \b
    Example:
      ledger import csv runs.csv \\
        --study-column experiment_id --case approach_name --case provider --case model \\
        --run id --step sample_index --sample-as run \\
        --metric is_correct --metric execution_time_ms --metric cost_estimate \\
        --metric parsing_confidence --json-column metadata_json \\
        --error-column metadata_json --error-key error --time-column created_at \\
        --unmapped config
    """
    from ledger.importers import read_csv_long, read_csv_wide
    from ledger.importers.batches import Source

    dry_run, keep_secrets, as_json = (
        opts.pop("dry_run"),
        opts.pop("keep_secrets"),
        opts.pop("as_json"),
    )
    given = {k for k, v in opts.items() if v not in (None, ())}
    defaults = {
        "case_sep": "/",
        "naive_tz": "UTC",
        "unmapped": "error",
        "sample_as": "run",
        "delimiter": ",",
        "encoding": "utf-8-sig",
    }
    changed = {k for k in given if defaults.get(k, object()) != opts[k]}
    common = {
        "study": opts["study"],
        "study_column": opts["study_column"],
        "case": opts["case"],
        "case_sep": opts["case_sep"],
        "ignore": opts["ignore"],
        "delimiter": opts["delimiter"],
        "encoding": opts["encoding"],
    }
    if long_form:
        wrong = sorted(changed & set(_WIDE_ONLY))
        if wrong:
            raise click.UsageError(
                f"{_flags(wrong)} appl{'ies' if len(wrong) == 1 else 'y'} to wide files only; "
                "a long file names its columns with --run, --metric-column, --step, "
                "--value-column and --case"
            )
        if opts["unmapped"] not in ("error", "ignore"):
            raise click.UsageError("a long file takes --unmapped error or ignore")
        kwargs: dict[str, Any] = dict(common, unmapped=opts["unmapped"])
        for key, default in (
            ("run", "run"),
            ("step", "step"),
            ("metric_column", "metric"),
            ("value_column", "value"),
        ):
            kwargs[key] = opts[key] if opts[key] is not None else default
        fs = opts["finish_status"] or "completed"
        kwargs["finish_status"] = None if fs == "none" else fs

        def read(progress: Any) -> Any:
            return read_csv_long(file, progress=progress, **kwargs)
    else:
        wrong = sorted(changed & set(_LONG_ONLY))
        if wrong:
            raise click.UsageError(f"{_flags(wrong)} applies to long files only (pass --long)")
        kwargs = dict(
            common,
            run=opts["run"],
            step=opts["step"],
            stage=opts["stage"],
            status=opts["status"],
            error_column=opts["error_column"],
            error_key=opts["error_key"],
            params=opts["params"],
            metrics=opts["metrics"],
            config=opts["config"],
            json_columns=opts["json_columns"],
            time_column=opts["time_column"],
            naive_tz=opts["naive_tz"],
            unmapped=opts["unmapped"],
            sample_as=opts["sample_as"],
        )

        def read(progress: Any) -> Any:
            return read_csv_wide(file, progress=progress, **kwargs)

    result = _parse(f"reading {file}", "rows", read)
    sources = [Source(file, result.events)]
    _finish(
        ctx, sources, result.summary, dry_run=dry_run, keep_secrets=keep_secrets, as_json=as_json
    )


_FLAG = {"params": "--param", "metrics": "--metric", "json_columns": "--json-column"}


def _flags(names: Sequence[str]) -> str:
    return ", ".join(_FLAG.get(n, "--" + n.replace("_", "-")) for n in names)


# -- orfs --------------------------------------------------------------------------------


@import_group.command("orfs")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--study", default="orfs", show_default=True, help="The target study.")
@click.option(
    "--by-variant",
    is_flag=True,
    help="A case per platform/design/variant (default: per platform/design).",
)
@click.option(
    "--platform",
    "platforms",
    multiple=True,
    metavar="NAME",
    help="Only the records of this platform (repeatable): with --study, one study per "
    "platform, which is how `ledger rank` ranks within a platform.",
)
@click.option(
    "--normalise-time",
    "normalise_to",
    default=None,
    metavar="UNIT",
    help="Also record each timing metric in UNIT (ns, ps) as <metric>__<unit>, from the "
    "run's time unit (read, or assumed from its platform: the run's config says which).",
)
@_shared
@click.pass_context
def orfs_cmd(
    ctx: click.Context,
    paths: tuple[str, ...],
    study: str,
    by_variant: bool,
    platforms: tuple[str, ...],
    normalise_to: str | None,
    dry_run: bool,
    keep_secrets: bool,
    as_json: bool,
) -> None:
    """Import OpenROAD-flow-scripts METRICS2.1 results: metadata*.json files, folders of
    them, or JSON Lines bundles of {platform, design, commit, date, metrics} records.

    A case per platform/design, a run per record (keyed by platform, design and the
    recording commit), numbers as final metrics, NAME__iter:N as steps, durations as
    seconds; strings such as N/A are kept as run attributes and counted, never turned
    into numbers. Timing is in ps on asap7 and gf12, ns elsewhere: compare across
    platforms with --normalise-time, or within one with --platform.

    \b
    Example:
      ledger import orfs metadata-history.jsonl
      ledger import orfs metadata-history.jsonl --platform asap7 --study orfs-asap7
      ledger import orfs metadata-history.jsonl --normalise-time ns --study orfs-ns
      ledger rank --study orfs-ns --metric finish__timing__setup__ws__ns --direction max
    """
    from ledger.importers.orfs_sources import read_orfs_sources
    from ledger.importers.orfs_time import parse_time_unit

    if normalise_to is not None:
        try:
            parse_time_unit(normalise_to)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--normalise-time") from None
    sources, summary = read_orfs_sources(
        paths,
        study=study,
        by_variant=by_variant,
        platforms=platforms,
        normalise_to=normalise_to,
        progress=StderrProgress,
    )
    _finish(ctx, sources, summary, dry_run=dry_run, keep_secrets=keep_secrets, as_json=as_json)


# -- mlflow ------------------------------------------------------------------------------


@import_group.command("mlflow")
@click.argument("tracking_uri")
@click.option(
    "--experiment",
    "experiments",
    multiple=True,
    metavar="NAME|ID",
    help="Only these experiments (repeatable; default: every active one with runs).",
)
@click.option(
    "--study",
    default=None,
    help="The target study (one experiment only; default: the experiment's name).",
)
@click.option(
    "--running",
    type=click.Choice(["skip", "interrupted"]),
    default="skip",
    show_default=True,
    help="RUNNING runs: skip them, or close them as interrupted.",
)
@_shared
@click.pass_context
def mlflow_cmd(
    ctx: click.Context,
    tracking_uri: str,
    experiments: tuple[str, ...],
    study: str | None,
    running: str,
    dry_run: bool,
    keep_secrets: bool,
    as_json: bool,
) -> None:
    """Import MLflow runs through MLflow's own client (pip install 'results-ledger[mlflow]').

    Experiments become studies; each run a case (its params, its parent run as DAG
    parent) with one run: full metric histories with steps and timestamps, the latest
    values as final metrics, FINISHED/FAILED/KILLED as completed/failed/cancelled.

    \b
    Example:
      ledger import mlflow sqlite:///mlruns.db --experiment sweep --study sweep-mlflow
    """
    from ledger.importers import read_mlflow
    from ledger.importers.batches import Source

    def read(progress: Any) -> Any:
        with _quiet_peers():
            return read_mlflow(
                tracking_uri,
                experiments=experiments,
                study=study,
                running=running,
                progress=progress,
            )

    result = _parse(f"reading {tracking_uri}", "runs", read)
    _finish(
        ctx,
        [Source(tracking_uri, result.events)],
        result.summary,
        dry_run=dry_run,
        keep_secrets=keep_secrets,
        as_json=as_json,
    )


# -- optuna ------------------------------------------------------------------------------


@import_group.command("optuna")
@click.argument("storage")
@click.option(
    "--study",
    default=None,
    metavar="NAME",
    help="The Optuna study to read, also the target study's name (optional when the "
    "storage holds one).",
)
@click.option("--into", default=None, metavar="STUDY", help="Name the target study otherwise.")
@click.option(
    "--running",
    type=click.Choice(["skip", "interrupted"]),
    default="skip",
    show_default=True,
    help="RUNNING trials: skip them, or close them as interrupted.",
)
@click.option(
    "--naive-tz",
    default="UTC",
    show_default=True,
    help="Zone Optuna's offset-less trial times are read in.",
)
@_shared
@click.pass_context
def optuna_cmd(
    ctx: click.Context,
    storage: str,
    study: str | None,
    into: str | None,
    running: str,
    naive_tz: str,
    dry_run: bool,
    keep_secrets: bool,
    as_json: bool,
) -> None:
    """Import an Optuna study from a journal file or an RDB URL, through Optuna's own
    storages (pip install 'results-ledger[optuna]').

    The directions become the study's objectives; each trial a case trial-N with its
    params and one run: intermediate values as steps, objective values as final
    metrics, COMPLETE/PRUNED/FAIL as completed/pruned/failed.

    \b
    Example:
      ledger import optuna optuna-journal.log --study tune-lr
      ledger import optuna sqlite:///optuna.db --study tune-lr --into tune-lr-2024
    """
    from ledger.importers import read_optuna
    from ledger.importers.batches import Source

    def read(progress: Any) -> Any:
        with _quiet_peers():
            return read_optuna(
                storage,
                study=study,
                into=into,
                running=running,
                naive_tz=naive_tz,
                progress=progress,
            )

    result = _parse(f"reading {storage}", "trials", read)
    _finish(
        ctx,
        [Source(storage, result.events)],
        result.summary,
        dry_run=dry_run,
        keep_secrets=keep_secrets,
        as_json=as_json,
    )
