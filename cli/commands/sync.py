"""sync and merge: carry ledgers past one host (docs/architecture.md, Past one host)."""

from __future__ import annotations

import click

from cli.options import json_option
from cli.output import echo_json
from ledger.merging import merge as merge_ledgers
from ledger.replication import BATCH_EVENTS, POLL_SECONDS, SyncResult, mask_location
from ledger.replication import sync as sync_ledgers


def _stderr(message: str) -> None:
    click.echo(message, err=True)


def _allow_network_fs(ctx: click.Context) -> bool:
    return bool(ctx.find_root().obj.get("allow_network_fs", False))


def _render_sync(result: SyncResult) -> str:
    head = f"head {result.target_head_seq} {result.target_head_hash[:16]}"
    where = f"{result.target} holds {result.source} up to seq {result.source_seq}"
    if result.studies:
        where += f" (studies {', '.join(result.studies)})"
    if result.appended or result.duplicates:
        dup = f" ({result.duplicates} duplicates skipped)" if result.duplicates else ""
        text = f"appended {result.appended} events{dup}; {where}; {head}"
    else:
        text = f"appended 0 events: nothing new; {where}; {head}"
    return ("stopped: " if result.stopped else "") + text


@click.command()
@click.argument("source")
@click.argument("target")
@click.option(
    "--study",
    "-s",
    "studies",
    multiple=True,
    help="Only this study's events (repeatable): pull a study's definition onto a node.",
)
@click.option(
    "--follow",
    "-f",
    is_flag=True,
    help="Keep copying as SOURCE grows; wait out an unreachable TARGET; SIGTERM stops.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.01),
    default=POLL_SECONDS,
    show_default=True,
    help="How often --follow looks for new events in SOURCE, in seconds.",
)
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=BATCH_EVENTS,
    show_default=True,
    help="Events per atomic batch.",
)
@json_option
@click.pass_context
def sync(
    ctx: click.Context,
    source: str,
    target: str,
    studies: tuple[str, ...],
    follow: bool,
    interval: float,
    batch: int,
    as_json: bool,
) -> None:
    """Copy to TARGET every event of SOURCE that TARGET lacks, in SOURCE's order.

    SOURCE and TARGET are ledger paths or postgresql:// URLs (the global --ledger is not
    used). Events keep their id, time and content; TARGET numbers and chains them. Each
    batch is atomic and records how far it got in TARGET in the same transaction, so a
    sync killed at any moment resumes where it stopped and never copies an event twice;
    a second sync appends 0. TARGET is created when missing. An event TARGET refuses
    (same id with other content, or a rule) stops the sync with one error line; what
    was copied before it stays.

    \b
    Example:
      ledger sync node7.ledger shared.ledger
      ledger sync shared.ledger node7.ledger --study sweep-1
      ledger sync node7.ledger postgresql://runner@db/results --follow
    """
    if follow:
        _stderr(
            f"following {mask_location(source)} into {mask_location(target)} every "
            f"{interval:g} s; SIGTERM or Ctrl-C stops"
        )
    result = sync_ledgers(
        source,
        target,
        studies=list(studies) or None,
        follow=follow,
        interval=interval,
        batch_size=batch,
        notify=_stderr,
        allow_network_fs=_allow_network_fs(ctx),
    )
    if as_json:
        echo_json(result.to_dict())
    else:
        click.echo(_render_sync(result))


@click.command()
@click.argument("sources", nargs=-1, required=True)
@click.option(
    "--out",
    "-o",
    required=True,
    help="The new ledger: a path that does not exist yet (or an empty folder), or the "
    "postgresql:// URL of a database or schema that holds no ledger.",
)
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=BATCH_EVENTS,
    show_default=True,
    help="Events per atomic batch.",
)
@json_option
@click.pass_context
def merge(
    ctx: click.Context, sources: tuple[str, ...], out: str, batch: int, as_json: bool
) -> None:
    """Write the union of the SOURCE ledgers as a new ledger, in one deterministic order.

    Among the sources' next events, the one with the smallest (time, id) goes first;
    each source's own order is kept; an event held by several sources appears once. The
    same sources in any order give the same seqs, head hash and export bytes. Two
    sources that disagree (same id with other content, or a rule, e.g. a run finished
    differently on both) stop the merge with one error line, and nothing is written.

    \b
    Example:
      ledger merge node1.ledger node2.ledger node3.ledger --out all.ledger
    """
    result = merge_ledgers(
        list(sources),
        out,
        batch_size=batch,
        notify=_stderr,
        allow_network_fs=_allow_network_fs(ctx),
    )
    if as_json:
        echo_json(result.to_dict())
        return
    dup = f" ({result.duplicates} duplicates skipped)" if result.duplicates else ""
    click.echo(
        f"merged {len(result.sources)} ledgers into {result.out}: {result.appended} events"
        f"{dup}; head {result.head_seq} {result.head_hash[:16]}"
    )
