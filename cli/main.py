"""Entry point of the ``ledger`` command.

Commands are registered by name and imported only when used, so ``ledger --help`` and
``ledger append`` never pay for scipy or pyarrow. Every ``LedgerError`` becomes one
``error:`` line on stderr and exit status 1; click's usage errors keep exit status 2.
"""

from __future__ import annotations

import importlib
import sys
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
    "exports": "cli.commands.export:exports",
    "resume": "cli.commands.resume:resume",
    "backup": "cli.commands.backup:backup",
    "restore": "cli.commands.backup:restore",
    "anchor": "cli.commands.backup:anchor",
    "import": "cli.commands.importers:import_group",
    "demo": "cli.commands.demo:demo",
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
    type=click.Path(file_okay=False),
    help="The ledger folder (env LEDGER_PATH).",
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
