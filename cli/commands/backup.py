"""backup, restore, anchor: copies you can trust and heads kept outside the ledger."""

from __future__ import annotations

import click

from cli.options import json_option, ledger_path, open_ledger
from cli.output import echo_json


def _allow_network_fs(ctx: click.Context) -> bool:
    return bool((ctx.find_root().obj or {}).get("allow_network_fs", False))


@click.command()
@click.argument("dest", type=click.Path(file_okay=False))
@click.option(
    "--no-compact",
    is_flag=True,
    help="Copy every page as it is instead of a compacted copy (faster, larger).",
)
@json_option
@click.pass_context
def backup(ctx: click.Context, dest: str, no_compact: bool, as_json: bool) -> None:
    """Copy the ledger to the new folder DEST, verified before it appears.

    Safe while other processes append: the copy is one consistent snapshot. The copy
    is written next to DEST as DEST.*.tmp, fsynced, its hash chain verified, and only
    then renamed to DEST; an existing DEST is refused. DEST/BACKUP.json records the
    backup's head, so it also serves as an anchor for `verify --against`.

    \b
    Example:
      ledger --ledger results.ledger backup /mnt/backups/results-2026-01-31
    """
    from ledger.backup import backup as run_backup

    result = run_backup(
        ledger_path(ctx), dest, compact=not no_compact, allow_network_fs=_allow_network_fs(ctx)
    )
    if as_json:
        echo_json(result._asdict())
        return
    click.echo(
        f"backup of ledger {result.ledger_id} at {result.path}: head {result.head_seq} "
        f"{result.head_hash}, {result.bytes} bytes, verified"
    )


@click.command()
@click.argument("backup_dir", metavar="BACKUP", type=click.Path(file_okay=False, exists=True))
@click.argument("dest", type=click.Path(file_okay=False))
@json_option
@click.pass_context
def restore(ctx: click.Context, backup_dir: str, dest: str, as_json: bool) -> None:
    """Put the backup BACKUP in place as a live ledger at the new folder DEST.

    BACKUP is verified before anything is written, and the copy again before it is
    renamed to DEST. A DEST that holds a ledger (or anything) is refused: move a damaged
    ledger away first. The restored ledger ends at the backup's head; anchors taken
    later will report "rollback detected" against it, as they should.

    \b
    Example:
      ledger restore /mnt/backups/results-2026-01-31 results.ledger
    """
    from ledger.backup import restore as run_restore

    result = run_restore(backup_dir, dest, allow_network_fs=_allow_network_fs(ctx))
    if as_json:
        echo_json(result._asdict())
        return
    click.echo(
        f"restored ledger {result.ledger_id} to {result.path}: head {result.head_seq} "
        f"{result.head_hash}, verified"
    )


@click.command()
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the anchor to FILE (atomically) instead of printing it.",
)
@click.pass_context
def anchor(ctx: click.Context, out: str | None) -> None:
    """Print (or write) the ledger's head as a small JSON anchor to keep elsewhere.

    A hash chain cannot tell that an older copy was restored or that the whole log was
    rewritten; an anchor kept outside the ledger can: `ledger verify --against FILE`
    reports "rollback detected" or "head mismatch". Export manifests work the same way.

    \b
    Example:
      ledger anchor --out ~/anchors/results-$(date +%F).json
      ledger verify --against ~/anchors/results-2026-01-31.json
    """
    from ledger.anchor import make_anchor, write_anchor

    ledger = open_ledger(ctx)
    if out is None:
        echo_json(make_anchor(ledger))
        return
    written = write_anchor(ledger, out)
    click.echo(f"anchor for head {written['head_seq']} {written['head_hash']} written to {out}")
