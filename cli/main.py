"""Entry point of the ``ledger`` command.

Commands are registered by name and imported only when used, so ``ledger --help`` and
``ledger append`` never pay for scipy or pyarrow; ``ledger --help`` lists the commands
from their one-line summaries below and imports none of them (nor msgspec or lmdb).
Every ``LedgerError`` becomes one ``error:`` line on stderr and exit status 1; click's
usage errors keep exit status 2.
"""

from __future__ import annotations

import importlib
import importlib.util  # not bound by ``import importlib`` alone (an editable install hid it)
import sys
from gettext import gettext as _
from typing import Any

import click

from ledger.errors import LedgerError

# name -> "module:attribute"; a new command is one line here and one module.
COMMANDS: dict[str, str] = {
    "init": "cli.commands.core:init",
    "append": "cli.commands.core:append",
    "log": "cli.commands.core:log",
    "status": "cli.commands.core:status",
    "verify": "cli.commands.core:verify",
    "dag": "cli.commands.dag:dag",
    "rank": "cli.commands.rank:rank",
    "checkpoint": "cli.commands.checkpoint:checkpoint",
    "stats": "cli.commands.analytics:stats",
    "compare": "cli.commands.analytics:compare",
    "outliers": "cli.commands.analytics:outliers",
    "failures": "cli.commands.analytics:failures",
    "curves": "cli.commands.analytics:curves",
    "eco-effects": "cli.commands.analytics:eco_effects",
    "check": "cli.commands.check:check",
    "export": "cli.commands.export:export",
    "report": "cli.commands.report:report",
    "exports": "cli.commands.export:exports",
    "resume": "cli.commands.resume:resume",
    "backup": "cli.commands.backup:backup",
    "restore": "cli.commands.backup:restore",
    "anchor": "cli.commands.backup:anchor",
    "import": "cli.commands.importers:import_group",
    "sql": "cli.commands.sql:sql",
    "sync": "cli.commands.sync:sync",
    "merge": "cli.commands.sync:merge",
    "demo": "cli.commands.demo:demo",
}

# name -> the first sentence of the command's help: what ``ledger --help`` shows (click
# shortens it to the terminal). tests/ledger/test_surface.py fails when one drifts.
SUMMARIES: dict[str, str] = {
    "anchor": "Print (or write) the ledger's head as a small JSON anchor to keep elsewhere.",
    "append": "Append events from a JSON Lines FILE (or - for stdin) as one atomic batch.",
    "backup": "Copy the ledger to the new folder DEST, verified before it appears.",
    "check": (
        "Check each completed run's final metrics against a rules file; exit 1 when any run "
        "fails a rule."
    ),
    "checkpoint": (
        "Save a checkpoint of every built-in projection (dag, runs, metrics, selections)."
    ),
    "compare": "Compare cases on a metric over their completed runs.",
    "curves": (
        "Training curves: per run the best so far, the plateau step (no improvement beyond "
        "--min-delta over the next --window steps) and the convergence step; per case the "
        "mean curve across its runs with a band (JSON: every step)."
    ),
    "dag": "Draw a study's case DAG: every case with its stage and ECO, parent -> child.",
    "demo": (
        "Train a small numpy network over three stages of changes, recording every epoch "
        "through the Recorder; then print the DAG, the rankings, the stage summary, verify "
        "the chain and export the study."
    ),
    "eco-effects": (
        "Which changes actually help: for every case an ECO created, its score minus its "
        "parent's, aggregated by ECO and by ECO class with the interval of the mean delta and"
        " a verdict (helps / hurts when the interval excludes 0, else unclear)."
    ),
    "export": "Write a study's snapshot folder: manifest, study.json, tables, report.",
    "exports": "List the export journal: every export made from this ledger, oldest first.",
    "failures": (
        "Where and when runs fail: failure rates per group with Wilson intervals, the params "
        "(and hosts) that go with failure ranked by strength (chi-square or Fisher for "
        "categories, point-biserial r for numbers), bursts of failures over the log, and the "
        "most common error messages (numbers, paths and ids normalised)."
    ),
    "import": "Import results you already have: CSV tables, OpenROAD flow metrics, MLflow, Optuna.",
    "init": "Create an empty ledger (a no-op when one is already there).",
    "log": "Print events in seq order (the wire form plus seq, id, ts, hash with --json).",
    "merge": ("Write the union of the SOURCE ledgers as a new ledger, in one deterministic order."),
    "outliers": (
        "Flag runs whose metric is an outlier, each with the reason a reader can check (the "
        "value and the fence it crossed); the rest are counted as kept."
    ),
    "rank": "Rank a study's cases by its objectives, a metric, or lexicographic keys.",
    "restore": "Put the backup BACKUP in place as a live ledger at the new folder DEST.",
    "report": (
        "Write one self-contained HTML file to look at a study: the case DAG, rankings per "
        "stage, the Pareto front, curves, statistics, ECO effects, failures, the search "
        "history and parameter importance, the runs and their provenance."
    ),
    "resume": (
        "Classify a study's runs (completed, failed, interrupted, running) and list the cases"
        " still pending."
    ),
    "sql": ("Run a read-only SQL query (DuckDB) over the tables cases, runs, metrics and events."),
    "stats": (
        "Describe a metric per group: count, mean, median, std, min, max, percentiles, and "
        "the t interval of the mean (plus a seeded bootstrap interval with --bootstrap)."
    ),
    "status": "The head and, per study, its cases, runs by status and events.",
    "sync": "Copy to TARGET every event of SOURCE that TARGET lacks, in SOURCE's order.",
    "verify": "Recompute the hash chain; exit 1 and name the first bad seq when it breaks.",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in COMMANDS if self._available(name))

    @staticmethod
    def _available(name: str) -> bool:
        module = COMMANDS[name].split(":")[0]
        return importlib.util.find_spec(module) is not None

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None or not self._available(name):
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's listing, from ``SUMMARIES``: importing every command to read its
        docstring would cost ``ledger --help`` msgspec, lmdb and a dozen modules."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [
            (name, click.Command(name, help=SUMMARIES[name]).get_short_help_str(limit))
            for name in names
        ]
        with formatter.section(_("Commands")):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LedgerError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)
        except BrokenPipeError:
            sys.stderr.close()
            ctx.exit(0)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--ledger",
    "ledger_path",
    envvar="LEDGER_PATH",
    default="results.ledger",
    show_default=True,
    metavar="PATH|URL",
    help="The ledger: a folder (LMDB, on this host) or a postgresql:// URL (a ledger "
    "shared by hosts; ?schema=NAME, default ledger) (env LEDGER_PATH).",
)
@click.option(
    "--allow-network-fs",
    is_flag=True,
    envvar="LEDGER_ALLOW_NETWORK_FS",
    help="Open a ledger on NFS, SMB or FUSE anyway (LMDB's locks do not hold there: "
    "only safe when a single process uses it).",
)
@click.version_option(package_name="results-ledger", prog_name="ledger")
@click.pass_context
def cli(ctx: click.Context, ledger_path: str, allow_network_fs: bool) -> None:
    """An append-only ledger of experiment results: record, rank, compare, export.

    \b
    Example:
      ledger --ledger results.ledger append events.jsonl
      ledger status
    """
    ctx.obj = {"ledger_path": ledger_path, "allow_network_fs": allow_network_fs}


def main() -> None:
    cli(prog_name="ledger")


if __name__ == "__main__":
    main()
